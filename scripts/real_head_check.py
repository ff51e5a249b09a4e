"""Does a model trained on the embedded data hear a real head? An optional check on KEMAR.

    python scripts/real_head_check.py --ckpt outputs/demo/checkpoint-last.pth [--data data/embedded]
    python scripts/real_head_check.py --kemar_table

Needs the PyPI package `slab` (`pip install slab`), which bundles the MIT KEMAR dummy-head
HRIRs (Gardner & Martin 1994, normal pinna, 1.4 m, anechoic) in its wheel, so nothing is
downloaded at run time. slab is not a dependency of this project: without it this script
says so and stops. Run by hand (a minute on a CPU).

With --ckpt it spatialises the embedded evaluation clips with KEMAR's measured HRIRs (clip i
from a seeded random KEMAR direction within 30 degrees of the horizon), which no part of the
embedded data was made with, and prints what the model hears:
- side accuracy: the share of clearly lateral sources (lateral angle 30 degrees or more off
  the median plane) whose predicted lateral angle is on the correct side;
- lateral MAE beside a constant guess's (the median lateral angle of the directions);
- front/back accuracy and the great-circle MAE, for information.

With --kemar_table it prints KEMAR's band level differences and ITD on the horizon and its
pinna notch straight ahead at four elevations, the reference values that
tests/test_synthetic_physics.py pins the synthetic head against.
"""
import argparse
import json
import os
import sys

import numpy as np
import soundfile as sf
import torch
from scipy import signal

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import audio  # noqa: E402
from dataset.synthetic import head  # noqa: E402
from inference import UsageError, load_model  # noqa: E402
from util import metrics  # noqa: E402

