"""End-to-end tests of inference.py on tiny checkpoints made here (untrained: only the plumbing is tested)."""
import argparse
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import inference
from conftest import CLASSES
from models.frontend import mel_matrix
from models.spatial_ast import _frozen_frontend_reference, build_AST_tiny
from util.checkpoint import save_checkpoint

SR = 32000
CLASS_RECORDS = [{"mid": mid, "name": name} for mid, name in CLASSES]


def make_checkpoint(path, num_channels=2, classes=True, published=False):
    """A tiny model in this project's checkpoint layout, or in the published finetuned.pth layout."""
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=len(CLASSES), num_channels=num_channels)
    state = model.state_dict()
    args = {"model": "build_AST_tiny", "nb_classes": len(CLASSES), "audio_normalize": False,
            "reverb_type": "binaural" if num_channels == 2 else "mono"}
    checkpoint = {"model": state, "optimizer": {}, "epoch": 0, "scaler": {}, "args": args}
    if published:
        state.update(_frozen_frontend_reference(model))
        checkpoint["args"] = argparse.Namespace(**args)
    elif classes:
        checkpoint.update(classes=CLASS_RECORDS, best_mAP=0.0)
    save_checkpoint(str(path), checkpoint)
    return str(path)


def write_wav(path, signal, sample_rate=SR):
    """signal: [channels, samples] (channel 0 = left) or [samples]."""
    signal = np.asarray(signal, dtype=np.float32)
    sf.write(str(path), signal.T if signal.ndim == 2 else signal, sample_rate)
    return str(path)


def noise(seconds, channels=2, sample_rate=SR, seed=0):
    return 0.1 * np.random.default_rng(seed).standard_normal((channels, int(seconds * sample_rate)))


