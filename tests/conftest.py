"""Shared fixtures: a tiny dataset in the upstream on-disk formats, written per test session.

Clips are tones + noise whose class sets the pitch; RIRs are a direct-path impulse
with an interaural delay matching the source side, so the data is cheap to make and
carries real (if simple) spatial information.
"""
import csv
import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SR = 32000
CLASSES = [("/t/low", "Low tone"), ("/t/mid", "Mid tone"), ("/t/high", "High, bright tone")]


def write_tiny_dataset(root, n_train=8, n_eval=4, n_rirs=4, seconds=10.0, sample_rate=SR, seed=0):
    """Write clips, class csv, weights and binaural + mono RIRs; returns a dict of paths."""
    rng = np.random.default_rng(seed)
    root = str(root)
    with open(os.path.join(root, "classes.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows((i, mid, name) for i, (mid, name) in enumerate(CLASSES))
    paths = {"root": root, "label_csv": os.path.join(root, "classes.csv"), "audio_root": os.path.join(root, "audio")}
    for split, count in (("train", n_train), ("eval", n_eval)):
        os.makedirs(os.path.join(root, "audio", split), exist_ok=True)
        entries = []
        for i in range(count):
            cls = i % len(CLASSES)
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            signal = 0.3 * np.sin(2 * np.pi * 300 * (cls + 1) * t) + 0.05 * rng.standard_normal(len(t))
            clip_id = f"{split}{i:03d}"
            sf.write(os.path.join(root, "audio", split, clip_id + ".wav"), signal.astype(np.float32), sample_rate)
            entries.append({"id": clip_id, "folder": split, "label": [CLASSES[cls][0]]})
        paths[f"{split}_json"] = os.path.join(root, f"{split}.json")
        with open(paths[f"{split}_json"], "w") as f:
            json.dump(entries, f)
    paths["weight_csv"] = os.path.join(root, "weights.csv")
    np.savetxt(paths["weight_csv"], np.linspace(1.0, 2.0, n_train))
    for split in ("train", "eval"):
        entries = []
        for i in range(n_rirs):
            azimuth = 2 * np.pi * i / n_rirs
            source = np.array([np.cos(azimuth), 0.0, -np.sin(azimuth)]) * (1.0 + i)
            fname = f"{split}_room/{i}.npy"
            binaural = np.zeros((2, 4000), dtype=np.float32)
            direct = int(np.linalg.norm(source) / 343 * SR)
            itd = int(round(np.cos(azimuth) * 20))  # source on the right: right ear (row 1) first
            binaural[0, direct + max(itd, 0)] = 1.0
            binaural[1, direct + max(-itd, 0)] = 1.0
            mono = np.zeros((1, 4000), dtype=np.float32)
            mono[0, direct] = 1.0
            for kind, rir in (("binaural", binaural), ("mono", mono)):
                os.makedirs(os.path.join(root, kind, f"{split}_room"), exist_ok=True)
                np.save(os.path.join(root, kind, fname), rir)
            entries.append({"fname": fname, "sensor_position": "0,1.5,0",
                            "source_position": ",".join(str(v) for v in source + np.array([0, 1.5, 0]))})
        paths[f"reverb_{split}"] = os.path.join(root, f"{split}_reverberation.json")
        with open(paths[f"reverb_{split}"], "w") as f:
            json.dump({"data": entries}, f)
    return paths


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def train_args(data, output_dir, *extra):
    """Command-line flags for a fast tiny run of main_finetune.py on `data`."""
    return [
        "--model", "build_AST_tiny", "--nb_classes", str(len(CLASSES)), "--batch_size", "2", "--epochs", "2",
        "--warmup_epochs", "1", "--num_workers", "0", "--device", "cpu", "--drop_path", "0",
        "--audio_path_root", data["audio_root"], "--audioset_train", data["train_json"],
        "--audioset_eval", data["eval_json"], "--label_csv", data["label_csv"],
        "--reverb_path_root", data["root"], "--reverb_train", data["reverb_train"],
        "--reverb_val", data["reverb_eval"], "--output_dir", str(output_dir), *extra,
    ]
