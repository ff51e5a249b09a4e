"""inference.py hears exactly what `main_finetune.py --eval` hears, binaural and mono, end to end.

A tiny model is trained with --audio_normalize on clips whose levels, sample rate and channel
count differ from the training clips' (one 30 dB quieter, one louder, a stereo one, all at
44.1 kHz). Then, per evaluation clip, `inference.py --rir R clip.wav` with the RIR that --eval
paired it with must give --eval's class probabilities (to 1e-4) and its azimuth, elevation and
distance (the row of predictions.csv).
"""
import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import inference
import main_finetune
from conftest import CLASSES, train_args, write_tiny_dataset
from util.checkpoint import load_checkpoint, save_checkpoint

SOURCE_RATE = 44100


def _reshape_eval_clips(data):
    """Eval clips unlike training's: -30 dB, +10 dB, stereo (channel 0 is the source), unchanged."""
    with open(data["eval_json"]) as f:
        entries = json.load(f)
    paths = [os.path.join(data["audio_root"], e["folder"], e["id"] + ".wav") for e in entries]
    rng = np.random.default_rng(7)
    for i, path in enumerate(paths):
        signal, rate = sf.read(path, dtype="float32")
        if i == 0:
            signal = signal * 10 ** (-30 / 20)
        elif i == 1:
            signal = signal * 10 ** (10 / 20)
        elif i == 2:
            signal = np.stack([signal, 0.5 * rng.standard_normal(len(signal)).astype(np.float32)], axis=1)
        sf.write(path, signal, rate, subtype="FLOAT")
    return entries, paths


# The mono run's events head reads the mean of the patch tokens: inference must rebuild that from the
# stored arguments (the weights alone do not say it), or its event probabilities differ from --eval's.
@pytest.fixture(scope="module", params=[("binaural", "cls"), ("mono", "mean")], ids=["binaural", "mono-mean-pool"])
def evaluated(request, tmp_path_factory):
    """(reverb type, data, checkpoint, --eval predictions arrays, predictions.csv rows, clip paths)."""
    reverb_type, event_pool = request.param
    root = tmp_path_factory.mktemp(f"match-{reverb_type}")
    data = write_tiny_dataset(root, n_train=2, n_eval=4, sample_rate=SOURCE_RATE)
    entries, paths = _reshape_eval_clips(data)
    flags = ("--reverb_type", reverb_type, "--audio_normalize", "--event_pool", event_pool)
    assert main_finetune.run(train_args(data, root / "run", "--epochs", "1", *flags)) == 0
    ckpt = _sharpened(root / "run" / "checkpoint-last.pth", root / "sharp.pth")

    captured = {}
    original = main_finetune.engine.evaluate

    def recording_evaluate(*args, **kwargs):
        result = original(*args, **kwargs)
        captured["predictions"] = result[2]
        return result

    main_finetune.engine.evaluate = recording_evaluate
    try:
        assert main_finetune.run(train_args(data, root / "eval", "--eval", "--finetune", ckpt, *flags)) == 0
    finally:
        main_finetune.engine.evaluate = original
    with open(root / "eval" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["clip_id"] for r in rows] == [e["id"] for e in entries]
    return reverb_type, data, ckpt, captured["predictions"], rows, paths


def _sharpened(path, out):
    """The checkpoint with fixed random weights (std 0.3) in its four heads: two training steps
    leave every output near its prior, where what the model hears hardly shows; these heads turn a
    small difference in the input into a visible difference in the answers."""
    checkpoint = load_checkpoint(str(path))
    generator = torch.Generator().manual_seed(0)
    for name in ("head", "distance_head", "azimuth_head", "elevation_head"):
        weight = checkpoint["model"][f"{name}.weight"]
        weight.copy_(0.3 * torch.randn(weight.shape, generator=generator))
    save_checkpoint(str(out), checkpoint)
    return str(out)


def _infer(capsys, ckpt, rir, path):
    code = inference.main(["--ckpt", ckpt, "--rir", rir, "--top_k", str(len(CLASSES)), path])
    out = capsys.readouterr()
    assert code == 0, out.err
    (record,) = [json.loads(line) for line in out.out.splitlines()]
    return record


def test_inference_gives_the_eval_answer_for_every_eval_clip(evaluated, capsys):
    reverb_type, data, ckpt, predictions, rows, paths = evaluated
    mids = [mid for mid, _ in CLASSES]
    for i, (row, path) in enumerate(zip(rows, paths)):
        rir = os.path.join(data["root"], reverb_type, row["rir_fname"])
        record = _infer(capsys, ckpt, rir, path)
        assert record["input"] == "mono+rir"
        probs = {c["mid"]: c["prob"] for c in record["classes"]}
        expected = predictions["scores"][i]
        assert [probs[m] for m in mids] == pytest.approx(expected.tolist(), abs=1e-4), path
        assert record["azimuth_deg"] == float(row["pred_azimuth_deg"]), path
        assert record["elevation_deg"] == float(row["pred_elevation_deg"]), path
        assert record["distance_m"] == float(row["pred_distance_m"]), path
        assert record["lateral_deg"] == pytest.approx(float(row["pred_lateral_deg"]), abs=0.02), path


def test_the_level_of_the_eval_clip_matters(evaluated, capsys):
    """The check above can fail: without the run's normalisation the quiet clip's answer moves."""
    reverb_type, data, ckpt, predictions, rows, paths = evaluated
    model, _, hearing = inference.load_model(ckpt)
    assert hearing.normalize and model.num_channels == {"binaural": 2, "mono": 1}[reverb_type]
    rir = inference.load_rir_tensor(os.path.join(data["root"], reverb_type, rows[0]["rir_fname"]),
                                    model.num_channels)
    audio = inference.read_input(paths[0], model.num_channels, has_rir=True)
    window = inference.Window(audio, 0, 0)
    heard = inference.predict_windows(model, [window], rir, "cpu", normalize=True)[0]["events"]
    raw = inference.predict_windows(model, [window], rir, "cpu", normalize=False)[0]["events"]
    assert np.abs(heard - predictions["scores"][0]).max() < 1e-4
    assert np.abs(raw - predictions["scores"][0]).max() > 1e-3
