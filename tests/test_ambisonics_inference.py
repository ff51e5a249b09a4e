"""inference.py on ambisonic recordings: FOA and HOA2 files as they are, FuMa conversion, and a
clear refusal when a file's kind does not match the checkpoint's input."""
import logging

import numpy as np
import pytest
import soundfile as sf
import torch

import inference
from conftest import CLASSES
from dataset import ambisonics
from models.spatial_ast import build_AST_tiny
from test_inference import CLASS_RECORDS, check_record, make_checkpoint, noise, run_cli
from util.checkpoint import save_checkpoint

SR = 32000


def ambisonic_checkpoint(path, channels, store_order=True, **stored):
    """A tiny ambisonic model with its run arguments as main_finetune.py stores them."""
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=len(CLASSES), num_channels=channels, patch_size=32, fusion_channels=4)
    args = {"model": "build_AST_tiny", "nb_classes": len(CLASSES), "patch_size": 32, "fusion_channels": 4,
            "reverb_type": "ambisonics", "audio_normalize": False, **stored}
    if store_order:
        args.setdefault("ambisonic_order", ambisonics.order_of(channels))
    save_checkpoint(str(path), {"model": model.state_dict(), "classes": CLASS_RECORDS, "args": args})
    return str(path)


def plane_wave(direction, order, seconds=3.0):
    """[channels, samples] AmbiX recording of noise from `direction` (ambisonic frame)."""
    return noise(seconds, channels=1, seed=2) * ambisonics.real_sh(direction, order)[:, None]


def write_float_wav(path, signal):
    sf.write(str(path), np.asarray(signal, dtype=np.float32).T, SR, subtype="FLOAT")
    return str(path)


@pytest.fixture(scope="module")
def amb(tmp_path_factory):
    root = tmp_path_factory.mktemp("ambisonic_inference")
    direction = ambisonics.direction(60.0, 20.0)
    foa, hoa = plane_wave(direction, 1), plane_wave(direction, 2)
    fuma = np.stack([foa[0] / np.sqrt(2), foa[3], foa[1], foa[2]])  # W X Y Z, W at -3 dB
    return {
        "foa_ckpt": ambisonic_checkpoint(root / "foa.pth", 4),
        "hoa_ckpt": ambisonic_checkpoint(root / "hoa.pth", 9),
        "binaural_ckpt": make_checkpoint(root / "binaural.pth"),
        "foa": write_float_wav(root / "foa.wav", foa),
        "hoa": write_float_wav(root / "hoa.wav", hoa),
        "fuma": write_float_wav(root / "fuma.wav", fuma),
        "stereo": write_float_wav(root / "stereo.wav", noise(2.0)),
        "six": write_float_wav(root / "six.wav", noise(2.0, channels=6)),
        "mono": write_float_wav(root / "mono.wav", noise(2.0, channels=1)),
        "root": root,
    }


def test_foa_and_hoa2_recordings_are_used_as_they_are(amb, capsys):
    code, records, errors = run_cli(capsys, "--ckpt", amb["foa_ckpt"], "--top_k", 2, amb["foa"], amb["hoa"])
    assert code == 0 and errors == []
    for record, path in zip(records, (amb["foa"], amb["hoa"])):
        check_record(record, path, "ambisonics", 2)
    # a first-order model hears the first-order part of a second-order file: the same answer
    assert records[0]["classes"] == records[1]["classes"] and records[0]["azimuth_deg"] == records[1]["azimuth_deg"]
    code, records, errors = run_cli(capsys, "--ckpt", amb["hoa_ckpt"], "--top_k", 2, amb["hoa"])
    assert code == 0 and errors == []
    check_record(records[0], amb["hoa"], "ambisonics", 2)


def test_fuma_recordings_are_converted_to_ambix(amb, capsys):
    fuma = inference.read_input(amb["fuma"], 4, has_rir=False, ambisonics_format="fuma")
    ambix = inference.read_input(amb["foa"], 4, has_rir=False)
    np.testing.assert_allclose(fuma.signal, ambix.signal, atol=1e-6)
    unconverted = inference.read_input(amb["fuma"], 4, has_rir=False)
    assert np.abs(unconverted.signal - ambix.signal).max() > 0.01  # the default (ambix) takes it as it is
    code, records, errors = run_cli(capsys, "--ckpt", amb["foa_ckpt"], "--ambisonics_format", "fuma", amb["fuma"])
    assert code == 0 and errors == [] and records[0]["input"] == "ambisonics"


