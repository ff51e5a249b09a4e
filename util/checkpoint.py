"""Checkpoints: atomic writes, weights-only reads, resuming, and fine-tuning initialisation.

Layout (AudioMAE/MAE `save_model`, as the published `finetuned.pth`):
{"model", "optimizer", "epoch", "scaler", "args"}, plus "classes" (the class table, so
inference needs no csv) and "best_mAP" here. "args" is a plain dict in this project's
checkpoints; upstream and AudioMAE pickle an argparse.Namespace, which is the one
non-tensor type allowed when reading.
"""
import argparse
import logging
import os
import pickle
import re
import tempfile
import warnings

import torch

from models.spatial_ast import FROZEN_FRONTEND_KEYS, check_frozen_frontend

log = logging.getLogger(__name__)

# AudioMAE pre-training keys with no counterpart in Spatial-AST: its single CLS token
# (Spatial-AST's three are "cls_tokens", which must NOT match), the encoder's final norm,
# the MAE mask token and decoder.
AUDIOMAE_ONLY_KEYS = ("cls_token", "mask_token")
AUDIOMAE_ONLY_PREFIXES = ("norm.", "decoder")


def is_audiomae_only(key):
    return key in AUDIOMAE_ONLY_KEYS or key.startswith(AUDIOMAE_ONLY_PREFIXES)


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(path, state):
    """Write `state` to `path` atomically: a crash mid-write never leaves a torn file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; checkpoints are shared artefacts
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise


def load_checkpoint(path):
    """Read a checkpoint with `weights_only=True`, allowing argparse.Namespace only.

    Anything else pickled inside (a class, a function) is refused before it is
    constructed: nothing from the file runs. Any file that is not a readable checkpoint
    (text, a truncated or damaged file, another zip) is one CheckpointError naming it.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with warnings.catch_warnings():  # a damaged pickle makes torch warn (odd protocol) before failing
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals([argparse.Namespace]):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if not found:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt or another format)") from None
        raise CheckpointError(
            f"{path}: refused to load: it holds a pickled {found.group(1)}, and checkpoints are read as weights "
            f"only (tensors, plain containers and argparse.Namespace); nothing from the file was run") from None
    except Exception as error:  # a damaged file fails anywhere inside torch's reader, with any exception type
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({describe_error(error)})") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint: holds a {type(checkpoint).__name__}, expected a dict")
    return checkpoint


def describe_error(error):
    """'KeyError: 66': an exception as one short line."""
    first_line = (str(error).strip().splitlines() or [""])[0][:200]
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def checkpoint_args(checkpoint):
    """The run's arguments as a dict, whether stored as dict or argparse.Namespace."""
    args = checkpoint.get("args") if isinstance(checkpoint, dict) else None
    if isinstance(args, argparse.Namespace):
        return vars(args)
    return dict(args) if isinstance(args, dict) else {}


def model_state_dict(checkpoint, path="checkpoint"):
    """The model weights of a checkpoint (under "model", or the file itself), DDP prefix removed."""
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not any(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: no model weights found (expected a state dict under 'model')")
    bad = [k for k, v in state.items()
           if not (isinstance(k, str) and torch.is_tensor(v)) or v.is_complex() or v.dtype == torch.bool]
    if bad:
        raise CheckpointError(f"{path}: damaged state dict under 'model': entry {bad[0]!r} is not a named tensor")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def load_weights_strictly(model, checkpoint, path="checkpoint"):
    """Load every model tensor of `checkpoint` (to evaluate or resume); a mismatch is one clear error."""
    try:
        model.load_state_dict(model_state_dict(checkpoint, path), strict=True)
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())[:400]
        raise CheckpointError(f"{path}: does not fit this model (--model, --nb_classes, --reverb_type): "
                              f"{detail}") from None


def load_pretrained(model, path):
    """Initialise `model` from an AudioMAE or Spatial-AST checkpoint for fine-tuning.

    Every tensor whose name and shape match is copied (a Spatial-AST checkpoint gives all of
    them, CLS tokens included); AudioMAE's own keys are skipped. The log says which tensors
    were taken and which were left at their initialisation, and why. Returns the number
    of tensors taken. Fails when no encoder weight matched: the file is not a compatible
    checkpoint.
    """
    checkpoint = load_checkpoint(path)
    source = model_state_dict(checkpoint, path)
    try:  # the strict load's hook checks them; a partial load must too
        check_frozen_frontend(model, source)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    target = model.state_dict()
    taken, left = {}, {}
    for key, value in target.items():
        if key not in source:
            left[key] = "not in the checkpoint"
        elif source[key].shape != value.shape:
            left[key] = f"shape {list(source[key].shape)} in the checkpoint, {list(value.shape)} here"
        else:
            taken[key] = source[key]
    unused = {key: unused_reason(key) for key in source if key not in target}
    if not any(k.startswith(("blocks.", "patch_embed.")) for k in taken):
        raise CheckpointError(f"{path}: no encoder weight (blocks.*, patch_embed.*) matches this model; "
                              f"is it an AudioMAE or Spatial-AST checkpoint of the same size?")
    model.load_state_dict(taken, strict=False)
    log.info("fine-tuning from %s: took %d of %d model tensors: %s", path, len(taken), len(target),
             summarise_keys(taken))
    for key, reason in left.items():
        log.info("  left at initialisation: %s (%s)", key, reason)
    for key, reason in unused.items():
        log.info("  not used from the checkpoint: %s (%s)", key, reason)
    return len(taken)


def unused_reason(key):
    if is_audiomae_only(key):
        return "AudioMAE pre-training only"
    if key in FROZEN_FRONTEND_KEYS:
        return "frozen STFT/mel tensor; this model computes its own"
    return "no such tensor in this model"


def summarise_keys(keys):
    """'blocks.0-11 (144 tensors), cls_tokens, ...': one short line for hundreds of names."""
    blocks = sorted({int(k.split(".")[1]) for k in keys if k.startswith("blocks.")})
    others = sorted({k.split(".")[0] for k in keys if not k.startswith("blocks.")})
    parts = [f"blocks.{blocks[0]}-{blocks[-1]} ({sum(k.startswith('blocks.') for k in keys)} tensors)"] if blocks else []
    return ", ".join(parts + others)
