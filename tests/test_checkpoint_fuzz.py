"""Every way of reading a checkpoint loads the file or refuses it in one line naming it, never a traceback.

The files are made from a real checkpoint of this project (a small model after one AdamW step,
written by main_finetune's own checkpoint_state, 0.6 MB): text, random bytes, an empty file,
truncations, byte flips inside data.pkl, and zips that are not checkpoints. Each goes
through the three readers: inference's load_model, --finetune's load_pretrained and
--resume's resume.
"""
import argparse
import io
import random
import zipfile

import pytest
import torch

import inference
import main_finetune
from conftest import CLASSES
from dataset.metadata import ClassTable
from models import SpatialAST
from util.checkpoint import CheckpointError, load_pretrained, save_checkpoint
from util.lr import param_groups_layer_decay

FLIPS = 70
TRUNCATIONS = 20


def _train_args(**overrides):
    args = main_finetune.get_args_parser().parse_args([
        "--nb_classes", str(len(CLASSES)), "--patch_size", "32", "--lr", "1e-3"])
    del args.model  # the model below is no named configuration: readers take it from the shapes
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def _small_model():
    """A Spatial-AST small enough that a hundred copies of its checkpoint cost nothing (~0.6 MB)."""
    return SpatialAST(num_classes=len(CLASSES), embed_dim=24, depth=1, num_heads=2, patch_size=32)


def _model_and_optimizer(args):
    model = _small_model()
    optimizer = torch.optim.AdamW(param_groups_layer_decay(model, 0.05, 0.75, model.no_weight_decay()), lr=args.lr)
    return model, optimizer


def _real_checkpoint(path):
    torch.manual_seed(0)
    args = _train_args()
    model, optimizer = _model_and_optimizer(args)
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    optimizer.step()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    classes = ClassTable.from_records([{"mid": m, "name": n} for m, n in CLASSES])
    state = main_finetune.checkpoint_state(model, optimizer, scaler, 0, args, classes, 1.5,
                                           main_finetune.rng_states())
    save_checkpoint(str(path), state)
    return path.read_bytes()


def _data_pkl_span(blob):
    """(start, length) of archive/data.pkl's bytes inside the (uncompressed) zip."""
    archive = zipfile.ZipFile(io.BytesIO(blob))
    info = next(i for i in archive.infolist() if i.filename.endswith("/data.pkl"))
    assert info.compress_type == zipfile.ZIP_STORED
    header = blob[info.header_offset:info.header_offset + 30]
    name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def _zip(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def malformed_files(blob):
    """(name, bytes) of >= 100 damaged or foreign files derived from the real checkpoint `blob`."""
    rng = random.Random(0)
    files = [("text", b"these are my notes, not a checkpoint\n"), ("json", b'{"model": {"w": [1, 2]}}'),
             ("python", b"import torch\nprint('hello')\n"), ("empty", b"")]
    files += [(f"random-{n}", rng.randbytes(n)) for n in (1, 64, 4096, 100_000)]
    files += [(f"random-after-zip-magic-{n}", b"PK\x03\x04" + rng.randbytes(n)) for n in (26, 5000)]
    cuts = sorted(rng.sample(range(1, len(blob)), TRUNCATIONS - 2)) + [len(blob) // 2, len(blob) - 1]
    files += [(f"truncated-{n}", blob[:n]) for n in cuts]
    start, length = _data_pkl_span(blob)
    for i in range(FLIPS):
        damaged = bytearray(blob)
        for _ in range(1 + i % 3):  # one to three flipped bytes
            damaged[start + rng.randrange(length)] = rng.randrange(256)
        files.append((f"flip-{i}", bytes(damaged)))
    files += [("zip-of-text", _zip({"notes.txt": "hello"})),
              ("zip-with-garbage-data-pkl", _zip({"archive/data.pkl": rng.randbytes(200),
                                                  "archive/version": "3\n"})),
              ("zip-without-data-pkl", _zip({"archive/version": "3\n", "archive/data/0": b"\0" * 16}))]
    return files


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    blob = _real_checkpoint(root / "real.pth")
    paths = []
    for name, data in malformed_files(blob):
        path = root / f"{name}.pth"
        path.write_bytes(data)
        paths.append(str(path))
    return root, paths


def _loads_or_refuses_in_one_line(read, path, refusal):
    try:
        read(path)
        return "loaded"
    except refusal as error:
        message = str(error)
        assert len(message.splitlines()) == 1 and path in message, message
        return "refused"


def test_more_than_100_malformed_files_are_loaded_or_refused_by_every_reader(fuzz, capfd):
    root, paths = fuzz
    assert len(paths) >= 100
    args = _train_args(resume="", eval=False)
    model, optimizer = _model_and_optimizer(args)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    target = _small_model()
    outcomes = {"refused": 0, "loaded": 0}
    for path in paths:
        outcomes[_loads_or_refuses_in_one_line(inference.load_model, path, inference.UsageError)] += 1
        outcomes[_loads_or_refuses_in_one_line(lambda p: load_pretrained(target, p), path, CheckpointError)] += 1
        args.resume = path
        outcomes[_loads_or_refuses_in_one_line(lambda p: main_finetune.resume(args, model, optimizer, scaler),
                                               path, CheckpointError)] += 1
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Warning" not in captured.err
    assert outcomes["refused"] > 200  # most damage is caught (some flips only change a number or a name)
    for path in (str(root / "real.pth"),):  # the undamaged file loads through all three
        inference.load_model(path)
        load_pretrained(target, path)
        args.resume = path
        assert main_finetune.resume(args, model, optimizer, scaler) == 1.5


def test_the_command_lines_print_one_line_and_exit_non_zero(fuzz, tiny_data, capsys):
    root, _ = fuzz
    from conftest import train_args
    for name in ("text", "truncated-1", "flip-3", "zip-of-text"):
        path = str(root / f"{name}.pth")
        code = inference.main(["--ckpt", path, "x.wav"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and path in err[0], err
    for flag, name in (("--finetune", "json"), ("--resume", "truncated-1")):
        path = str(root / f"{name}.pth")
        with pytest.raises(SystemExit) as exit_info:
            main_finetune.run(train_args(tiny_data, root / "run", "--epochs", "1", flag, path))
        message = str(exit_info.value.code)
        assert message.startswith("error: ") and len(message.splitlines()) == 1 and path in message


def test_a_malicious_pickle_is_still_refused_without_running(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.ones(1)}, "args": argparse.Namespace(x=_Payload(str(marker)))}, path)
    with pytest.raises(inference.UsageError, match="refused to load"):
        inference.load_model(str(path))
    assert not marker.exists()


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))
