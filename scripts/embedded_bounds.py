"""What the embedded dataset allows at best: spatial cues read straight off the impulse responses.

    python scripts/embedded_bounds.py [--data data/embedded]

Run by hand (about 3.5 minutes on 2 cores). A model hears 10 s of an unknown sound through a
room; this script instead reads each binaural impulse response itself, which no listener
gets, and asks how well simple features of it predict the spatial targets in rooms it has
not seen (gradient-boosted trees, leave-rooms-out folds over all train and eval rooms):

- front/back, from the band interaural level differences of (a) the whole response, which
  is what a long sound's time-averaged spectrum carries, and (b) the direct sound alone
  (5 ms around its arrival), which only onsets reveal;
- distance, from the direct-to-reverberant ratio, the total energy (the level of a source
  of known loudness) and the late-energy fraction;
- elevation, from the shape of the spectrum at 3-14 kHz in each ear, where the pinna notch
  lies: of the direct sound's response, and of a sound heard through the whole response,
  which mixes the notch with the sound's own spectrum as a listener hears it.

It then scores what those oracle predictions give in the paper's metrics beside chance:
direction as the true lateral angle with the predicted front/back side (and, for scale, with
front/back at random) and the most common elevation, and the predicted distance. Chance is the best constant prediction, as the demo
prints it.
"""
import argparse
import json
import os
import sys

import numpy as np
import soundfile as sf
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset.spatial import parse_position, spatial_targets  # noqa: E402
from util import metrics  # noqa: E402

SAMPLE_RATE = 32000
BAND_EDGES_HZ = (300, 700, 1500, 3000, 5000, 8000, 12000)
DIRECT_WINDOW = (-40, 120)  # samples around the direct sound's arrival (about 5 ms)
ELEVATION_BANDS_HZ = np.geomspace(3000, 14000, 25)  # sixth-octave bands over the pinna notch's range


