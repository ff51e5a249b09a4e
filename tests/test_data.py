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
from dataset.metadata import (StringColumn, load_class_table, load_clip_weights, load_clips, load_room_impulses,
                              load_weights, take_ragged)
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


def test_hdf5_pack_member_layouts(tmp_path):
    ramp = np.arange(100, dtype=np.float32) / 100
    with h5py.File(tmp_path / "pack.h5", "w") as pack:
        pack["flat.wav"] = ramp
        pack["channels_last.wav"] = np.stack([ramp, -ramp], axis=1)  # [samples, channels], as soundfile reads
        pack["channels_first.wav"] = np.stack([ramp, -ramp])
        pack["square.wav"] = np.zeros((2, 2), dtype=np.float32)
    reader = audio.AudioReader()
    for name in ("flat", "channels_last", "channels_first"):  # the first channel, never interleaved
        np.testing.assert_array_equal(reader.read(str(tmp_path), "pack.h5", name), ramp)
    with pytest.raises(DataError, match=r"pack.h5\[square.wav\]: expected samples or \[channels, samples\], "
                                        r"got an array of shape \[2, 2\]"):
        reader.read(str(tmp_path), "pack.h5", "square")


def _pack_folder(audio_root, folder, leave_out=()):
    """Replace <audio_root>/<folder> by an HDF5 pack of its clips, as scripts/pack_hdf5.py would."""
    directory = os.path.join(audio_root, folder)
    with h5py.File(directory + ".h5", "w") as pack:
        for name in sorted(os.listdir(directory)):
            if name[:-len(".wav")] not in leave_out:
                pack[name] = sf.read(os.path.join(directory, name), dtype="int16")[0]
    shutil.rmtree(directory)
    os.rename(directory + ".h5", directory)


@pytest.fixture()
def broken(tmp_path):
    return write_tiny_dataset(tmp_path, n_train=3, n_eval=2, n_rirs=2, seconds=1.0)


def test_missing_audio_file_is_named_at_start_up(broken):
    os.remove(os.path.join(broken["audio_root"], "train", "train001.wav"))
    with pytest.raises(DataError, match=r"1 of 3 clips have no audio file, the first is entry 1 \(id train001\): "
                                        r".*train001.wav not found; pass --missing_audio skip"):
        _dataset(broken)


def test_missing_audio_skip_drops_clips_and_aligns_weights(broken):
    for clip_id in ("train000", "train002"):
        os.remove(os.path.join(broken["audio_root"], "train", clip_id + ".wav"))
    np.savetxt(broken["weight_csv"], [1.0, 5.0, 7.0])
    dataset = _dataset(broken, missing_audio="skip")
    assert len(dataset) == 1 and dataset.clips[0].id == "train001" and list(dataset.clips.missing) == [
        "train000", "train002"]
    assert dataset.clips.source_index.tolist() == [1]
    assert load_clip_weights(broken["weight_csv"], dataset.clips).tolist() == [5.0]  # entry 1's weight
    assert dataset[0][2].tolist() == [0.0, 1.0, 0.0]  # the kept clip keeps its own label
    np.savetxt(broken["weight_csv"], [1.0, 0.0, 7.0])
    with pytest.raises(DataError, match="every clip that has audio has weight 0"):
        load_clip_weights(broken["weight_csv"], dataset.clips)


def test_a_clip_missing_from_an_hdf5_pack_is_found_at_start_up(broken):
    # the packer leaves out clips it cannot read: the run must hear of it at start-up, not hours in
    _pack_folder(broken["audio_root"], "train", leave_out={"train001"})
    with pytest.raises(DataError, match=r"1 of 3 clips have no audio file, the first is entry 1 \(id train001\)"):
        _dataset(broken)
    dataset = _dataset(broken, missing_audio="skip")
    assert [clip.id for clip in dataset.clips] == ["train000", "train002"] and len(dataset[1][0]) == 1
    os.remove(os.path.join(broken["audio_root"], "train"))  # a new file: HDF5 shares a still-open one's handle
    with open(os.path.join(broken["audio_root"], "train"), "wb") as f:
        f.write(b"not hdf5")
    with pytest.raises(DataError, match=r"train: a file where a folder of clips was expected, and not a readable HDF5"):
        _dataset(broken)


def test_check_files_none_trusts_the_list(broken):
    os.remove(os.path.join(broken["audio_root"], "train", "train001.wav"))
    assert len(_dataset(broken, check_files=False)) == 3


