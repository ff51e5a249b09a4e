"""scripts/pack_hdf5.py: PANNs-style int16 packs that the dataset reads like the files."""
import os
import sys

import numpy as np
import pytest

from conftest import ROOT, write_tiny_dataset
from dataset.audio import AudioReader
from dataset.metadata import load_class_table
from dataset.spatial_dataset import SpatialSoundDataset

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import pack_hdf5  # noqa: E402


def test_pack_is_read_like_the_files_resumes_and_lists_unreadable_clips(tmp_path):
    data = write_tiny_dataset(tmp_path, n_train=4, n_eval=1, n_rirs=2, seconds=1.0, sample_rate=16000)
    with open(os.path.join(data["audio_root"], "train", "train003.wav"), "wb") as f:
        f.write(b"not audio")
    packed_root = tmp_path / "packed"
    packed_root.mkdir()
    out = str(packed_root / "train")  # the pack takes the folder's place
    assert pack_hdf5.pack(data["train_json"], data["audio_root"], out) == (3, 0, ["train003"])
    assert (packed_root / "train.unreadable.txt").read_text() == "train003\n"
    # a second run packs nothing new and keeps what is there
    assert pack_hdf5.pack(data["train_json"], data["audio_root"], out) == (0, 3, ["train003"])
    reader = AudioReader()
    for clip_id in ("train000", "train002"):
        from_pack = reader.read(str(packed_root), "train", clip_id)
        from_file = reader.read(data["audio_root"], "train", clip_id)  # resampled 16 -> 32 kHz
        assert from_pack.shape == from_file.shape == (32000,)
        np.testing.assert_allclose(from_pack, from_file, atol=1.5 / 32767)
    # the clip it could not read is missing from the pack, as from a partial download
    dataset = SpatialSoundDataset(data["train_json"], str(packed_root), load_class_table(data["label_csv"]),
                                  data["reverb_train"], data["root"], "binaural", train=False, missing_audio="skip")
    assert list(dataset.clips.missing) == ["train003"] and dataset[1][0].shape == (1, 320000)


def test_a_folder_the_list_does_not_hold_and_a_malformed_entry_are_refused_in_one_line(tmp_path):
    data = write_tiny_dataset(tmp_path, n_train=2, n_eval=1, n_rirs=2, seconds=1.0)
    out = str(tmp_path / "pack.h5")
    with pytest.raises(SystemExit, match=r"--folder Train: .*train.json lists no clip in it; its folders are train$"):
        pack_hdf5.pack(data["train_json"], data["audio_root"], out, folder="Train")
    assert not os.path.exists(out)  # no empty pack left behind
    (tmp_path / "bad.json").write_text('[{"id": "a", "folder": "train"}, {"id": "b"}]')
    with pytest.raises(SystemExit, match=r"bad.json: entry 1: expected keys 'id' and 'folder'"):
        pack_hdf5.pack(str(tmp_path / "bad.json"), data["audio_root"], out)
