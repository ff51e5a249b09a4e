"""Upstream metadata formats, read and checked once at start-up.

- class csv: `index,mid,display_name`, row order is the class index;
- clip json: a list of {"id", "folder", "label": [mid, ...]};
- reverb json: {"data": [{"fname", "sensor_position", "source_position", ...}]};
- weight csv: one float per line, one line per training clip.

Every check here is cheap (no audio is decoded) and raises DataError naming the file
and entry, so a bad path or id stops the run before the first training step.
"""
import csv
import json
import os
from collections import Counter
from dataclasses import dataclass

import numpy as np

from dataset.audio import DataError
from dataset.spatial import parse_position, spatial_targets


@dataclass(frozen=True)
class ClassTable:
    mids: list
    names: list

    def __len__(self):
        return len(self.mids)

    def index(self):
        return {mid: i for i, mid in enumerate(self.mids)}

    def as_records(self):
        return [{"mid": m, "name": n} for m, n in zip(self.mids, self.names)]

    @classmethod
    def from_records(cls, records):
        return cls([r["mid"] for r in records], [r["name"] for r in records])


@dataclass(frozen=True)
class Clip:
    id: str
    folder: str
    labels: tuple


@dataclass(frozen=True)
class RoomImpulse:
    fname: str
    distance: int
    azimuth: int
    elevation: int


def _load_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} json not found") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: malformed {what} json ({error})") from None


def load_class_table(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise DataError(f"{path}: class label csv not found") from None
    if not rows or not {"mid", "display_name"} <= set(rows[0]):
        raise DataError(f"{path}: expected a csv with header 'index,mid,display_name' and one row per class")
    mids = [row["mid"] for row in rows]
    duplicates = sorted(mid for mid, count in Counter(mids).items() if count > 1)
    if duplicates:
        raise DataError(f"{path}: duplicate class ids {duplicates[:5]}")
    return ClassTable(mids, [row["display_name"] for row in rows])


def load_clips(path, classes, audio_root, check_files=True):
    """Clip list of an AudioSet-format json; every label must be in `classes`."""
    entries = _load_json(path, "clip list")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty json list of {{'id', 'folder', 'label'}} entries")
    known = set(classes.mids)
    clips = []
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or not {"id", "folder", "label"} <= set(entry):
            raise DataError(f"{where}: expected keys 'id', 'folder', 'label', got {entry!r:.200}")
        labels = entry["label"]
        if isinstance(labels, str):  # tolerate the "mid1,mid2" string form
            labels = [m for m in labels.split(",") if m]
        unknown = [m for m in labels if m not in known]
        if unknown:
            raise DataError(f"{where} (id {entry['id']}): label {unknown[0]!r} is not in the class csv")
        clips.append(Clip(str(entry["id"]), str(entry["folder"]), tuple(labels)))
    if check_files:
        _check_audio_exists(path, clips, audio_root)
    return clips


def _check_audio_exists(path, clips, audio_root):
    folders = {}
    for i, clip in enumerate(clips):
        container = os.path.join(audio_root, clip.folder)
        if container not in folders:
            folders[container] = os.path.isfile(container)  # an HDF5 pack
        if folders[container]:
            continue
        audio = os.path.join(container, clip.id + ".wav")
        if not os.path.isfile(audio):
            raise DataError(f"{path}: entry {i} (id {clip.id}): audio file {audio} not found")


def load_room_impulses(path, reverb_root, reverb_type, check_files=True):
    """Reverb json entries with their spatial targets computed once."""
    document = _load_json(path, "reverb")
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected {{'data': [{{'fname', 'sensor_position', 'source_position'}}, ...]}}")
    impulses = []
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or not {"fname", "sensor_position", "source_position"} <= set(entry):
            raise DataError(f"{where}: expected keys 'fname', 'sensor_position', 'source_position'")
        sensor = parse_position(entry["sensor_position"], f"{where} sensor_position")
        source = parse_position(entry["source_position"], f"{where} source_position")
        if np.allclose(sensor, source):
            raise DataError(f"{where}: source and sensor are at the same position, direction undefined")
        targets = spatial_targets(sensor, source)
        impulses.append(RoomImpulse(entry["fname"], targets["distance"], targets["azimuth"], targets["elevation"]))
        if check_files:
            rir = os.path.join(reverb_root, reverb_type, entry["fname"])
            if not os.path.isfile(rir):
                raise DataError(f"{where}: impulse response {rir} not found")
    return impulses


def load_weights(path, num_clips):
    try:
        weights = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=1)
    except FileNotFoundError:
        raise DataError(f"{path}: sample weight csv not found") from None
    except ValueError as error:
        raise DataError(f"{path}: expected one number per line ({error})") from None
    if weights.shape != (num_clips,):
        raise DataError(f"{path}: {weights.size} weights for {num_clips} training clips; expected one per clip")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise DataError(f"{path}: weights must be finite, non-negative and not all zero")
    return weights