def test_unreadable_audio_names_file_and_entry_in_evaluation(broken):
    with open(os.path.join(broken["audio_root"], "train", "train002.wav"), "wb") as f:
        f.write(b"this is not a wav file")
    dataset = _dataset(broken, train=False)
    with pytest.raises(DataError, match=r"train002.wav: cannot read audio.*entry 2"):
        dataset[2]


def test_training_replaces_an_undecodable_clip_and_counts_it(broken):
    with open(os.path.join(broken["audio_root"], "train", "train002.wav"), "wb") as f:
        f.write(b"this is not a wav file")
    dataset = _dataset(broken)
    torch.manual_seed(0)
    labels = [dataset[2][2] for _ in range(5)]
    assert all(label.sum() == 1.0 and label[2] == 0 for label in labels)  # another clip's label, never train002's
    assert dataset.take_decode_failures() >= 5 and dataset.take_decode_failures() == 0
    # counts made in DataLoader workers reach the main process
    loader = torch.utils.data.DataLoader(dataset, sampler=[2, 2, 2, 2], batch_size=2, num_workers=2)
    assert sum(len(batch[0]) for batch in loader) == 4
    assert dataset.take_decode_failures() >= 4


def test_a_list_without_any_decodable_clip_stops(broken):
    for i in range(3):
        with open(os.path.join(broken["audio_root"], "train", f"train00{i}.wav"), "wb") as f:
            f.write(b"not audio")
    with pytest.raises(DataError, match="100 clips in a row failed to decode"):
        _dataset(broken)[0]


def test_clip_table_is_columnar_and_compact(tmp_path):
    """No Python object per clip: 20,000 clips cost under 60 bytes each (an 11-byte id, 8-byte offsets...)."""
    import gc
    import tracemalloc
    classes = load_class_table(write_tiny_dataset(tmp_path, n_train=1, n_eval=1, n_rirs=1, seconds=0.1)["label_csv"])
    entries = [{"id": f"YT{i:09d}", "folder": f"part{i % 3}", "label": ["/t/low", "/t/high", "/t/low"]}
               for i in range(20000)]
    with open(tmp_path / "big.json", "w") as f:
        json.dump(entries, f)
    del entries
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    clips = load_clips(str(tmp_path / "big.json"), classes, str(tmp_path), check_files=False)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert retained < 60 * len(clips), retained  # one object per clip alone would be ~200 bytes
    assert clips.folders == ["part0", "part1", "part2"] and clips.folder(4) == "part1"
    assert clips[7].id == "YT000000007" and clips[7].labels == ("/t/low", "/t/high")  # a repeated label counts once
    assert clips.class_counts().tolist() == [20000, 0, 20000]


def test_ragged_columns_take_rows():
    column = StringColumn(["a", "", "ccc", "dé"])
    assert list(column) == ["a", "", "ccc", "dé"] and list(column.take([3, 0, 1])) == ["dé", "a", ""]
    values, offsets = take_ragged(np.array([1, 2, 3, 4, 5]), np.array([0, 2, 2, 5]), [2, 0])
    assert values.tolist() == [3, 4, 5, 1, 2] and offsets.tolist() == [0, 3, 5]


def test_start_up_lists_each_folder_once(tiny_data, monkeypatch):
    """Checking 2M clips must not stat 2M files: one directory listing per folder."""
    listed, stats = [], []
    real_scandir, real_isfile = os.scandir, os.path.isfile
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(path) or real_scandir(path))
    monkeypatch.setattr(os.path, "isfile", lambda path: stats.append(path) or real_isfile(path))
    clips = load_clips(tiny_data["train_json"], load_class_table(tiny_data["label_csv"]), tiny_data["audio_root"])
    assert len(clips) == 8 and len(listed) == 1 and len(stats) == 1  # the folder (is it an HDF5 pack?)


