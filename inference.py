"""What does the model hear in this file? Sound events, direction and distance per 10 s window.

    python inference.py --ckpt CKPT [--label_csv CSV] [--output out.jsonl] [--plot_dir DIR]
                        [--rir RIR.npy] [--top_k 5] [--hop 5] [--batch_size 8] [--device auto]
                        AUDIO [AUDIO ...]

AUDIO is wav/flac files or folders of them (searched recursively, sorted).

What the model hears is what `main_finetune.py --eval` hears, read from the checkpoint's
stored run arguments (this project's dict, or upstream's argparse.Namespace):
- With --rir, every file is a dry source placed in that room, exactly as in training and
  evaluation: its first channel, resampled to 32 kHz, scaled to -14 dBFS RMS when the run
  used --audio_normalize, then convolved by the model (`model(waveform, rir)`).
- Without --rir, a two-channel file is a binaural recording (channel 0 = left ear, 1 =
  right ear) and goes straight to the encoder (`forward_audio`). With --audio_normalize,
  one gain for both ears brings it to -14 dBFS RMS: the level training's sources had
  before the room, while the interaural level difference stays intact. A mono model takes
  a mono file the same way.
- An ambisonic model (trained with --reverb_type ambisonics) takes 4-channel (first-order)
  or 9-channel (second-order) AmbiX recordings as they are (ACN, SN3D; --ambisonics_format
  fuma or n3d converts); a first-order model uses the first 4 channels of a second-order
  file (exactly its first-order part). With --audio_normalize one gain for all channels
  brings W, the omnidirectional pressure, to -14 dBFS RMS. docs/ambisonics.md has the
  conventions.
The model (name, so width, depth and heads; classes, patch size, fused channels, input
channels: ears, or the ambisonic order) is built from the stored arguments too; from the
tensor shapes only when none are stored.

Windows: a file of at most 10 s is one window [0, 10], zero-padded as in training. A
longer file is cut into 10 s windows starting at 0, hop, 2 hop, ... up to the first
window that reaches the end of the file, which is zero-padded: a 23 s file with hop 5
gives [0, 10], [5, 15], [10, 20], [15, 25]. `end_s` is always `start_s + 10`, the padded
window; `duration_s` says how much of it is audio.

Output: one JSON line per file and window (stdout unless --output):
  file, input ("binaural", "ambisonics", "mono+rir" or "mono"), start_s, end_s, duration_s,
  classes [{mid, name, prob}] (top-k by sigmoid score), azimuth_deg (0 = right,
  90 = front), elevation_deg, distance_m (argmax classes), lateral_deg (angle off the median
  plane, + to the right: the posterior mean, as --eval's lateral_MAE scores it), direction_confidence
  (posterior mass of azimuth x elevation within 20 degrees great-circle of the answer),
  distance_confidence (mass within one 0.5 m class of the answer), direction (words).

A bad input file gets one line on stderr naming it; the other files still get results,
and the exit code is 1. A bad checkpoint, --label_csv or --rir stops everything: exit 2.
"""
import argparse
import json
import logging
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from dataset import ambisonics
from dataset.audio import (CLIP_SAMPLES, SAMPLE_RATE, TARGET_DBFS, DataError, fit_length, read_audio_file, read_rir,
                           rms_gain)
from dataset.metadata import ClassTable, load_class_table
from dataset.spatial import DISTANCE_BIN_M, class_to_degrees, direction_words
from models import create_model, frontend
from models.spatial_ast import SpatialAST, config_from_state_dict
from util import dist
from util.checkpoint import CheckpointError, checkpoint_args, describe_error, load_checkpoint, model_state_dict
from util.metrics import great_circle_degrees, predicted_classes
from util.report import new_figure, save_figure

log = logging.getLogger("inference")

AUDIO_EXTENSIONS = (".wav", ".flac")
WINDOW_SECONDS = CLIP_SAMPLES / SAMPLE_RATE
MIN_SECONDS = 1.0
DIRECTION_RADIUS_DEG = 20.0  # the ER20 threshold: confidence = P(the answer counts as correct)
_ANGLE_TOLERANCE_DEG = 1e-9  # class pairs exactly 20 degrees away count as within, as in ER20
_PROGRESS_MIN_FILES = 5  # a bar for a handful of files is noise


