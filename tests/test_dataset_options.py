"""Dataset options and loader settings: bad reverb positions, audio_normalize, roll_mag_aug, num_workers."""
import json

import numpy as np
import pytest
import torch

import engine_finetune as engine
import main_finetune
from conftest import train_args
from dataset.audio import TARGET_DBFS, read_audio_file
from dataset.metadata import load_class_table
from dataset.spatial_dataset import SpatialSoundDataset
from models import build_AST_tiny


def _dataset(data, **options):
    classes = load_class_table(data["label_csv"])
    return SpatialSoundDataset(data["train_json"], data["audio_root"], classes, data["reverb_train"], data["root"],
                               "binaural", train=True, **options)


def _rms_dbfs(signal):
    return 20 * np.log10(np.sqrt(np.mean(np.square(signal, dtype=np.float64))))


@pytest.mark.parametrize("bad", ["1,2", "1,2,x", "1,2,inf", ""])
def test_bad_position_in_a_reverb_json_is_one_line_naming_file_and_entry(tiny_data, tmp_path, bad):
    with open(tiny_data["reverb_train"]) as f:
        document = json.load(f)
    document["data"][2]["source_position"] = bad
    broken = tmp_path / "reverb.json"
    broken.write_text(json.dumps(document))
    with pytest.raises(SystemExit) as exit_info:
        main_finetune.run(train_args(tiny_data, tmp_path, "--reverb_train", str(broken)))
    message = str(exit_info.value.code)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"error: {broken}: entry 2 source_position: expected an 'x,y,z'"), message


def test_audio_normalize_brings_every_clip_to_minus_14_dbfs(tiny_data):
    dataset = _dataset(tiny_data, normalize=True)
    for i in range(len(dataset)):
        waveform = dataset[i][0][0].numpy()
        assert _rms_dbfs(waveform) == pytest.approx(TARGET_DBFS, abs=1e-3)
    raw = _dataset(tiny_data)[0][0][0].numpy()
    assert abs(_rms_dbfs(raw) - TARGET_DBFS) > 0.5  # the clips are not at that level by themselves


def test_roll_mag_aug_is_a_circular_shift_times_a_gain_in_half_to_one_and_a_half(tiny_data):
    clip = read_audio_file(f"{tiny_data['audio_root']}/train/train000.wav")[0]
    dataset = _dataset(tiny_data, roll_mag_aug=True)
    torch.manual_seed(0)
    shifts, gains = set(), []
    for _ in range(8):
        augmented = dataset[0][0][0].numpy().astype(np.float64)
        # the shift: peak of the circular cross-correlation; the gain: least squares at that shift
        correlation = np.fft.irfft(np.fft.rfft(augmented) * np.conj(np.fft.rfft(clip)), n=len(clip))
        shift = int(np.argmax(correlation))
        rolled = np.roll(clip, shift).astype(np.float64)
        gain = float(augmented @ rolled / (rolled @ rolled))
        assert np.allclose(augmented, gain * rolled, atol=1e-5)
        shifts.add(shift)
        gains.append(gain)
    assert len(shifts) == 8 and all(0.5 <= g <= 1.5 for g in gains) and np.std(gains) > 0.01
    torch.manual_seed(0)
    plain = _dataset(tiny_data)[0][0][0].numpy()
    assert np.array_equal(plain, clip)  # without the flag, the clip is untouched


def test_eval_metrics_do_not_depend_on_the_number_of_workers(tiny_data):
    torch.manual_seed(0)
    model = build_AST_tiny(num_classes=3, patch_size=32).eval()
    classes = load_class_table(tiny_data["label_csv"])
    val = SpatialSoundDataset(tiny_data["eval_json"], tiny_data["audio_root"], classes, tiny_data["reverb_eval"],
                              tiny_data["root"], "binaural", train=False, normalize=True)
    results = []
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(val, batch_size=2, num_workers=workers)
        result, class_ap, predictions = engine.evaluate(model, loader, torch.device("cpu"))
        results.append((result, predictions))
    (zero, zero_predictions), (two, two_predictions) = results
    assert zero == two
    for name in zero_predictions:
        assert np.array_equal(zero_predictions[name], two_predictions[name]), name
