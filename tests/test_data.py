"""Data formats, coordinate conventions and bad-input errors."""
import json
import os
import shutil

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import CLASSES, write_tiny_dataset
from dataset import audio
from dataset.audio import DataError
from dataset.metadata import load_class_table, load_clips, load_room_impulses, load_weights
from dataset.samplers import WeightedDistributedSampler
from dataset.spatial import direction_words, parse_position, spatial_targets
from dataset.spatial_dataset import SpatialSoundDataset

LISTENER = np.array([0.0, 1.5, 0.0])


@pytest.mark.parametrize("offset, azimuth, elevation", [
    ((0, 0, -2), 90, 90),     # front: -z
    ((0, 0, 2), 270, 90),     # back: +z
    ((2, 0, 0), 0, 90),       # right: +x
    ((-2, 0, 0), 180, 90),    # left: -x
    ((0, 2, -1e-9), 90, 179),  # straight up: the top class (upstream wrapped this to 0)
    ((0, -2, 0), 0, 0),       # straight down
    ((1, 1, -1), 45, 90 + 35),  # front-right, above: elevation atan(1 / sqrt(2)) = 35.26 deg
])
def test_direction_targets_worked_examples(offset, azimuth, elevation):
    targets = spatial_targets(LISTENER, LISTENER + np.array(offset, dtype=float))
    assert (targets["azimuth"], targets["elevation"]) == (azimuth, elevation)


@pytest.mark.parametrize("metres, distance_class", [
    (0.1, 0), (0.3, 1), (0.5, 1), (1.0, 2), (1.24, 2), (1.26, 3), (10.0, 20), (14.0, 20)])
def test_distance_bins_of_half_a_metre_clipped_to_20(metres, distance_class):
    assert spatial_targets(LISTENER, LISTENER + [metres, 0, 0])["distance"] == distance_class


def test_direction_words():
    assert direction_words(0, 0) == "right"
    assert direction_words(90, 0) == "front"
    assert direction_words(135, 30) == "left, front, above"
    assert direction_words(270, -40) == "behind, below"


def test_positions_are_parsed_strictly():
    assert parse_position("1,2.5,-3").tolist() == [1.0, 2.5, -3.0]
    for bad in ("1,2", "a,b,c", "1,2,nan"):
        with pytest.raises(ValueError, match="x,y,z"):
            parse_position(bad)


def test_audio_is_resampled_to_32k_first_channel_kept(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    stereo = np.stack([np.sin(2 * np.pi * 1000 * t), np.zeros(sr)], axis=1).astype(np.float32)
    sf.write(tmp_path / "a.flac", stereo, sr)
    signal, original_sr = audio.read_audio_file(str(tmp_path / "a.flac"))
    assert original_sr == sr and signal.shape == (32000,)
    spectrum = np.abs(np.fft.rfft(signal))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=1)  # 1 Hz bins: the tone stays at 1 kHz
    assert np.std(signal[1000:-1000]) == pytest.approx(np.sqrt(0.5), rel=1e-2)


def test_padding_cutting_and_rms_normalisation():
    assert audio.fit_length(np.ones(5), 8).tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert audio.fit_length(np.ones((2, 9)), 4).shape == (2, 4)
    loud = audio.normalize_rms(np.full(100, 0.9))
    assert 20 * np.log10(np.sqrt(np.mean(loud ** 2))) == pytest.approx(-14.0)
    assert np.all(audio.normalize_rms(np.zeros(10)) == 0)


def _dataset(data, **kwargs):
    classes = load_class_table(data["label_csv"])
    clip_json = kwargs.pop("clip_json", data["train_json"])
    options = dict(reverb_json=data["reverb_train"], reverb_root=data["root"], reverb_type="binaural", train=True)
    options.update(kwargs)
    return SpatialSoundDataset(clip_json, data["audio_root"], classes, **options)


def test_items_have_the_documented_shapes(tiny_data):
    waveform, rir, labels, spatial, index, rir_index = _dataset(tiny_data)[1]
    assert waveform.shape == (1, 320000) and rir.shape == (2, 64000)
    assert labels.tolist() == [0.0, 1.0, 0.0] and spatial.dtype == torch.long and index == 1
    mono = _dataset(tiny_data, reverb_type="mono")[0][1]
    assert mono.shape == (1, 64000)


def test_mixup_mixes_waveforms_and_labels(tiny_data):
    dataset = _dataset(tiny_data, mixup=1.0)
    torch.manual_seed(0)
    sums = [dataset[i][2].sum().item() for i in range(len(dataset))]
    assert sums == pytest.approx([1.0] * len(dataset))  # one label per clip: lambda + (1 - lambda)
    mixed = [dataset[0][2] for _ in range(8)]
    assert any(((m > 0) & (m < 1)).sum() == 2 for m in mixed)  # two classes with fractional weights


def test_eval_pairs_each_clip_with_a_fixed_rir(tiny_data):
    first = _dataset(tiny_data, train=False, clip_json=tiny_data["eval_json"])
    torch.manual_seed(1)
    pairs = [first[i][5] for i in range(len(first))]
    torch.manual_seed(2)
    second = _dataset(tiny_data, train=False, clip_json=tiny_data["eval_json"])
    assert [second[i][5] for i in range(len(second))] == pairs == first.eval_rir_index.tolist()


def test_targets_come_from_the_reverb_json(tiny_data):
    rirs = load_room_impulses(tiny_data["reverb_train"], tiny_data["root"], "binaural")
    # the fixture places source i at azimuth 90 * i degrees, 1 + i metres away
    assert [(r.azimuth, r.distance) for r in rirs] == [(0, 2), (90, 4), (180, 6), (270, 8)]