class UsageError(RuntimeError):
    """A problem that stops the whole run (checkpoint, class names, RIR, device): exit 2."""


# ---------------------------------------------------------------- command line

def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def hop_seconds(text):
    value = float(text)
    # A hop longer than the window would skip audio between windows.
    if not 0 < value <= WINDOW_SECONDS:
        raise argparse.ArgumentTypeError(f"expected 0 < hop <= {WINDOW_SECONDS:g} seconds, got {text}")
    return value


def get_args_parser():
    p = argparse.ArgumentParser(description="Sound events, direction and distance heard by Spatial-AST in "
                                            "audio files, one JSON line per file and 10 s window.")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="wav/flac files or folders of them (recursive)")
    p.add_argument("--ckpt", required=True, help="this project's checkpoint or the published finetuned.pth")
    p.add_argument("--label_csv", default="", help="class csv (index,mid,display_name) for a checkpoint "
                                                   "that stores no class names")
    p.add_argument("--output", default="", help="JSON-lines file to write (default: stdout)")
    p.add_argument("--plot_dir", default="", help="write one PNG per file (its first window) here")
    p.add_argument("--rir", default="", help="impulse response .npy [channels, samples]: every file is then a "
                                             "dry source in that room (its first channel, as in training)")
    p.add_argument("--ambisonics_format", choices=ambisonics.FORMATS, default="ambix",
                   help="channel order and scaling of ambisonic recordings: ambix (ACN/SN3D, as is), fuma "
                        "(W X Y Z ..., W at -3 dB) or n3d (ACN/N3D); converted to AmbiX before the model")
    p.add_argument("--top_k", type=positive_int, default=5, help="classes listed per window")
    p.add_argument("--hop", type=hop_seconds, default=5.0, help="seconds between 10 s windows of long files")
    p.add_argument("--batch_size", type=positive_int, default=8, help="windows per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    return p


# ---------------------------------------------------------------- model and class names

EARS = {"binaural": 2, "mono": 1}


@dataclass
class Hearing:
    """How the checkpoint's run read its audio, which inference repeats."""
    normalize: bool  # --audio_normalize: each clip scaled to TARGET_DBFS RMS before the room


def load_model(ckpt_path, label_csv=""):
    """(SpatialAST in eval mode, ClassTable, Hearing) from a checkpoint; raises UsageError.

    Whatever a damaged file holds, the result is a model or one UsageError naming the file.
    """
    try:
        checkpoint = load_checkpoint(ckpt_path)
        state = model_state_dict(checkpoint, ckpt_path)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    try:
        args = checkpoint_args(checkpoint)
        model = build_from_args(args, state, ckpt_path).eval()
        hearing = Hearing(normalize=bool(args.get("audio_normalize", False)))
    except UsageError:
        raise
    except Exception as error:  # a damaged file can fail anywhere in its contents: one line, not a traceback
        log.debug("interpreting %s", ckpt_path, exc_info=True)
        raise UsageError(f"{ckpt_path}: not a Spatial-AST checkpoint this code can load "
                         f"({describe_error(error)})") from None
    classes = class_names(checkpoint, ckpt_path, label_csv, model.head.out_features)
    return model, classes, hearing


def build_from_args(args, state, ckpt_path):
    """The model the run trained, loaded strictly: built from its stored arguments when they name
    the model (entries they lack take main_finetune.py's defaults), else from the tensor shapes."""
    if "model" not in args:
        log.warning("%s stores no model name in its run arguments: the model is read from its tensor shapes",
                    ckpt_path)
        model = SpatialAST(**config_from_state_dict(state), drop_path_rate=0.0)
    else:
        try:
            model = create_model(args["model"], num_classes=int(args.get("nb_classes", 355)), drop_path_rate=0.0,
                                 patch_size=args.get("patch_size", 16),
                                 num_channels=stored_input_channels(args, state, ckpt_path),
                                 fusion_channels=int(args.get("fusion_channels", 1)),
                                 event_pool=args.get("event_pool", "cls"))
        except ValueError as error:
            raise UsageError(f"{ckpt_path}: stored arguments describe no model this code builds ({error})") from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as error:
        detail = " ".join(str(error).split())[:300]
        raise UsageError(f"{ckpt_path}: its weights do not fit the model its stored arguments describe "
                         f"({detail})") from None
    return model


def stored_input_channels(args, state, ckpt_path):
    """Input channels of the run: 2 (binaural), 1 (mono), or 4 / 9 for ambisonics of the stored
    ambisonic_order, read from the fusion conv's shape when the run stored no order."""
    reverb_type = args.get("reverb_type", "binaural")
    if reverb_type in EARS:
        return EARS[reverb_type]
    if reverb_type != "ambisonics":
        raise UsageError(f"{ckpt_path}: stored reverb_type {reverb_type!r} is not binaural, mono or ambisonics")
    if "ambisonic_order" not in args:
        channels = config_from_state_dict(state)["num_channels"]
        if channels not in ambisonics.ORDER_OF_CHANNELS:
            raise UsageError(f"{ckpt_path}: stored reverb_type ambisonics, but its weights take {channels} "
                             f"input channel(s), not 4 or 9")
        log.warning("%s stores no ambisonic_order: order %d read from its tensor shapes", ckpt_path,
                    ambisonics.order_of(channels))
        return channels
    order = args["ambisonic_order"]
    if order not in (1, 2):
        raise UsageError(f"{ckpt_path}: stored ambisonic_order {order!r}; this code reads order 1 or 2")
    return ambisonics.num_channels(order)


def class_names(checkpoint, ckpt_path, label_csv, num_classes):
    """The checkpoint's own class table if it has one, else --label_csv (lengths must agree). Given
    both, the csv must list the checkpoint's classes, in its order."""
    records = checkpoint.get("classes") if isinstance(checkpoint, dict) else None
    given = None
    if label_csv:
        try:
            given = load_class_table(label_csv)
        except DataError as error:
            raise UsageError(str(error)) from None
    if records:
        try:
            classes = ClassTable.from_records(records)
        except (TypeError, KeyError):
            raise UsageError(f"{ckpt_path}: 'classes' must be a list of {{'mid', 'name'}} records") from None
        where = f"{ckpt_path} ('classes')"
        if given is not None and given.mids != classes.mids:
            raise UsageError(f"--label_csv {label_csv}: its {len(given)} classes are not the {len(classes)} that "
                             f"{ckpt_path} was trained on (stored in it); leave --label_csv out")
    elif given is not None:
        classes, where = given, label_csv
    else:
        raise UsageError(f"{ckpt_path}: the checkpoint stores no class names; pass --label_csv "
                         f"(index,mid,display_name) with its {num_classes} classes")
    if len(classes) != num_classes:
        raise UsageError(f"{where}: lists {len(classes)} classes but the model in {ckpt_path} "
                         f"predicts {num_classes}")
    return classes


def load_rir_tensor(path, channels):
    if not path:
        return None
    try:
        return torch.from_numpy(read_rir(path, channels))
    except DataError as error:
        raise UsageError(f"--rir {error}") from None


def resolve_device(name):
    try:
        return dist.resolve_device(name)
    except RuntimeError as error:
        raise UsageError(f"--device {name}: {error}") from None


# ---------------------------------------------------------------- input files

def expand_inputs(paths):
    """Files to read, in order: folders become their audio files (recursive, sorted).

    Returns (files, problems): a folder without audio is a problem, not a file.
    Anything else (a missing path included) is kept so that reading it reports the error.
    """
    files, problems = [], []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        found = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names if name.lower().endswith(AUDIO_EXTENSIONS))
        if not found:
            problems.append(f"{path}: folder holds no {'/'.join(AUDIO_EXTENSIONS)} files")
        files.extend(found)
    return files, problems