def test_add_rolled_is_roll_gain_and_mix_in_one_pass():
    rng = np.random.default_rng(0)
    for length in (7, 10, 13):  # shorter than, as long as and longer than the output
        signal = rng.standard_normal(length).astype(np.float32)
        for shift in (0, 3, length - 1):
            expected = 0.5 * audio.fit_length(np.roll(signal, shift), 10)
            out = audio.add_rolled(np.zeros(10, dtype=np.float32), signal, shift, 0.5)
            np.testing.assert_allclose(out, expected, rtol=1e-6)
            out = audio.add_rolled(np.ones(10, dtype=np.float32), signal, shift, 0.5, scratch=np.empty(10, np.float32))
            np.testing.assert_allclose(out, 1 + expected, rtol=1e-6)
    assert audio.rms_gain(np.zeros(4, dtype=np.float32)) == 1.0
    dither = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 1e-9  # -180 dBFS: silence
    assert audio.rms_gain(dither) == 1.0
    quiet = dither * 1e4  # -100 dBFS is still sound, brought to -14
    assert audio.rms_gain(quiet) == pytest.approx(10 ** (-14 / 20) / np.sqrt(np.mean(quiet.astype(np.float64) ** 2)),
                                                  rel=1e-4)
    assert audio.rms_gain(np.full(100, 0.5, dtype=np.float32)) == pytest.approx(10 ** (-14 / 20) / 0.5)
    pcm = np.array([16384, -16384] * 50, dtype=np.int16)  # int16 samples scaled to +-0.5
    assert audio.rms_gain(pcm, scale=1 / 32768) == pytest.approx(10 ** (-14 / 20) / 0.5)


def test_clips_longer_than_10_s_are_normalised_over_their_length_and_cut(tmp_path):
    data = write_tiny_dataset(tmp_path, n_train=2, n_eval=1, n_rirs=1, seconds=10.5)
    dataset = _dataset(data, mixup=1.0, normalize=True)
    waveform = dataset[0][0]
    assert waveform.shape == (1, 320000) and torch.isfinite(waveform).all()


def test_normalised_rolled_mixup_item_matches_the_formula(tiny_data):
    """An item is lam * g1 * roll(norm(a), s1) + (1 - lam) * g2 * roll(norm(b), s2), labels mixed alike."""
    dataset = _dataset(tiny_data, mixup=1.0, roll_mag_aug=True, normalize=True)
    torch.manual_seed(3)
    waveform, _, labels, _, _, rir_index = dataset[1]
    torch.manual_seed(3)  # replay the item's random numbers, in the order the dataset draws them
    rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
    assert rng.integers(len(dataset.rirs)) == rir_index and rng.random() < 1.0
    lam, expected, expected_labels = rng.beta(10, 10), np.zeros(320000), np.zeros(3)
    for index, weight in ((1, lam), (None, 1 - lam)):
        index = int(rng.integers(len(dataset))) if index is None else index
        clip = audio.normalize_rms(dataset.reader.read(tiny_data["audio_root"], "train", f"train{index:03d}"))
        shift = rng.integers(len(clip))
        expected += weight * (rng.beta(10, 10) + 0.5) * audio.fit_length(np.roll(clip, shift), 320000)
        expected_labels[index % 3] += weight
    np.testing.assert_allclose(waveform[0].numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(labels.numpy(), expected_labels, atol=1e-6)


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
    ('[{"id": "x", "folder": "train", "label": null}]', r"entry 0 \(id x\): expected 'label' to be a list of class "
                                                        r"ids \(mids\), got None"),
    ('[{"id": "x", "folder": "train", "label": [["/m/a"]]}]', r"entry 0 \(id x\): expected 'label' to be a list"),
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


def test_impulse_response_shapes_are_checked_at_start_up_and_nan_when_read(broken):
    room = os.path.join(broken["root"], "binaural", "train_room")
    np.save(os.path.join(room, "1.npy"), np.zeros((1, 100), dtype=np.float32))  # a mono RIR among binaural ones
    with pytest.raises(DataError, match=r"train_room/1.npy: impulse response has shape \[1, 100\], expected "
                                        r"\[2, samples\] for this reverb type \[entry 1 of .*train_reverb.*json\]"):
        _dataset(broken)
    assert len(_dataset(broken, check_files=False)) == 3  # --check_files none reads no header
    for name in ("0.npy", "1.npy"):  # NaN shows only in the data, which start-up does not read
        np.save(os.path.join(room, name), np.full((2, 100), np.nan, dtype=np.float32))
    dataset = _dataset(broken)
    with pytest.raises(DataError, match=r"npy: impulse response contains NaN or infinite values \[entry \d of "):
        dataset[0]


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




def test_eval_pairing_survives_skipped_clips(broken):
    full = _dataset(broken, train=False).eval_rir_index
    assert full[1] != full[2]  # else pairing by position in the kept list would pass as well
    os.remove(os.path.join(broken["audio_root"], "train", "train001.wav"))
    partial = _dataset(broken, train=False, missing_audio="skip").eval_rir_index
    assert partial.tolist() == full[[0, 2]].tolist()  # each remaining clip keeps its RIR