def test_hdf5_packed_audio_is_read_like_files(tiny_data, tmp_path):
    clip_dir = os.path.join(tiny_data["audio_root"], "train")
    with h5py.File(tmp_path / "packed.h5", "w") as pack:
        for name in os.listdir(clip_dir):
            signal, _ = sf.read(os.path.join(clip_dir, name), dtype="int16")
            pack[name] = signal
    reader = audio.AudioReader()
    from_pack = reader.read(str(tmp_path), "packed.h5", "train000")
    from_file = reader.read(tiny_data["audio_root"], "train", "train000")
    assert np.allclose(from_pack, from_file, atol=1e-4)
    with pytest.raises(DataError, match="packed.h5"):
        reader.read(str(tmp_path), "packed.h5", "missing")


@pytest.fixture()
def broken(tmp_path):
    return write_tiny_dataset(tmp_path, n_train=3, n_eval=2, n_rirs=2, seconds=1.0)


def test_missing_audio_file_is_named_at_start_up(broken):
    os.remove(os.path.join(broken["audio_root"], "train", "train001.wav"))
    with pytest.raises(DataError, match=r"entry 1 \(id train001\).*train001.wav not found"):
        _dataset(broken)


def test_unreadable_audio_names_file_and_entry(broken):
    with open(os.path.join(broken["audio_root"], "train", "train002.wav"), "wb") as f:
        f.write(b"this is not a wav file")
    dataset = _dataset(broken)
    with pytest.raises(DataError, match=r"train002.wav: cannot read audio.*entry 2"):
        dataset[2]


def test_unknown_label_is_named(broken):
    with open(broken["train_json"]) as f:
        entries = json.load(f)
    entries[1]["label"] = ["/m/not_a_class"]
    with open(broken["train_json"], "w") as f:
        json.dump(entries, f)
    with pytest.raises(DataError, match=r"entry 1 \(id train001\): label '/m/not_a_class' is not in the class csv"):
        load_clips(broken["train_json"], load_class_table(broken["label_csv"]), broken["audio_root"])


@pytest.mark.parametrize("content, message", [
    ("{not json", "malformed clip list json"),
    ('{"id": "x"}', "expected a non-empty json list"),
    ('[{"id": "x", "label": []}]', "entry 0: expected keys"),
])
def test_malformed_clip_json(broken, content, message):
    with open(broken["train_json"], "w") as f:
        f.write(content)
    with pytest.raises(DataError, match=message):
        load_clips(broken["train_json"], load_class_table(broken["label_csv"]), broken["audio_root"])


@pytest.mark.parametrize("rir, message", [
    (np.zeros((3, 100), dtype=np.float32), r"shape \[3, 100\], expected \[2, samples\]"),
    (np.zeros(100, dtype=np.float32), r"shape \[100\]"),
    (np.full((2, 100), np.nan, dtype=np.float32), "NaN or infinite"),
])
def test_bad_impulse_response_is_named(broken, rir, message):
    path = os.path.join(broken["root"], "binaural", "train_room", "0.npy")
    np.save(path, rir)
    with pytest.raises(DataError, match="0.npy: .*" + message):
        audio.read_rir(path, 2)


def test_reverb_json_errors(broken):
    with open(broken["reverb_train"], "w") as f:
        json.dump({"data": [{"fname": "x.npy", "sensor_position": "0,0", "source_position": "1,1,1"}]}, f)
    with pytest.raises(ValueError, match="entry 0 sensor_position"):
        load_room_impulses(broken["reverb_train"], broken["root"], "binaural")
    shutil.rmtree(os.path.join(broken["root"], "binaural"))
    with pytest.raises(DataError, match="impulse response .*not found"):
        load_room_impulses(broken["reverb_eval"], broken["root"], "binaural")


def test_weight_csv_must_have_one_weight_per_clip(broken):
    assert load_weights(broken["weight_csv"], 3).shape == (3,)
    with pytest.raises(DataError, match="3 weights for 5 training clips"):
        load_weights(broken["weight_csv"], 5)


def test_class_csv_errors(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="index,mid,display_name"):
        load_class_table(str(path))
    path.write_text("index,mid,display_name\n0,/m/a,A\n1,/m/a,B\n")
    with pytest.raises(DataError, match="duplicate class ids"):
        load_class_table(str(path))
    assert len(CLASSES) == 3  # the fixture's own table stays valid


def test_weighted_sampler_deals_one_draw_to_the_ranks():
    weights = np.array([0.0, 1.0, 1.0, 8.0])
    ranks = [WeightedDistributedSampler(weights, 1000, 2, rank, replacement=True, global_draw=True, seed=3)
             for rank in range(2)]
    draws = [list(iter(r)) for r in ranks]
    assert len(draws[0]) == len(draws[1]) == 500
    everything = np.array(draws[0] + draws[1])
    assert 0 not in everything  # zero weight is never drawn
    assert np.mean(everything == 3) == pytest.approx(0.8, abs=0.05)
    ranks[0].set_epoch(1)
    assert list(iter(ranks[0])) != draws[0]


def test_weighted_sampler_per_rank_partition_and_bad_settings():
    weights = np.ones(10)
    parts = [list(iter(WeightedDistributedSampler(weights, 0, 2, rank, replacement=False, global_draw=False)))
             for rank in range(2)]
    assert len(parts[0]) == 5 and not set(parts[0]) & set(parts[1])
    with pytest.raises(DataError, match="without replacement"):
        WeightedDistributedSampler(weights, 100, 1, 0, replacement=False, global_draw=True)