@dataclass
class AudioInput:
    path: str
    signal: np.ndarray  # [channels, samples] float32 at 32 kHz, channel 0 = left ear
    kind: str  # "binaural" / "mono": goes to forward_audio; "mono+rir": convolved by the model

    @property
    def duration_s(self):
        return self.signal.shape[-1] / SAMPLE_RATE


def read_input(path, num_channels, has_rir, ambisonics_format="ambix"):
    """Read and check one file for a model with `num_channels` input channels; raises DataError.

    With a RIR the file is a dry source and only its first channel is kept, as the
    training and evaluation data do.
    """
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DataError(f"{path}: file is empty (0 bytes)")
    if has_rir:
        signal = read_audio_file(path, channels="first")[0][None]
    else:
        signal = read_audio_file(path, channels="all")[0]
    channels = signal.shape[0]
    if channels > 2 and channels not in ambisonics.ORDER_OF_CHANNELS:
        raise DataError(f"{path}: has {channels} channels; expected 2 (binaural: left, right), 1 (mono), or "
                        f"4 or 9 (first- or second-order ambisonics)")
    if signal.shape[-1] < MIN_SECONDS * SAMPLE_RATE:
        raise DataError(f"{path}: is {signal.shape[-1] / SAMPLE_RATE:.2f} s long; "
                        f"at least {MIN_SECONDS:g} s is needed")
    kind = input_kind(path, channels, num_channels, has_rir)
    if kind == "ambisonics":  # to AmbiX, then down to the model's order (the first channels in ACN)
        signal = ambisonics.to_ambix(signal, ambisonics_format)[:num_channels].astype(np.float32)
    return AudioInput(path, signal, kind)