def run_cli(capsys, *argv):
    """(exit code, stdout JSON records, stderr lines) of an in-process run."""
    code = inference.main([str(a) for a in argv])
    captured = capsys.readouterr()
    records = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    return code, records, [line for line in captured.err.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    return {
        "root": root,
        "ckpt": make_checkpoint(root / "tiny.pth"),
        "binaural": write_wav(root / "binaural.wav", noise(4.0, sample_rate=44100), 44100),
        "mono": write_wav(root / "mono.wav", noise(10.0, channels=1, seed=1)[0]),
    }


def check_record(record, path, kind, top_k):
    assert record["file"] == path and record["input"] == kind
    for key in ("start_s", "end_s", "duration_s", "azimuth_deg", "elevation_deg", "distance_m",
                "direction_confidence", "distance_confidence"):
        assert isinstance(record[key], float), key
    assert 0 <= record["azimuth_deg"] < 360 and -90 <= record["elevation_deg"] < 90
    assert 0 <= record["distance_m"] <= 10 and record["distance_m"] % 0.5 == 0
    assert 0 < record["direction_confidence"] <= 1 and 0 < record["distance_confidence"] <= 1
    assert isinstance(record["direction"], str) and record["direction"]
    assert len(record["classes"]) == top_k
    probs = [c["prob"] for c in record["classes"]]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert {c["mid"]: c["name"] for c in record["classes"]}.items() <= dict(CLASSES).items()


def test_binaural_and_mono_with_rir_records(files, tiny_data, tmp_path, capsys):
    rir = os.path.join(tiny_data["root"], "binaural", "eval_room", "1.npy")
    out = tmp_path / "out.jsonl"
    code, stdout, errors = run_cli(capsys, "--ckpt", files["ckpt"], "--top_k", 2, "--output", out, files["binaural"])
    assert code == 0 and stdout == [] and errors == []
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1
    check_record(records[0], files["binaural"], "binaural", 2)
    assert records[0]["duration_s"] == pytest.approx(4.0, abs=1e-3)  # resampled from 44.1 kHz
    assert (records[0]["start_s"], records[0]["end_s"]) == (0.0, 10.0)

    # With --rir every file is a dry source in that room, as in training: a two-channel file gives its first channel
    code, with_rir, errors = run_cli(capsys, "--ckpt", files["ckpt"], "--rir", rir, "--top_k", 2,
                                     files["binaural"], files["mono"])
    assert code == 0 and errors == []
    check_record(with_rir[0], files["binaural"], "mono+rir", 2)
    check_record(with_rir[1], files["mono"], "mono+rir", 2)
    left = write_wav(tmp_path / "left.wav", sf.read(files["binaural"], always_2d=True)[0][:, 0], 44100)
    code, left_only, _ = run_cli(capsys, "--ckpt", files["ckpt"], "--rir", rir, "--top_k", 2, left)
    assert {**left_only[0], "file": None} == {**with_rir[0], "file": None}

    # stdout carries the same records when there is no --output
    code, again, _ = run_cli(capsys, "--ckpt", files["ckpt"], "--top_k", 2, files["binaural"])
    assert code == 0 and again == records


def test_window_rule(files, capsys):
    """<= 10 s: one window [0, 10]; longer: starts 0, hop, ... until a window reaches the end."""
    long_file = write_wav(files["root"] / "long23.wav", noise(23.0))
    code, records, _ = run_cli(capsys, "--ckpt", files["ckpt"], "--batch_size", 3, long_file, files["binaural"])
    assert code == 0
    assert [(r["file"], r["start_s"], r["end_s"]) for r in records] == [
        (long_file, 0.0, 10.0), (long_file, 5.0, 15.0), (long_file, 10.0, 20.0), (long_file, 15.0, 25.0),
        (files["binaural"], 0.0, 10.0)]
    assert all(r["duration_s"] == 23.0 for r in records[:4])

    code, records, _ = run_cli(capsys, "--ckpt", files["ckpt"], "--hop", 10, long_file)
    assert [(r["start_s"], r["end_s"]) for r in records] == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_window_starts_boundaries():
    window, hop = 10 * SR, 5 * SR
    assert inference.window_starts(SR, hop) == [0]
    assert inference.window_starts(window, hop) == [0]
    assert inference.window_starts(window + 1, hop) == [0, hop]
    assert inference.window_starts(window + hop, hop) == [0, hop]
    assert inference.window_starts(window + hop + 1, hop) == [0, hop, 2 * hop]


def test_confidences_and_answer_conversion():
    """Direction confidence = joint posterior mass within 20 deg; distance confidence = mass within one class."""
    azimuth, elevation, distance = np.zeros(360), np.zeros(180), np.zeros(21)
    azimuth[[90, 105, 130]] = [0.5, 0.2, 0.3]  # 105 is 15 deg from the answer 90, 130 is 40 deg away
    elevation[[90, 130]] = [0.9, 0.1]  # 0 and +40 deg: the joint mass, not the azimuth's alone
    distance[[3, 4, 5, 6]] = [0.2, 0.5, 0.1, 0.2]
    window = inference.Window(inference.AudioInput("x.wav", np.zeros((2, SR), np.float32), "binaural"), 0, 0)
    probs = {"events": np.array([0.2, 0.9, 0.5]), "azimuth": azimuth, "elevation": elevation, "distance": distance}
    record = inference.describe(window, probs, inference.ClassTable.from_records(CLASS_RECORDS), top_k=2)
    assert (record["azimuth_deg"], record["elevation_deg"], record["distance_m"]) == (90.0, 0.0, 2.0)
    # within 20 deg of (90, 0): (90, 0) and (105, 0); not azimuth 130, nor anything at +40 deg
    assert record["direction_confidence"] == pytest.approx((0.5 + 0.2) * 0.9, abs=1e-4)
    assert record["distance_confidence"] == pytest.approx(0.8, abs=1e-4)
    assert record["direction"] == "front"
    assert [c["mid"] for c in record["classes"]] == ["/t/mid", "/t/high"]


def phase_slope(ipd):
    """Mean IPD increase per STFT bin (radians), robust to wrapping: angle of the summed bin-to-bin rotation."""
    z = np.exp(1j * ipd)  # [frames, bins]
    return float(np.angle(np.sum(z[:, 1:] * np.conj(z[:, :-1]))))


def test_ipd_sign_follows_channel_order(files):
    """Right ear leading (source on the right) -> IPD = phase(right) - phase(left) grows with frequency."""
    delay = 10
    source = noise(10.0, channels=1, seed=3)[0]  # fills the window: padded frames have no phase
    right = source[delay:]
    left = source[:-delay]  # the left ear hears the same noise 10 samples later
    right_leads = write_wav(files["root"] / "right_leads.wav", np.stack([left, right]))
    left_leads = write_wav(files["root"] / "left_leads.wav", np.stack([right, left]))

    expected = 2 * np.pi * delay / 1024  # radians per bin of the 1024-point STFT
    features = inference.features_for_file(right_leads)
    assert phase_slope(features["ipd"]) == pytest.approx(expected, rel=0.05)
    assert phase_slope(inference.features_for_file(left_leads)["ipd"]) == pytest.approx(-expected, rel=0.05)

    # The model's own IPD channels agree: sin(IPD) > 0 below 1.6 kHz (half the 3.2 kHz wrap).
    # Each mel filter's weights sum to ~0.03 (Slaney area normalisation): divide to get a mean sin.
    low_bins = slice(5, 40)  # mel bins of ~190 Hz .. ~1.15 kHz
    weight = mel_matrix().numpy().sum(0)[low_bins]
    assert (features["ipd_sin_mel"][:, low_bins] / weight).mean() > 0.3
    assert (inference.features_for_file(left_leads)["ipd_sin_mel"][:, low_bins] / weight).mean() < -0.3


def test_bad_inputs_are_reported_and_good_files_still_run(files, tmp_path, capsys):
    bad = {
        "missing": str(tmp_path / "missing.wav"),
        "not_audio": str(tmp_path / "notes.wav"),
        "empty": str(tmp_path / "empty.wav"),
        "no_samples": str(tmp_path / "no_samples.wav"),
        "three_channels": write_wav(tmp_path / "three.wav", noise(2.0, channels=3)),
        "mono_without_rir": write_wav(tmp_path / "mono_only.wav", noise(2.0, channels=1)[0]),
        "too_short": write_wav(tmp_path / "short.wav", noise(0.5)),
    }
    (tmp_path / "notes.wav").write_text("this is not audio\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(bad["no_samples"], np.zeros((0, 2), dtype=np.float32), SR)
    expected = {
        "missing": "file not found", "not_audio": "cannot read audio", "empty": "empty",
        "no_samples": "empty", "three_channels": "3 channels", "mono_without_rir": "--rir",
        "too_short": "at least 1 s",
    }
    paths = [files["binaural"], *bad.values(), files["binaural"]]
    code, records, errors = run_cli(capsys, "--ckpt", files["ckpt"], *paths)
    assert code == 1
    assert [r["file"] for r in records] == [files["binaural"], files["binaural"]]
    assert not any("Traceback" in line for line in errors)
    assert len(errors) == len(bad) + 1
    for name, path in bad.items():
        lines = [line for line in errors if path in line]
        assert len(lines) == 1 and expected[name] in lines[0], (name, lines)
    assert errors[-1] == f"error: {len(bad)} of {len(paths)} inputs failed"


def test_bad_checkpoint_or_rir_fails_everything(files, tmp_path, capsys):
    not_ckpt = tmp_path / "notes.pth"
    not_ckpt.write_text("not a checkpoint")
    wrong_dict = tmp_path / "wrong.pth"
    torch.save({"model": {"weight": torch.zeros(2)}}, wrong_dict)
    bad_rir = tmp_path / "rir.npy"
    np.save(bad_rir, np.zeros((3, 100), dtype=np.float32))
    for argv, named in (
            (["--ckpt", not_ckpt], not_ckpt),
            (["--ckpt", wrong_dict], wrong_dict),
            (["--ckpt", tmp_path / "absent.pth"], tmp_path / "absent.pth"),
            (["--ckpt", files["ckpt"], "--rir", bad_rir], bad_rir),
            (["--ckpt", files["ckpt"], "--rir", tmp_path / "absent.npy"], tmp_path / "absent.npy")):
        code, records, errors = run_cli(capsys, *argv, files["binaural"])
        assert code == 2 and records == []
        assert len(errors) == 1 and str(named) in errors[0], errors


def test_checkpoint_without_classes_needs_label_csv(files, tiny_data, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "no_classes.pth", classes=False)
    code, records, errors = run_cli(capsys, "--ckpt", ckpt, files["binaural"])
    assert code == 2 and records == [] and len(errors) == 1 and "--label_csv" in errors[0]

    code, records, errors = run_cli(capsys, "--ckpt", ckpt, "--label_csv", tiny_data["label_csv"], files["binaural"])
    assert code == 0 and errors == []
    check_record(records[0], files["binaural"], "binaural", 3)

    short_csv = tmp_path / "two.csv"
    short_csv.write_text("index,mid,display_name\n0,/t/low,Low tone\n1,/t/mid,Mid tone\n")
    code, _, errors = run_cli(capsys, "--ckpt", ckpt, "--label_csv", short_csv, files["binaural"])
    assert code == 2 and len(errors) == 1 and str(short_csv) in errors[0] and "2 classes" in errors[0]


def test_label_csv_beside_stored_classes_must_list_them(files, tiny_data, tmp_path, capsys):
    # a checkpoint that stores its classes needs no csv; one given anyway is read and must agree
    code, records, errors = run_cli(capsys, "--ckpt", files["ckpt"], "--label_csv", tiny_data["label_csv"],
                                    files["binaural"])
    assert code == 0 and errors == [] and len(records) == 1
    for csv_path in (tmp_path / "absent.csv", tmp_path / "two.csv"):
        if csv_path.name == "two.csv":
            csv_path.write_text("index,mid,display_name\n0,/t/low,Low tone\n1,/t/mid,Mid tone\n")
        code, records, errors = run_cli(capsys, "--ckpt", files["ckpt"], "--label_csv", csv_path, files["binaural"])
        assert code == 2 and records == [] and len(errors) == 1 and str(csv_path) in errors[0], errors
    assert "its 2 classes are not the 3 that" in errors[0]


def test_published_layout_loads(files, tiny_data, tmp_path, capsys):
    """argparse.Namespace args, the frozen STFT/mel tensors under "model", no "classes"."""
    ckpt = make_checkpoint(tmp_path / "finetuned.pth", published=True)
    code, records, errors = run_cli(capsys, "--ckpt", ckpt, "--label_csv", tiny_data["label_csv"], files["binaural"])
    assert code == 0 and errors == [] and len(records) == 1


def test_mono_model(files, tiny_data, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "mono.pth", num_channels=1)
    code, records, errors = run_cli(capsys, "--ckpt", ckpt, files["mono"], files["binaural"])
    assert code == 1 and [r["input"] for r in records] == ["mono"]
    assert len(errors) == 2 and files["binaural"] in errors[0] and "model is mono" in errors[0]

    mono_rir = os.path.join(tiny_data["root"], "mono", "eval_room", "0.npy")
    code, records, _ = run_cli(capsys, "--ckpt", ckpt, "--rir", mono_rir, files["mono"])
    assert code == 0 and [r["input"] for r in records] == ["mono+rir"]


def test_folder_input_and_plots(files, tiny_data, tmp_path, capsys):
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    first = write_wav(folder / "a.wav", noise(12.0, seed=5))
    second = write_wav(folder / "sub" / "a.flac", noise(3.0, channels=1, seed=6)[0])
    (folder / "readme.txt").write_text("not audio, not picked up")
    rir = os.path.join(tiny_data["root"], "binaural", "eval_room", "2.npy")
    plots = tmp_path / "plots"
    code, records, errors = run_cli(capsys, "--ckpt", files["ckpt"], "--rir", rir, "--plot_dir", plots, folder)
    assert code == 0 and errors == []
    assert [(r["file"], r["start_s"]) for r in records] == [(first, 0.0), (first, 5.0), (second, 0.0)]
    assert sorted(os.listdir(plots)) == ["a-2.png", "a.png"]
    assert all(os.path.getsize(plots / name) > 10000 for name in os.listdir(plots))


def test_checkpoint_with_time_by_frequency_patches_loads_with_its_stored_patch_size(tmp_path):
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=len(CLASSES), patch_size="8x128").eval()
    args = {"model": "build_AST_tiny", "nb_classes": len(CLASSES), "patch_size": "8x128", "audio_normalize": False,
            "reverb_type": "binaural"}
    path = str(tmp_path / "spectra.pth")
    save_checkpoint(path, {"model": model.state_dict(), "classes": CLASS_RECORDS, "args": args})
    loaded, _, _ = inference.load_model(path)
    assert loaded.patch_embed.patch_size == (8, 128) and loaded.patch_embed.grid_size == (128, 1)
    audio = torch.from_numpy(noise(2.0)).float()[None]
    with torch.no_grad():
        for ours, theirs in zip(loaded.forward_audio(audio), model.forward_audio(audio)):
            assert torch.equal(ours, theirs)
    save_checkpoint(path, {"model": model.state_dict(), "classes": CLASS_RECORDS, "args": {**args, "patch_size": "8x100"}})
    with pytest.raises(inference.UsageError, match=r"spectra.pth: stored arguments describe no model.*mel bins must divide"):
        inference.load_model(path)
