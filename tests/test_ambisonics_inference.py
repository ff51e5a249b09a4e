"""inference.py on ambisonic recordings: FOA and HOA2 files as they are, FuMa conversion, and a
clear refusal when a file's kind does not match the checkpoint's input."""
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


def ambisonic_checkpoint(path, channels):
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=len(CLASSES), num_channels=channels, patch_size=32, fusion_channels=4)
    save_checkpoint(str(path), {"model": model.state_dict(), "classes": CLASS_RECORDS,
                                "args": {"model": "build_AST_tiny", "reverb_type": "ambisonics",
                                         "ambisonic_order": ambisonics.order_of(channels)}})
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


def test_mono_file_through_an_ambisonic_rir(amb, capsys):
    rir = np.zeros((4, 2000), dtype=np.float32)
    rir[:, 100] = ambisonics.real_sh(ambisonics.direction(-90.0, 0.0), 1)
    np.save(amb["root"] / "rir.npy", rir)
    code, records, errors = run_cli(capsys, "--ckpt", amb["foa_ckpt"], "--rir", amb["root"] / "rir.npy", amb["mono"])
    assert code == 0 and errors == [] and records[0]["input"] == "mono+rir"


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