def input_kind(path, channels, num_channels, has_rir):
    """How a file with `channels` channels reaches a model with `num_channels` input channels."""
    if channels == 1 and has_rir:
        return "mono+rir"
    if num_channels in ambisonics.ORDER_OF_CHANNELS or channels in ambisonics.ORDER_OF_CHANNELS:
        return _ambisonic_kind(path, channels, num_channels)
    if channels == num_channels:
        return "binaural" if channels == 2 else "mono"
    if channels == 1:
        raise DataError(f"{path}: is mono and the model is binaural; pass --rir ROOM.npy to place it "
                        f"in a room, or give a two-channel (left, right) recording")
    raise DataError(f"{path}: is a two-channel recording and the model is mono (one channel); "
                    f"give a mono file")


_MODEL_INPUT = {1: "a mono file", 2: "a two-channel binaural (left, right) recording, or a mono file with --rir",
                4: "a 4- or 9-channel ambisonic (AmbiX) recording, or a mono file with --rir",
                9: "a 9-channel second-order ambisonic (AmbiX) recording, or a mono file with --rir"}


def _ambisonic_kind(path, channels, num_channels):
    """An ambisonic file for an ambisonic model of the same or a lower order; anything else is refused."""
    if num_channels in ambisonics.ORDER_OF_CHANNELS and channels >= num_channels:
        return "ambisonics"
    if channels in ambisonics.ORDER_OF_CHANNELS:
        what = f"a {channels}-channel ambisonic recording"
    else:
        what = "a mono file" if channels == 1 else "a two-channel recording"
    model = {1: "mono", 2: "binaural", 4: "first-order ambisonic", 9: "second-order ambisonic"}[num_channels]
    raise DataError(f"{path}: is {what} and the model is {model}; it needs {_MODEL_INPUT[num_channels]}")


def window_starts(num_samples, hop_samples, window=CLIP_SAMPLES):
    """Window start samples: 0, hop, 2 hop, ... up to the first window reaching the end."""
    if num_samples <= window:
        return [0]
    count = math.ceil((num_samples - window) / hop_samples) + 1
    return [k * hop_samples for k in range(count)]


def window_signal(audio, start, normalize=False):
    """[channels, CLIP_SAMPLES] float32: the window, zero-padded past the end of the file.

    With `normalize` (the run's --audio_normalize) the window's audio is scaled to
    TARGET_DBFS RMS before padding, as the dataset scales a clip: the same for a clip of
    at most 10 s. One gain serves all channels, so two ears keep their level difference
    and ambisonic channels their ratios. The gain is set on the pressure signals: both
    ears, or W for ambisonics (all channels' RMS would depend on the order: in SN3D each
    degree's channels together carry W's energy).
    """
    part = audio.signal[:, start:start + CLIP_SAMPLES]
    if normalize:
        pressure = part[:1] if audio.kind == "ambisonics" else part
        part = part * rms_gain(pressure, TARGET_DBFS)
    return fit_length(part, CLIP_SAMPLES).astype(np.float32)


def ears_of(window, kind, rir):
    """What reaches the ears for a window [C, T]: the model's own convolution for mono+rir."""
    if kind != "mono+rir":
        return window
    with torch.no_grad():
        return frontend.fft_convolve(torch.from_numpy(window)[None], rir[None].float())[0].numpy()