def band_levels_db(x, edges_hz):
    """Each channel's energy (dB) in the bands between consecutive `edges_hz`, shape [channels, bands]."""
    spectrum = np.abs(np.fft.rfft(x, 8192, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(8192, 1 / SAMPLE_RATE)
    bands = np.stack([spectrum[:, (freqs >= lo) & (freqs < hi)].sum(-1)
                      for lo, hi in zip(edges_hz[:-1], edges_hz[1:])], axis=-1)
    return 10 * np.log10(bands + 1e-12)


def band_ild(rir):
    """Right minus left energy (dB) in BAND_EDGES_HZ bands of a [2, n] response."""
    left, right = band_levels_db(rir, BAND_EDGES_HZ)
    return right - left


def spectral_shape(rir):
    """Each ear's level (dB) in ELEVATION_BANDS_HZ bands minus its mean over them: the shape of the
    high-frequency spectrum, where the pinna notch that tells elevation lies."""
    level = band_levels_db(rir, ELEVATION_BANDS_HZ)
    return (level - level.mean(-1, keepdims=True)).ravel()


def rir_features(rir):
    energy = np.square(rir).sum(0)
    arrival = int(np.argmax(np.abs(rir).sum(0) > 0.3 * np.abs(rir).max()))
    start, end = max(0, arrival + DIRECT_WINDOW[0]), arrival + DIRECT_WINDOW[1]
    direct, total = energy[start:end].sum(), energy.sum()
    late = energy[arrival + SAMPLE_RATE // 20:].sum()  # after 50 ms
    distance_cues = [10 * np.log10(direct / (total - direct + 1e-12)), 10 * np.log10(total),
                     10 * np.log10(late / total + 1e-12)]
    return band_ild(rir), band_ild(rir[:, start:end]), distance_cues, spectral_shape(rir[:, start:end])


def heard_spectral_shape(rir, clip):
    """`spectral_shape` of a clip heard through the whole response: what a listener gets, the pinna's
    notch mixed with the sound's own spectrum."""
    n = len(clip) + rir.shape[-1] - 1
    return spectral_shape(np.fft.irfft(np.fft.rfft(clip, n) * np.fft.rfft(rir, n, axis=-1), n, axis=-1))


def load(data):
    rows = []
    for split in ("train", "eval"):
        with open(os.path.join(data, f"{split}_reverberation.json")) as f:
            entries = json.load(f)["data"]
        with open(os.path.join(data, f"{split}.json")) as f:
            clips = json.load(f)
        for i, entry in enumerate(entries):
            rir = np.load(os.path.join(data, "binaural", entry["fname"])).astype(np.float64)
            clip = clips[i % len(clips)]  # a different sound for every response
            sound, _ = sf.read(os.path.join(data, "audio", clip["folder"], clip["id"] + ".wav"), dtype="float64")
            target = spatial_targets(parse_position(entry["sensor_position"]), parse_position(entry["source_position"]))
            rows.append((split, entry["fname"].split("/")[0], target, *rir_features(rir),
                         heard_spectral_shape(rir, sound)))
    split, room, targets, whole, direct, distance_cues, shape, heard_shape = zip(*rows)
    spatial = np.array([[t["distance"], t["azimuth"], t["elevation"]] for t in targets])
    return (np.array(split), np.array(room), spatial, np.array(whole), np.array(direct), np.array(distance_cues),
            np.array(shape), np.array(heard_shape))


def held_out_predictions(model, features, target, room, folds=5):
    """Predictions for every row from a model fitted on the other rooms (rooms dealt to folds)."""
    rooms = np.unique(room)
    folds = min(folds, len(rooms))  # a small dataset: one room per fold
    fold_of_room = {name: i % folds for i, name in enumerate(rooms)}
    fold = np.array([fold_of_room[r] for r in room])
    out = np.zeros(len(target), dtype=np.float64)
    for k in range(folds):
        test = fold == k
        out[test] = model.fit(features[~test], target[~test]).predict(features[test])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="data/embedded", help="an embedded dataset (python -m dataset.synthetic.generate)")
    args = p.parse_args()
    split, room, spatial, whole, direct, distance_cues, shape, heard_shape = load(args.data)
    if len(np.unique(room)) < 2:
        raise SystemExit(f"error: {args.data} holds one room; holding rooms out needs at least two")
    distance, azimuth, elevation = spatial.T
    front = (azimuth > 0) & (azimuth < 180)
    # Front/back is undefined on the interaural axis; score it where the source is 15 degrees or more off it.
    off_axis = np.abs(np.sin(np.radians(azimuth))) > np.sin(np.radians(15))
    classifier = HistGradientBoostingClassifier(max_iter=200, random_state=0)
    print(f"{len(room)} impulse responses in {len(np.unique(room))} rooms; rooms held out in "
          f"{min(5, len(np.unique(room)))} folds\n")
    print("front/back accuracy (sources >= 15 degrees off the interaural axis; chance 50 %):")
    predicted_front = {}
    for name, features in (("whole response ILD (what a long sound carries)", whole),
                           ("direct sound ILD, 5 ms (what onsets carry)", direct)):
        predicted_front[name] = held_out_predictions(classifier, features, front, room).astype(bool)
        accuracy = 100 * np.mean(predicted_front[name][off_axis] == front[off_axis])
        print(f"  {name:<50} {accuracy:5.1f} %")

    regressor = HistGradientBoostingRegressor(max_iter=200, random_state=0)
    predicted_distance = np.clip(np.round(held_out_predictions(regressor, distance_cues, distance, room)), 0, 20)

    evaluation, train = split == "eval", split == "train"
    mode_elevation = np.bincount(elevation[train]).argmax()
    print(f"\nelevation from the spectral shape at 3-14 kHz, where the pinna notch lies (the most common "
          f"elevation: MAE {np.abs(mode_elevation - elevation).mean():.1f} deg):")
    predicted_elevation = {}
    for name, features in (("of the direct sound's response", shape),
                           ("of a sound heard through the response", heard_shape)):
        predicted_elevation[name] = np.clip(np.round(held_out_predictions(regressor, features, elevation, room)),
                                            0, 179)
        print(f"  {name:<50} MAE {np.abs(predicted_elevation[name] - elevation).mean():5.1f} deg")
    mirrored = (360 - azimuth) % 360  # the same lateral angle on the other side of the interaural axis
    direct_front = predicted_front["direct sound ILD, 5 ms (what onsets carry)"]

    def scored(front_is_right, guessed_elevation=None):
        """Metrics of the true lateral angle, front/back as given, and the guessed elevation (by default
        the most common one)."""
        guessed_azimuth = np.where(front_is_right, azimuth, mirrored)[evaluation]
        if guessed_elevation is None:
            guessed_elevation = np.full(evaluation.sum(), mode_elevation)
        return metrics.spatial_metrics(guessed_azimuth, guessed_elevation,
                                       azimuth[evaluation], elevation[evaluation],
                                       predicted_distance[evaluation], distance[evaluation])

    oracle = scored(direct_front == front)
    coin = scored(np.random.default_rng(0).random(len(front)) < 0.5)
    heard_elevation = scored(direct_front == front,
                             predicted_elevation["of a sound heard through the response"][evaluation])
    chance = metrics.chance_metrics(np.ones((train.sum(), 1)), azimuth[train], elevation[train], distance[train],
                                    np.ones((evaluation.sum(), 1)), azimuth[evaluation], elevation[evaluation],
                                    distance[evaluation])
    print("\non the eval rooms' positions, in the paper's metrics:")
    print(f"  {'':<58} {'MAE (deg)':>9} {'DER (%)':>8}")
    print(f"  {'chance (best constant prediction)':<58} {chance['MAE']:9.2f} {chance['DER']:8.2f}")
    print(f"  {'oracle: true lateral angle, direct-sound front/back,':<58}")
    print(f"  {'  most common elevation; distance from DRR and level':<58} {oracle['MAE']:9.2f} {oracle['DER']:8.2f}")
    print(f"  {'oracle / chance':<58} {oracle['MAE'] / chance['MAE']:9.2f} {oracle['DER'] / chance['DER']:8.2f}")
    print(f"  {'the same with front/back at random: MAE / chance':<58} {coin['MAE'] / chance['MAE']:9.2f}")
    print(f"  {'the same, elevation heard through a clip: MAE / chance':<58} "
          f"{heard_elevation['MAE'] / chance['MAE']:9.2f}")


if __name__ == "__main__":
    main()
