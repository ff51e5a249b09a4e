"""The generator CLI writes the upstream on-disk formats, deterministically."""
import csv
import filecmp
import json
import os

import numpy as np
import pytest
import soundfile as sf

from dataset.spatial import parse_position, spatial_targets
from dataset.synthetic import generate, rooms, sources

SR = 32000
TINY = ["--n_train", "8", "--n_eval", "4", "--train_rooms", "2", "--eval_rooms", "1", "--positions_per_room", "6"]


def _generate(out, *extra):
    assert generate.main(["--out", str(out), *TINY, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("tiny"), "--seed", "0", "--workers", "2")


def _load(path):
    with open(path) as f:
        return json.load(f)


def _all_files(root):
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


# ---------------------------------------------------------------- formats
def test_clip_lists_and_wavs(tiny):
    mids = {c.mid for c in sources.CLASSES}
    for split, count in (("train", 8), ("eval", 4)):
        entries = _load(tiny / f"{split}.json")
        assert isinstance(entries, list) and len(entries) == count
        for entry in entries:
            assert set(entry) == {"id", "folder", "label"} and entry["folder"] == split
            assert 1 <= len(entry["label"]) <= 3 and set(entry["label"]) <= mids
            assert len(set(entry["label"])) == len(entry["label"])
            info = sf.info(str(tiny / "audio" / entry["folder"] / f"{entry['id']}.wav"))
            assert (info.samplerate, info.frames, info.channels, info.subtype) == (SR, 10 * SR, 1, "PCM_16")
    audio, _ = sf.read(str(tiny / "audio" / "train" / (_load(tiny / "train.json")[0]["id"] + ".wav")))
    assert 0.3 < np.abs(audio).max() < 0.95


def test_class_csv(tiny):
    with open(tiny / "class_labels_indices.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["index", "mid", "display_name"]
    assert len(rows) - 1 == len(sources.CLASSES) >= 12
    assert [int(r[0]) for r in rows[1:]] == list(range(len(sources.CLASSES)))
    assert [r[1] for r in rows[1:]] == [c.mid for c in sources.CLASSES]
    assert any("," in r[2] for r in rows[1:])  # a display name with a comma survives the quoting


def test_train_weights_follow_upstream(tiny):
    weights = np.loadtxt(tiny / "train_weight.csv", delimiter=",")
    entries = _load(tiny / "train.json")
    counts = {}
    for entry in entries:
        for mid in entry["label"]:
            counts[mid] = counts.get(mid, 0) + 1
    expected = [sum(1000.0 / (counts[mid] + 0.01) for mid in entry["label"]) for entry in entries]
    assert weights.shape == (len(entries),)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)


def test_reverberation_lists_and_rirs(tiny):
    for split, n_rooms in (("train", 2), ("eval", 1)):
        data = _load(tiny / f"{split}_reverberation.json")["data"]
        assert len(data) == n_rooms * 6
        for entry in data:
            assert set(entry) == {"fname", "sensor_position", "source_position", "room", "condition", "rt60",
                                  "room_size", "head_radius"}
            assert entry["fname"].startswith(entry["room"] + "/") and entry["fname"].endswith(".npy")
            size = parse_position(entry["room_size"])
            sensor, source = parse_position(entry["sensor_position"]), parse_position(entry["source_position"])
            assert np.all(sensor > 0) and np.all(sensor < size) and np.all(source > 0) and np.all(source < size)
            assert entry["condition"] in rooms.KINDS and 0.0 <= entry["rt60"] <= 1.0
            assert (entry["rt60"] == 0.0) == (entry["condition"] != "room")
            binaural = np.load(tiny / "binaural" / entry["fname"])
            mono = np.load(tiny / "mono" / entry["fname"])
            assert binaural.dtype == mono.dtype == np.float32
            assert binaural.shape[0] == 2 and mono.shape == (1, binaural.shape[1]) and binaural.shape[1] <= 64000
            assert np.all(np.isfinite(binaural)) and np.all(np.isfinite(mono))


def test_eval_rooms_are_disjoint_from_train_rooms(tiny):
    train = {e["room"] for e in _load(tiny / "train_reverberation.json")["data"]}
    evaluation = {e["room"] for e in _load(tiny / "eval_reverberation.json")["data"]}
    assert train == {"train_room00", "train_room01"} and evaluation == {"eval_room00"}
    assert sorted(os.listdir(tiny / "binaural")) == sorted(os.listdir(tiny / "mono")) == sorted(train | evaluation)
    # the names differ by construction; the conditions must too: no held-out room of the demo's 5 is
    # any of its 20 training rooms (free field has no room to tell apart: its positions differ)
    def condition(room):
        return room.kind, tuple(np.round(room.size, 3)), tuple(np.round(room.rt60_bands, 3))
    train_conditions = {condition(generate.room_of(0, "train", r)) for r in range(20)}
    held_out = [generate.room_of(0, "eval", r) for r in range(5)]
    assert not {condition(room) for room in held_out if not room.free_field} & train_conditions


def test_meta_records_settings(tiny):
    meta = _load(tiny / "meta.json")
    assert meta["complete"] is True
    assert meta["settings"]["seed"] == 0 and meta["settings"]["n_train"] == 8 and meta["settings"]["n_eval"] == 4


def test_each_split_spans_free_field_to_reverberant_rooms():
    def conditions(split, count):
        return [generate.room_of(0, split, r) for r in range(count)]
    evaluation, train = conditions("eval", 5), conditions("train", 20)
    assert evaluation[0].kind == "anechoic"  # the demo's 5 held-out rooms: one anechoic...
    rt60 = sorted(room.rt60 for room in evaluation[1:])
    assert np.round(rt60, 2).tolist() == [0.25, 0.52, 0.68, 0.95]  # ...and four from dry to reverberant (docs)
    kinds = [room.kind for room in train]
    assert kinds.count("anechoic") >= 1 and kinds.count("outdoor") >= 1
    assert min(room.rt60 for room in train if not room.free_field) < 0.2
    assert max(room.rt60 for room in train) > 0.9


def test_source_azimuths_cover_the_circle_evenly():
    # 20 rooms x 40 positions, as the demo: 800 independent uniform draws leave 10-degree bins
    # holding from 13 to 32 sources (seed 0); the per-room golden-ratio sequences hold 19-26
    azimuths = np.degrees([generate.source_azimuth(0, "train", r, p) for r in range(20) for p in range(40)])
    counts = np.histogram(azimuths, bins=36, range=(0, 360))[0]
    assert counts.min() >= 18 and counts.max() <= 27, counts
    one_room = np.sort(azimuths[:40])
    assert np.diff(np.append(one_room, one_room[0] + 360)).max() < 2.5 * 360 / 40


def test_written_positions_follow_the_azimuth_sequence(tiny):
    # the histogram above is of the sequence; the sources on disk must sit at its azimuths
    # (spatial.py's azimuth: 0 = right, 90 = front, counter-clockwise seen from above, as the
    # generator's angle), so that a generator ignoring it fails here
    for entry in _load(tiny / "train_reverberation.json")["data"]:
        room, position = entry["fname"][:-len(".npy")].split("/")
        offset = parse_position(entry["source_position"]) - parse_position(entry["sensor_position"])
        written = np.degrees(np.arctan2(-offset[2], offset[0])) % 360  # -z is front
        expected = np.degrees(generate.source_azimuth(0, "train", int(room[-2:]), int(position))) % 360
        assert abs((written - expected + 180) % 360 - 180) < 0.1, entry["fname"]


# ---------------------------------------------------------------- targets agree with the rendering
def _onset(x, level):
    """First sample whose magnitude reaches `level`."""
    return int(np.flatnonzero(np.abs(x) >= level)[0])


def test_spatial_targets_from_json_agree_with_the_rendered_direct_path(tiny):
    checked = 0
    for split in ("train", "eval"):
        for entry in _load(tiny / f"{split}_reverberation.json")["data"]:
            sensor, source = parse_position(entry["sensor_position"]), parse_position(entry["source_position"])
            targets = spatial_targets(sensor, source)
            binaural = np.load(tiny / "binaural" / entry["fname"])
            mono = np.load(tiny / "mono" / entry["fname"])
            distance = np.linalg.norm(source - sensor)
            direct = distance / rooms.SPEED_OF_SOUND * SR
            # the distance: the first arrival (amplitude 1 / distance) comes at distance / c
            assert abs(_onset(mono[0], 0.25 / distance) - direct) <= 1.5
            assert abs(targets["distance"] * 0.5 - distance) <= 0.25 + 1e-9
            # the direction: lateral sources reach the near ear first
            if abs(targets["elevation"] - 90) > 45:
                continue
            right = targets["azimuth"] <= 60 or targets["azimuth"] >= 300
            left = 120 <= targets["azimuth"] <= 240
            if not (right or left):
                continue
            left_onset, right_onset = (_onset(ear, 0.05 / distance) for ear in binaural)  # far ear is shadowed
            assert (right_onset < left_onset) if right else (left_onset < right_onset), entry
            checked += 1
    assert checked >= 3


# ---------------------------------------------------------------- determinism and CLI behaviour
def test_same_seed_gives_identical_files_for_any_worker_count(tiny, tmp_path):
    again = _generate(tmp_path / "again", "--seed", "0", "--workers", "1")
    files = [f for f in _all_files(tiny) if f != "meta.json"]
    assert files == [f for f in _all_files(again) if f != "meta.json"]
    _, mismatch, errors = filecmp.cmpfiles(tiny, again, files, shallow=False)
    assert mismatch == [] and errors == []


def test_different_seed_differs(tiny, tmp_path):
    other = _generate(tmp_path / "other", "--seed", "1", "--workers", "2")
    name = "audio/train/" + _load(tiny / "train.json")[0]["id"] + ".wav"
    assert not filecmp.cmp(tiny / name, other / name, shallow=False)
    fname = _load(tiny / "train_reverberation.json")["data"][0]["fname"]
    a, b = np.load(tiny / "binaural" / fname), np.load(other / "binaural" / fname)
    assert a.shape != b.shape or not np.array_equal(a, b)
    assert _load(tiny / "train_reverberation.json") != _load(other / "train_reverberation.json")


def test_rerun_skips_a_complete_dataset_and_regenerates_on_new_settings(tmp_path, capsys):
    out = _generate(tmp_path / "d", "--seed", "3", "--workers", "1")
    stamp = os.path.getmtime(out / "train.json")
    capsys.readouterr()
    _generate(out, "--seed", "3", "--workers", "2")
    assert "already" in capsys.readouterr().out
    assert os.path.getmtime(out / "train.json") == stamp
    assert generate.main(["--out", str(out), "--n_train", "3", "--n_eval", "2", "--train_rooms", "1",
                          "--eval_rooms", "1", "--positions_per_room", "2", "--workers", "1"]) == 0
    assert len(os.listdir(out / "audio" / "train")) == 3  # the old, larger generation was replaced
    assert sorted(os.listdir(out / "binaural")) == ["eval_room00", "train_room00"]


def test_ambisonics_are_opt_in_and_change_nothing_else(tiny, tmp_path):
    """`--ambisonic_order 2` (demo.sh ambisonics) adds ambisonics/ to the same data: the same
    seed gives the binaural demo's clips, rooms, positions and files, bit for bit, so the
    three demos are compared on identical held-out rooms. Without it nothing ambisonic is written."""
    assert not (tiny / "ambisonics").exists() and "ambisonic_order" not in _load(tiny / "meta.json")["settings"]
    ambisonic = _generate(tmp_path / "ambisonic", "--seed", "0", "--workers", "1", "--ambisonic_order", "2")
    assert _load(ambisonic / "meta.json")["settings"] == {**_load(tiny / "meta.json")["settings"], "ambisonic_order": 2}
    files = [f for f in _all_files(tiny) if f != "meta.json"]
    extra = [f for f in _all_files(ambisonic) if f not in files and f != "meta.json"]
    _, mismatch, errors = filecmp.cmpfiles(tiny, ambisonic, files, shallow=False)
    assert mismatch == [] and errors == []
    rirs = [f for f in files if f.startswith("mono/")]
    assert sorted(extra) == sorted("ambisonics/" + f[len("mono/"):] for f in rirs)
    reverberant = [e["fname"] for e in _load(tiny / "train_reverberation.json")["data"] if e["condition"] == "room"]
    assert reverberant  # the late tail, where the ambisonic noise is drawn, is covered
    for fname in reverberant:
        amb, mono = np.load(ambisonic / "ambisonics" / fname), np.load(tiny / "mono" / fname)
        assert amb.shape == (9, mono.shape[1]) and np.array_equal(amb[0], mono[0])


@pytest.mark.parametrize("bad", [["--n_train", "0"], ["--n_eval", "-1"], ["--positions_per_room", "x"],
                                 ["--workers", "0"], ["--seed", "-2"], ["--ambisonic_order", "3"]])
def test_bad_arguments_get_a_clear_error(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as excinfo:
        generate.main(["--out", str(tmp_path / "never"), *bad])
    assert excinfo.value.code == 2
    assert "expected a" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_refuses_to_overwrite_foreign_files(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "mine.wav").write_bytes(b"not ours")
    with pytest.raises(SystemExit, match="not written by this generator"):
        generate.main(["--out", str(tmp_path), *TINY])
    assert (tmp_path / "audio" / "mine.wav").exists()


def test_short_rt60_room_gives_a_finite_impulse_response(tmp_path):
    # Regression: format 1 wrote NaN tails here (round-off made the missing-energy share negative).
    for kind in generate.RIR_KINDS:
        os.makedirs(tmp_path / kind / "eval_room03")
    generate.make_position_files(str(tmp_path), 0, "eval", 3, 28, ambisonic_order=2)
    for kind in generate.RIR_KINDS:
        assert np.all(np.isfinite(np.load(tmp_path / kind / "eval_room03" / "28.npy")))