def ear_features(ears):
    """Front-end views of ear signals [C, T] (channel 0 = left): the model's STFT, log-mel, IPD.

    Returns "log_mel" [C, frames, 128] (before the model's BatchNorm) and, for two ears,
    "ipd" [frames, 513] = phase(right) - phase(left) in radians per STFT bin and
    "ipd_cos_mel" / "ipd_sin_mel" [frames, 128], the model's IPD input channels.
    """
    window = torch.hann_window(frontend.N_FFT)
    mel = frontend.mel_matrix()
    with torch.no_grad():
        spec = frontend.stft(torch.as_tensor(ears, dtype=torch.float32)[None], window)  # [1, C, F, 513]
        out = {"log_mel": frontend.log_mel(spec, mel)[0].numpy()}
        if spec.shape[1] == 2:
            phase = torch.angle(spec[0])
            cos_mel, sin_mel = frontend.interaural_phase(spec, mel)[0]
            out.update(ipd=(phase[1] - phase[0]).numpy(), ipd_cos_mel=cos_mel.numpy(), ipd_sin_mel=sin_mel.numpy())
    return out


def features_for_file(path, num_channels=2, rir=None, normalize=False):
    """`ear_features` of a file's first window, read exactly as inference reads it."""
    audio = read_input(path, num_channels, rir is not None)
    return ear_features(ears_of(window_signal(audio, 0, normalize), audio.kind, rir))


# ---------------------------------------------------------------- prediction

@dataclass
class Window:
    audio: AudioInput
    index: int
    start: int


@torch.no_grad()
def predict_windows(model, windows, rir, device, normalize=False):
    """Probabilities for a batch of windows: list of dicts (events, distance, azimuth, elevation)."""
    outputs = [None] * len(windows)
    for kind in sorted({w.audio.kind for w in windows}):  # each route is one forward pass
        rows = [i for i, w in enumerate(windows) if w.audio.kind == kind]
        batch = torch.from_numpy(np.stack([window_signal(windows[i].audio, windows[i].start, normalize)
                                           for i in rows]))
        batch = batch.to(device)
        if kind == "mono+rir":
            logits = model(batch, rir.to(device)[None].expand(len(rows), -1, -1))
        else:
            logits = model.forward_audio(batch)
        events, distance, azimuth, elevation = (t.float().cpu() for t in logits)
        probs = (torch.sigmoid(events), distance.softmax(-1), azimuth.softmax(-1), elevation.softmax(-1))
        for j, i in enumerate(rows):
            outputs[i] = dict(zip(("events", "distance", "azimuth", "elevation"), (p[j].numpy() for p in probs)))
    return outputs


def direction_confidence(azimuth_prob, elevation_prob, azimuth_class, elevation_class,
                         radius_deg=DIRECTION_RADIUS_DEG):
    """Mass of the joint azimuth x elevation posterior within `radius_deg` of the answer."""
    azimuth_deg, elevation_deg = class_to_degrees(np.arange(len(azimuth_prob)), np.arange(len(elevation_prob)))
    answer_az, answer_el = class_to_degrees(azimuth_class, elevation_class)
    angles = great_circle_degrees(azimuth_deg[:, None], elevation_deg[None, :], answer_az, answer_el)
    near = (angles <= radius_deg + _ANGLE_TOLERANCE_DEG).astype(np.float64)
    return float(azimuth_prob.astype(np.float64) @ near @ elevation_prob.astype(np.float64))


