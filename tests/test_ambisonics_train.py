"""--reverb_type ambisonics end to end: reading the impulse responses, a tiny train and evaluation."""
import argparse
import json
import os

import numpy as np
import pytest

import inference
import main_finetune
from conftest import SR, train_args, write_tiny_dataset
from dataset import ambisonics
from dataset.audio import DataError, ambisonic_channels, read_rir
from dataset.metadata import load_class_table
from dataset.spatial import parse_position
from dataset.spatial_dataset import SpatialSoundDataset
from util.checkpoint import CheckpointError, load_checkpoint


def add_ambisonic_rirs(paths, channels):
    """Write ambisonics/<fname>: each RIR's direct sound encoded in the direction of its json source."""
    for split in ("train", "eval"):
        with open(paths[f"reverb_{split}"]) as f:
            entries = json.load(f)["data"]
        for entry in entries:
            offset = parse_position(entry["source_position"]) - parse_position(entry["sensor_position"])
            rir = np.zeros((channels, 4000), dtype=np.float32)
            direct = int(np.linalg.norm(offset) / 343 * SR)
            rir[:, direct] = ambisonics.real_sh(ambisonics.from_spatial_frame(offset), ambisonics.order_of(channels))
            path = os.path.join(paths["root"], "ambisonics", entry["fname"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, rir)
    return paths


@pytest.fixture(scope="module")
def hoa_data(tmp_path_factory):
    return add_ambisonic_rirs(write_tiny_dataset(tmp_path_factory.mktemp("hoa"), seconds=3.0), 9)


def test_reader_takes_the_order_from_the_channel_count_and_refuses_others(tmp_path):
    for channels in (4, 9):
        np.save(tmp_path / f"{channels}.npy", np.zeros((channels, 100), dtype=np.float32))
        assert ambisonic_channels(str(tmp_path / f"{channels}.npy")) == channels
        assert read_rir(str(tmp_path / f"{channels}.npy"), channels).shape == (channels, 64000)
    np.save(tmp_path / "bad.npy", np.zeros((6, 100), dtype=np.float32))
    with pytest.raises(DataError, match=r"bad.npy: 6 channels; an ambisonic signal here has 4 \(first order\) or 9"):
        ambisonic_channels(str(tmp_path / "bad.npy"))
    np.save(tmp_path / "flat.npy", np.zeros(100, dtype=np.float32))
    with pytest.raises(DataError, match=r"flat.npy: impulse response has shape \[100\], expected \[4 or 9, samples\]"):
        ambisonic_channels(str(tmp_path / "flat.npy"))


def test_dataset_reads_ambisonics_and_keeps_the_targets(hoa_data):
    classes = load_class_table(hoa_data["label_csv"])
    common = dict(clip_json=hoa_data["eval_json"], audio_root=hoa_data["audio_root"], classes=classes,
                  reverb_json=hoa_data["reverb_eval"], reverb_root=hoa_data["root"], train=False)
    ambisonic = SpatialSoundDataset(reverb_type="ambisonics", **common)
    binaural = SpatialSoundDataset(reverb_type="binaural", **common)
    assert ambisonic.channels == 9
    assert ambisonic[1][1].shape == (9, 64000)
    assert ambisonic.rir_path(0) == os.path.join(hoa_data["root"], "ambisonics", "eval_room/0.npy")
    np.testing.assert_array_equal(ambisonic.spatial_targets(), binaural.spatial_targets())


def test_a_set_mixing_orders_stops_at_the_odd_file(tmp_path):
    paths = add_ambisonic_rirs(write_tiny_dataset(tmp_path, n_train=2, n_eval=2, n_rirs=2, seconds=1.0), 4)
    odd = os.path.join(paths["root"], "ambisonics", "eval_room", "1.npy")
    np.save(odd, np.zeros((9, 100), dtype=np.float32))
    # the order comes from the first file; every header is checked against it at start-up
    with pytest.raises(DataError, match=r"eval_room/1.npy: impulse response has shape \[9, 100\], expected \[4, "
                                        r"samples\] for this reverb type \[entry 1 of .*\]"):
        SpatialSoundDataset(paths["eval_json"], paths["audio_root"], load_class_table(paths["label_csv"]),
                            paths["reverb_eval"], paths["root"], "ambisonics", train=False)
    dataset = SpatialSoundDataset(paths["eval_json"], paths["audio_root"], load_class_table(paths["label_csv"]),
                                  paths["reverb_eval"], paths["root"], "ambisonics", train=False, check_files=False)
    assert dataset.channels == 4
    with pytest.raises(DataError, match=r"eval_room/1.npy: impulse response has shape \[9, 100\], expected \[4, "):
        read_rir(dataset.rir_path(1), dataset.channels)


def test_tiny_ambisonic_run_trains_evaluates_and_records_its_input(hoa_data, tmp_path):
    argv = train_args(hoa_data, tmp_path, "--epochs", "1", "--reverb_type", "ambisonics", "--patch_size", "32",
                      "--fusion_channels", "7", "--fusion_init", "intensity")
    assert main_finetune.run(argv) == 0
    checkpoint = load_checkpoint(str(tmp_path / "checkpoint-last.pth"))
    assert checkpoint["args"]["reverb_type"] == "ambisonics" and checkpoint["args"]["ambisonic_order"] == 2
    assert checkpoint["model"]["conv_downsample.0.weight"].shape == (7, 12, 3, 3)
    out = tmp_path / "eval"
    assert main_finetune.run(train_args(hoa_data, out, "--eval", "--reverb_type", "ambisonics", "--patch_size", "32",
                                        "--fusion_channels", "7",
                                        "--finetune", str(tmp_path / "checkpoint-last.pth"))) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reverb_type"] == "ambisonics" and metrics["num_clips"] == 4 and 0 <= metrics["MAE"] <= 180
    # inference builds the same model from the run's stored arguments
    model, _, _ = inference.load_model(str(tmp_path / "checkpoint-last.pth"))
    assert (model.num_channels, model.fusion_channels, model.patch_embed.patch_size) == (9, 7, (32, 32))


def test_resuming_with_another_ambisonic_order_is_refused():
    with pytest.raises(CheckpointError, match=r"last.pth: cannot resume with another model: --ambisonic_order 1 "
                                              r"\(the run used 2\)"):
        main_finetune.compare_resumed_args({"reverb_type": "ambisonics", "ambisonic_order": 2},
                                           argparse.Namespace(reverb_type="ambisonics", ambisonic_order=1), "last.pth")


def test_ambisonic_flags_are_checked(hoa_data, tmp_path):
    with pytest.raises(SystemExit, match="--fusion_init intensity needs --reverb_type ambisonics"):
        main_finetune.run(train_args(hoa_data, tmp_path, "--fusion_init", "intensity"))
    with pytest.raises(SystemExit, match="--fusion_channels must be 1..12 with --reverb_type ambisonics"):
        main_finetune.run(train_args(hoa_data, tmp_path, "--reverb_type", "ambisonics", "--fusion_channels", "13"))


def test_first_order_data_has_seven_feature_maps_to_fuse(tmp_path):
    paths = add_ambisonic_rirs(write_tiny_dataset(tmp_path, n_train=2, n_eval=2, n_rirs=2, seconds=1.0), 4)
    with pytest.raises(SystemExit, match="--fusion_channels 8: order-1 ambisonics gives 7 feature maps to fuse"):
        main_finetune.run(train_args(paths, tmp_path, "--reverb_type", "ambisonics", "--fusion_channels", "8"))