def test_with_an_ambisonic_rir_every_file_is_a_dry_source(amb, capsys):
    rir = np.zeros((4, 2000), dtype=np.float32)
    rir[:, 100] = ambisonics.real_sh(ambisonics.direction(-90.0, 0.0), 1)
    np.save(amb["root"] / "rir.npy", rir)
    code, records, errors = run_cli(capsys, "--ckpt", amb["foa_ckpt"], "--rir", amb["root"] / "rir.npy",
                                    amb["mono"], amb["foa"])
    assert code == 0 and errors == [] and [r["input"] for r in records] == ["mono+rir", "mono+rir"]
    # as in training and --eval, only the first channel (here W) of a multichannel file is the source
    dry = inference.read_input(amb["foa"], 4, has_rir=True)
    np.testing.assert_array_equal(dry.signal, inference.read_input(amb["foa"], 4, has_rir=False).signal[:1])


def test_normalisation_brings_w_to_the_target_level_with_one_gain(amb):
    """--audio_normalize on an ambisonic recording: one gain for every channel (the direction cues
    are ratios between channels), chosen on W, so the answer does not depend on the file's order.
    The RMS over all channels would leave W 3 dB (first order) or 4.8 dB (second) above the target."""
    foa = inference.read_input(amb["foa"], 4, has_rir=False)
    hoa_as_foa = inference.read_input(amb["hoa"], 4, has_rir=False)
    samples = foa.signal.shape[1]
    window = inference.window_signal(foa, 0, normalize=True)[:, :samples]
    gain = window[0, 1000] / foa.signal[0, 1000]
    np.testing.assert_allclose(window, gain * foa.signal, rtol=1e-5, atol=1e-7)
    assert 20 * np.log10(np.sqrt(np.mean(np.square(window[0], dtype=np.float64)))) == pytest.approx(-14.0, abs=1e-3)
    np.testing.assert_array_equal(inference.window_signal(hoa_as_foa, 0, normalize=True)[:, :samples], window)


def test_an_ambisonic_model_comes_from_its_stored_order_else_from_its_shapes(amb, tmp_path, caplog):
    model, _, _ = inference.load_model(amb["hoa_ckpt"])
    assert model.num_channels == 9 and model.fusion_channels == 4
    with caplog.at_level(logging.WARNING, logger="inference"):
        model, _, _ = inference.load_model(ambisonic_checkpoint(tmp_path / "no_order.pth", 9, store_order=False))
    assert model.num_channels == 9
    assert "no_order.pth stores no ambisonic_order: order 2 read from its tensor shapes" in caplog.text


@pytest.mark.parametrize("stored, message", [
    ({"ambisonic_order": 1}, "bad.pth: its weights do not fit the model its stored arguments describe (Error(s) "
                             "in loading state_dict for SpatialAST: size mismatch for"),
    ({"ambisonic_order": 3}, "bad.pth: stored ambisonic_order 3; this code reads order 1 or 2"),
    ({"reverb_type": "5.1"}, "bad.pth: stored reverb_type '5.1' is not binaural, mono or ambisonics"),
])
def test_stored_arguments_that_do_not_fit_are_refused_in_one_line(amb, tmp_path, capsys, stored, message):
    code, records, errors = run_cli(capsys, "--ckpt", ambisonic_checkpoint(tmp_path / "bad.pth", 9, **stored),
                                    amb["hoa"])
    assert code == 2 and records == [] and len(errors) == 1 and message in errors[0], errors


@pytest.mark.parametrize("ckpt, path, message", [
    ("binaural_ckpt", "foa", "foa.wav: is a 4-channel ambisonic recording and the model is binaural; it needs a "
                             "two-channel binaural (left, right) recording, or a mono file with --rir"),
    ("foa_ckpt", "stereo", "stereo.wav: is a two-channel recording and the model is first-order ambisonic; it needs "
                           "a 4- or 9-channel ambisonic (AmbiX) recording, or a mono file with --rir"),
    ("hoa_ckpt", "foa", "foa.wav: is a 4-channel ambisonic recording and the model is second-order ambisonic; it "
                        "needs a 9-channel second-order ambisonic (AmbiX) recording, or a mono file with --rir"),
    ("foa_ckpt", "mono", "mono.wav: is a mono file and the model is first-order ambisonic"),
    ("foa_ckpt", "six", "six.wav: has 6 channels; expected 2 (binaural: left, right), 1 (mono), or 4 or 9"),
])
def test_a_file_of_the_wrong_kind_stops_with_one_line(amb, capsys, ckpt, path, message):
    code, records, errors = run_cli(capsys, "--ckpt", amb[ckpt], amb[path])
    assert code == 1 and records == []
    assert errors == [errors[0], "error: 1 of 1 inputs failed"] and message in errors[0], errors