def describe(window, probs, classes, top_k):
    """The JSON record of one window."""
    top = np.argsort(-probs["events"], kind="stable")[:top_k]
    answer = predicted_classes({"azimuth_prob": probs["azimuth"][None], "elevation_prob": probs["elevation"][None],
                                "distance_prob": probs["distance"][None]})  # the decoding --eval scores
    azimuth_class, elevation_class = int(answer["azimuth"][0]), int(answer["elevation"][0])
    distance_class = int(answer["distance"][0])
    azimuth_deg, elevation_deg = (float(v) for v in class_to_degrees(azimuth_class, elevation_class))
    start_s = window.start / SAMPLE_RATE
    return {
        "file": window.audio.path,
        "input": window.audio.kind,
        "start_s": round(start_s, 4),
        "end_s": round(start_s + WINDOW_SECONDS, 4),
        "duration_s": round(window.audio.duration_s, 4),
        "classes": [{"mid": classes.mids[i], "name": classes.names[i], "prob": round(float(probs["events"][i]), 4)}
                    for i in top],
        "azimuth_deg": azimuth_deg,
        "elevation_deg": elevation_deg,
        "lateral_deg": round(float(answer["lateral_deg"][0]), 2),
        "distance_m": distance_class * DISTANCE_BIN_M,
        "direction_confidence": round(direction_confidence(probs["azimuth"], probs["elevation"],
                                                           azimuth_class, elevation_class), 4),
        "distance_confidence": round(float(probs["distance"][max(distance_class - 1, 0):distance_class + 2].sum()), 4),
        "direction": direction_words(azimuth_deg, elevation_deg),
    }


# ---------------------------------------------------------------- plots

def plot_path(plot_dir, path, used):
    """<plot_dir>/<file stem>.png, with -2, -3... when two inputs share a stem."""
    stem = os.path.splitext(os.path.basename(path))[0] or "audio"
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return os.path.join(plot_dir, name + ".png")


def plot_window(out_path, record, probs, ears, classes):
    """Ears' log-mels, sin IPD, azimuth polar plot, distance and top classes of one window."""
    features = ear_features(ears)
    fig = new_figure((15, 8))
    grid = fig.add_gridspec(2, 3)
    extent = [0, ears.shape[-1] / SAMPLE_RATE, 0, frontend.N_MELS]
    ear_names = {1: ["mono"], 2: ["left ear", "right ear"]}.get(ears.shape[0], ["W (omnidirectional)"])
    for i, name in enumerate(ear_names):
        _image(fig.add_subplot(grid[0, i]), features["log_mel"][i], extent, f"log-mel, {name} (dB)", "magma")
    if "ipd_sin_mel" in features:
        # Divided by each filter's weight sum (Slaney mel filters sum to ~0.03): mean sin IPD in -1..1.
        mean_sin = features["ipd_sin_mel"] / frontend.mel_matrix().sum(0).clamp(min=1e-12).numpy()
        _image(fig.add_subplot(grid[0, 2]), mean_sin, extent, "sin IPD per mel band (IPD = right - left phase)",
               "coolwarm", vmin=-1, vmax=1)
    _plot_azimuth(fig.add_subplot(grid[1, 0], projection="polar"), probs["azimuth"], record)
    _plot_distance(fig.add_subplot(grid[1, 1]), probs["distance"], record)
    _plot_classes(fig.add_subplot(grid[1, 2]), record)
    fig.suptitle(f"{record['file']}  [{record['start_s']:g}-{record['end_s']:g} s]: {record['direction']}, "
                 f"{record['distance_m']:g} m")
    save_figure(fig, out_path, dpi=80)


def _image(ax, values, extent, title, cmap, **scale):
    image = ax.imshow(values.T, origin="lower", aspect="auto", extent=extent, cmap=cmap, interpolation="nearest",
                      **scale)
    ax.figure.colorbar(image, ax=ax)
    ax.set(title=title, xlabel="time (s)", ylabel="mel bin")


def _plot_azimuth(ax, azimuth_prob, record):
    # 0 degrees = right drawn at the east, counter-clockwise, so 90 = front is at the top.
    ax.set_theta_zero_location("E")
    ax.set_theta_direction(1)
    theta = np.radians(np.append(np.arange(len(azimuth_prob)), 0))
    ax.plot(theta, np.append(azimuth_prob, azimuth_prob[0]))
    ax.plot([np.radians(record["azimuth_deg"])] * 2, [0, azimuth_prob.max()], color="tab:red")
    ax.set_xticks(np.radians([0, 90, 180, 270]), ["right", "front", "left", "behind"])
    ax.set_yticklabels([])  # the shape matters, not the per-degree probabilities
    ax.set_title(f"azimuth posterior: {record['azimuth_deg']:g} deg, elevation {record['elevation_deg']:g} deg\n"
                 f"{record['direction_confidence']:.0%} within {DIRECTION_RADIUS_DEG:g} deg")