KEMAR_DISTANCE_M = 1.4
LATERAL_SIDE_DEG = 30.0  # "clearly lateral": at least this far off the median plane
MAX_ELEVATION_DEG = 30.0
BANDS_HZ = ((200, 500), (500, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (8000, 12000))


def load_kemar():
    """(HRIRs [N, 2 (left, right), samples] at 32 kHz, azimuth [N], elevation [N]) in this
    project's frame (azimuth 0 = right, 90 = front), or SystemExit without slab."""
    try:
        import sounddevice  # noqa: F401  (slab's playback)
    except ImportError:
        pass
    except OSError:  # installed, but the PortAudio library is not (a headless machine): slab treats
        sys.modules["sounddevice"] = None  # sounddevice as absent and plays nothing, which this check never does
    try:
        import slab
    except ImportError:
        raise SystemExit("error: this check needs the optional package slab (pip install slab), which bundles "
                         "the MIT KEMAR HRIRs; it is not a dependency of this project") from None
    kemar = slab.HRTF.kemar()
    polar = np.asarray(kemar.sources.vertical_polar, dtype=np.float64)  # azimuth counter-clockwise from the front
    hrirs = np.stack([np.asarray(f.data, dtype=np.float64).T for f in kemar.data])  # [N, 2, samples], left first
    up, down = 320, int(round(kemar.samplerate / 100))  # 44.1 kHz -> 32 kHz
    hrirs = signal.resample_poly(hrirs, up, down, axis=-1)
    return hrirs, (polar[:, 0] + 90.0) % 360.0, polar[:, 1]


def band_db(x, lo, hi, n=8192):
    power = np.abs(np.fft.rfft(x, n)) ** 2
    f = np.fft.rfftfreq(n, 1 / audio.SAMPLE_RATE)
    return 10 * np.log10(power[(f >= lo) & (f < hi)].sum())


def itd_ms(hrir, band):
    """Left minus right arrival (ms) from the band-limited cross-correlation peak."""
    n, up = 8192, 16
    f = np.fft.rfftfreq(n, 1 / audio.SAMPLE_RATE)
    weight = (f >= band[0]) & (f <= band[1])
    xcorr = np.fft.irfft(np.fft.rfft(hrir[0], n) * np.conj(np.fft.rfft(hrir[1], n)) * weight, n * up)
    lag = int(np.argmax(xcorr))
    return 1e3 * (lag - n * up if lag > n * up // 2 else lag) / (audio.SAMPLE_RATE * up)


def print_kemar_table(hrirs, azimuth, elevation):
    print("azimuth (0 = right, 90 = front)   ILD right - left (dB) in", ", ".join(f"{lo}-{hi}" for lo, hi in BANDS_HZ),
          "Hz   ITD (ms) 80-600 Hz, 2-10 kHz")
    for target in range(0, 360, 15):
        i = int(np.argmin(np.abs((azimuth - target + 180) % 360 - 180) + 100 * np.abs(elevation)))
        ild = [band_db(hrirs[i, 1], lo, hi) - band_db(hrirs[i, 0], lo, hi) for lo, hi in BANDS_HZ]
        print(f"{azimuth[i]:6.1f}  " + " ".join(f"{v:6.1f}" for v in ild)
              + f"   {itd_ms(hrirs[i], (80, 600)):.3f} {itd_ms(hrirs[i], (2000, 10000)):.3f}")


def deepest_dip(x, search_hz=(5000, 12000), n=4096):
    """(Hz, dB) of the deepest spectral dip of one ear's response against the median level of the
    two-thirds of an octave around each frequency: a sharp notch, not the slope of the spectrum."""
    f = np.fft.rfftfreq(n, 1 / audio.SAMPLE_RATE)
    level = 20 * np.log10(np.abs(np.fft.rfft(x, n)) + 1e-12)
    search = np.flatnonzero((f > search_hz[0]) & (f < search_hz[1]))
    dips = level[search] - np.array([np.median(level[(f > f[i] / 1.26) & (f < f[i] * 1.26)]) for i in search])
    return f[search[np.argmin(dips)]], dips.min()


def print_kemar_notches(hrirs, azimuth, elevation):
    print("elevation (deg), straight ahead   right ear's pinna notch: frequency (Hz), "
          "depth against its neighbourhood (dB)")
    for target in (-20, 0, 20, 40):
        i = int(np.argmin(np.abs((azimuth - 90 + 180) % 360 - 180) + np.abs(elevation - target)))
        hz, db = deepest_dip(hrirs[i, 1])
        print(f"{elevation[i]:6.1f}  {hz:7.0f} {db:6.1f}")


def spatialised_clips(data, hrirs, azimuth, elevation, normalize, seed=0):
    """(binaural clips [N, 2, T], azimuth class [N], elevation class [N]) of the eval clips."""
    with open(os.path.join(data, "eval.json")) as f:
        entries = json.load(f)
    usable = np.flatnonzero(np.abs(elevation) <= MAX_ELEVATION_DEG)
    chosen = usable[np.random.default_rng(seed).integers(0, len(usable), len(entries))]
    # KEMAR's gain is the lab's: match the synthetic head's mean energy at the same distance
    reference = head.free_field_hrir(90, 0, KEMAR_DISTANCE_M, audio.SAMPLE_RATE, 1024)
    gain = np.sqrt(np.sum(reference ** 2) / np.mean(np.sum(hrirs[usable] ** 2, axis=(1, 2))))
    clips = []
    for entry, i in zip(entries, chosen):
        mono, sr = sf.read(os.path.join(data, "audio", entry["folder"], entry["id"] + ".wav"), dtype="float64")
        if sr != audio.SAMPLE_RATE:
            raise SystemExit(f"error: {entry['id']}: expected {audio.SAMPLE_RATE} Hz audio, got {sr}")
        if normalize:
            mono = audio.normalize_rms(mono)
        ears = signal.fftconvolve(mono[None, :], gain * hrirs[i], axes=-1)
        clips.append(audio.fit_length(ears, audio.CLIP_SAMPLES).astype(np.float32))
    azimuth_class = np.round(azimuth[chosen]).astype(np.int64) % 360
    elevation_class = np.clip(np.round(elevation[chosen]).astype(np.int64) + 90, 0, 179)
    return np.stack(clips), azimuth_class, elevation_class


@torch.no_grad()
def predict(model, clips, batch_size=16):
    rows = {"azimuth_prob": [], "elevation_prob": [], "distance_prob": []}
    for start in range(0, len(clips), batch_size):
        _, distance, azimuth, elevation = model.forward_audio(torch.from_numpy(clips[start:start + batch_size]))
        for name, logits in (("azimuth_prob", azimuth), ("elevation_prob", elevation), ("distance_prob", distance)):
            rows[name].append(logits.float().softmax(-1).numpy())
    return {name: np.concatenate(parts) for name, parts in rows.items()}


def check(args, hrirs, azimuth, elevation):
    try:
        model, _, hearing = load_model(args.ckpt)
    except UsageError as error:
        raise SystemExit(f"error: {error}") from None
    if model.num_channels != 2:
        raise SystemExit(f"error: {args.ckpt} takes {model.num_channels} input channel(s); the real-head check "
                         f"needs a binaural (two-ear) model")
    normalize = hearing.normalize  # as the checkpoint's training heard its sources
    clips, true_azimuth, true_elevation = spatialised_clips(args.data, hrirs, azimuth, elevation, normalize)
    predicted = metrics.predicted_classes(predict(model, clips))
    true_lateral = metrics.lateral_degrees(true_azimuth, true_elevation - 90.0)
    pred_lateral = predicted["lateral_deg"]
    lateral = np.abs(true_lateral) >= LATERAL_SIDE_DEG
    side_accuracy = 100.0 * np.mean(np.sign(pred_lateral[lateral]) == np.sign(true_lateral[lateral]))
    result = metrics.spatial_metrics(predicted["azimuth"], predicted["elevation"], true_azimuth, true_elevation,
                                     np.zeros(len(clips), dtype=np.int64), np.zeros(len(clips), dtype=np.int64),
                                     lateral_pred_deg=pred_lateral)
    constant_lateral = float(np.abs(true_lateral - np.median(true_lateral)).mean())
    report = {"clips": len(clips), "lateral_clips": int(lateral.sum()), "side_accuracy": side_accuracy,
              "lateral_MAE": result["lateral_MAE"], "lateral_MAE_constant": constant_lateral,
              "lateral_MAE_ratio": result["lateral_MAE"] / constant_lateral,
              "front_back_accuracy": result["front_back_accuracy"], "MAE": result["MAE"],
              "MAE_front_back_resolved": result["MAE_front_back_resolved"],
              "pred_lateral_abs_max": float(np.abs(pred_lateral).max())}
    print(f"KEMAR (MIT, anechoic), {len(clips)} eval clips within {MAX_ELEVATION_DEG:g} deg of the horizon "
          f"(source level normalised: {normalize}):")
    print(f"  side right for {side_accuracy:.1f} % of the {int(lateral.sum())} sources >= {LATERAL_SIDE_DEG:g} deg "
          f"off the median plane (target >= 90 %)")
    print(f"  lateral MAE {result['lateral_MAE']:.1f} deg against {constant_lateral:.1f} deg for a constant guess "
          f"= {report['lateral_MAE_ratio']:.2f}x (target <= 0.5x); largest predicted |lateral| "
          f"{report['pred_lateral_abs_max']:.0f} deg")
    print(f"  front/back {result['front_back_accuracy']:.1f} %, great-circle MAE {result['MAE']:.1f} deg "
          f"({result['MAE_front_back_resolved']:.1f} with front/back confusions resolved)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", help="a binaural Spatial-AST checkpoint, e.g. outputs/demo/checkpoint-last.pth")
    p.add_argument("--data", default="data/embedded", help="an embedded dataset: its eval clips are the sounds")
    p.add_argument("--json", default="", help="also write the figures to this json file")
    p.add_argument("--kemar_table", action="store_true",
                   help="print KEMAR's band ILDs and ITDs on the horizon and its pinna notch straight ahead")
    args = p.parse_args()
    if not (args.ckpt or args.kemar_table):
        p.error("give --ckpt CKPT, or --kemar_table")
    hrirs, azimuth, elevation = load_kemar()
    if args.kemar_table:
        print_kemar_table(hrirs, azimuth, elevation)
        print_kemar_notches(hrirs, azimuth, elevation)
    if args.ckpt:
        torch.set_grad_enabled(False)
        check(args, hrirs, azimuth, elevation)


if __name__ == "__main__":
    main()