def _plot_distance(ax, distance_prob, record):
    ax.bar(np.arange(len(distance_prob)) * DISTANCE_BIN_M, distance_prob, width=0.8 * DISTANCE_BIN_M)
    ax.set(title=f"distance posterior: {record['distance_m']:g} m "
                 f"({record['distance_confidence']:.0%} within {DISTANCE_BIN_M:g} m)",
           xlabel="distance (m)", ylabel="probability")


def _plot_classes(ax, record):
    names = [c["name"] for c in record["classes"]][::-1]
    ax.barh(np.arange(len(names)), [c["prob"] for c in record["classes"]][::-1])
    ax.set_yticks(np.arange(len(names)), names)
    ax.set(xlim=(0, 1), title="top classes", xlabel="probability (sigmoid)")


# ---------------------------------------------------------------- the run

class Run:
    """Reads files, batches their windows, writes one record per window in input order."""

    def __init__(self, args, model, classes, hearing, rir, device, out):
        self.args, self.model, self.classes, self.rir, self.device, self.out = args, model, classes, rir, device, out
        self.normalize = hearing.normalize
        self.hop_samples = max(1, round(args.hop * SAMPLE_RATE))
        self.pending = []
        self.plot_names = set()
        self.failed = 0

    def fail(self, message):
        self.failed += 1
        tqdm.write(f"error: {message}", file=sys.stderr)  # keeps a running progress bar intact

    def add_file(self, path):
        try:
            audio = read_input(path, self.model.num_channels, self.rir is not None, self.args.ambisonics_format)
        except DataError as error:
            self.fail(str(error))
            return
        except Exception as error:  # a decoder's own exception type: still one line, not a traceback
            log.debug("reading %s", path, exc_info=True)
            self.fail(f"{path}: cannot read audio ({type(error).__name__}: {error})")
            return
        for index, start in enumerate(window_starts(audio.signal.shape[-1], self.hop_samples)):
            self.pending.append(Window(audio, index, start))
            if len(self.pending) >= self.args.batch_size:
                self.flush()

    def flush(self):
        if not self.pending:
            return
        windows, self.pending = self.pending, []
        for window, probs in zip(windows, predict_windows(self.model, windows, self.rir, self.device,
                                                                   self.normalize)):
            record = describe(window, probs, self.classes, self.args.top_k)
            self.out.write(json.dumps(record) + "\n")
            if self.args.plot_dir and window.index == 0:
                ears = ears_of(window_signal(window.audio, 0, self.normalize), window.audio.kind, self.rir)
                plot_window(plot_path(self.args.plot_dir, window.audio.path, self.plot_names), record, probs,
                            ears, self.classes)
        self.out.flush()


def setup(args):
    """Everything that fails the whole run comes first, before any output is written."""
    device = resolve_device(args.device)
    model, classes, hearing = load_model(args.ckpt, args.label_csv)
    rir = load_rir_tensor(args.rir, model.num_channels)
    if args.plot_dir:
        os.makedirs(args.plot_dir, exist_ok=True)
    return model.to(device), classes, hearing, rir, device


def run(args, out, model, classes, hearing, rir, device):
    """Process every input; returns the exit code."""
    files, problems = expand_inputs(args.audio)
    job = Run(args, model, classes, hearing, rir, device, out)
    for problem in problems:
        job.fail(problem)
    total = len(files) + len(problems)
    # No bar in a log file or pipe: there it would only interleave with the one-line errors.
    bar = tqdm(files, unit="file", file=sys.stderr, mininterval=0.5,
               disable=len(files) < _PROGRESS_MIN_FILES or not sys.stderr.isatty())
    for path in bar:
        job.add_file(path)
    job.flush()
    bar.close()
    if job.failed:
        sys.stderr.write(f"error: {job.failed} of {total} inputs failed\n")
        return 1
    return 0


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = get_args_parser().parse_args(argv)
    except SystemExit as exit_request:  # argparse has printed its message; return rather than exit
        return int(exit_request.code or 0)
    try:
        loaded = setup(args)
        if not args.output:
            return run(args, sys.stdout, *loaded)
        with open(args.output, "w") as out:
            return run(args, out, *loaded)
    except (UsageError, OSError) as error:  # OSError: --output or --plot_dir not writable
        sys.stderr.write(f"error: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
