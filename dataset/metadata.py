"""Upstream metadata formats, read and checked once at start-up, held in numpy columns.

- class csv: `index,mid,display_name`, row order is the class index;
- clip json: a list of {"id", "folder", "label": [mid, ...]};
- reverb json: {"data": [{"fname", "sensor_position", "source_position", ...}]};
- weight csv: one float per line, one line per training clip.

AudioSet-2M has 2M clips. One Python object per clip would cost ~700 bytes each, and
every DataLoader worker would slowly copy them (reading an object writes its reference
count, which un-shares the page). So the tables below are a few flat numpy arrays,
whatever the number of clips. Every check is cheap (no audio is decoded; a folder is
listed once rather than stat-ing each file) and raises DataError naming the file and entry.
"""
import csv
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass

import h5py
import numpy as np

from dataset.audio import DataError
from dataset.spatial import parse_position, spatial_targets

log = logging.getLogger("spatial_ast")


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


class StringColumn:
    """N strings as one utf-8 byte buffer plus offsets: two arrays, however large N is."""

    def __init__(self, strings=None, *, data=None, offsets=None):
        if strings is not None:
            encoded = [s.encode() for s in strings]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.data, self.offsets = data, offsets

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, i):
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def take(self, rows):
        """The strings at `rows` (an index array), as a new column."""
        data, offsets = take_ragged(self.data, self.offsets, rows)
        return StringColumn(data=data, offsets=offsets)


def take_ragged(values, offsets, rows):
    """Rows of a ragged (CSR) array: returns the new (values, offsets), without a Python loop."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, lengths = offsets[rows], offsets[rows + 1] - offsets[rows]
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    gather = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1])
    return values[gather], new_offsets


@dataclass(frozen=True)
class ClipView:
    """One row of a ClipTable, made on demand (never stored)."""
    id: str
    folder: str
    labels: tuple


class ClipTable:
    """The clip list as columns: ids, folder codes and labels as CSR class indices.

    `source_index[i]` is the row of clip i in the json (rows differ once missing clips
    are dropped); `num_listed` is the json's length, which the weight csv follows, and
    `missing` the ids of the clips dropped for lack of audio.
    """

    def __init__(self, ids, folders, folder_codes, label_offsets, label_indices, classes, source_index, num_listed,
                 missing=None):
        self.ids, self.folders, self.folder_codes = ids, folders, folder_codes
        self.label_offsets, self.label_indices = label_offsets, label_indices
        self.classes, self.source_index, self.num_listed = classes, source_index, num_listed
        self.missing = missing if missing is not None else StringColumn([])

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return ClipView(self.ids[i], self.folder(i), tuple(self.classes.mids[c] for c in self.label_classes(i)))

    def folder(self, i):
        return self.folders[self.folder_codes[i]]

    def label_classes(self, i):
        """Class indices of clip i (a view, no copy)."""
        return self.label_indices[self.label_offsets[i]:self.label_offsets[i + 1]]

    def class_counts(self):
        """[num_classes] clips carrying each class: chance levels count, never a clips x classes matrix."""
        return np.bincount(self.label_indices, minlength=len(self.classes))

    def drop(self, rows):
        """This table without `rows`, which are recorded in `missing`."""
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        keep = np.flatnonzero(keep)
        labels, offsets = take_ragged(self.label_indices, self.label_offsets, keep)
        return ClipTable(self.ids.take(keep), self.folders, self.folder_codes[keep], offsets, labels,
                         self.classes, self.source_index[keep], self.num_listed, missing=self.ids.take(rows))


class RirTable:
    """The reverb json as columns: file names and [N, 3] (distance, azimuth, elevation) classes."""

    def __init__(self, fnames, targets):
        self.fnames, self.targets = fnames, targets

    def __len__(self):
        return len(self.fnames)

    def __getitem__(self, i):
        return RoomImpulse(self.fnames[i], *(int(v) for v in self.targets[i]))


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


def load_clips(path, classes, audio_root, check_files=True, missing_audio="error"):
    """Clip list of an AudioSet-format json as a ClipTable; every label must be in `classes`.

    With `check_files`, every clip's audio must exist: `missing_audio="error"` stops
    with one line, "skip" drops the missing clips (their ids are in the table's `missing`).
    """
    table = _parse_clips(path, classes)
    if not check_files:
        return table
    present = _audio_present(table, audio_root)
    if present.all():
        return table
    missing = np.flatnonzero(~present)
    first = int(missing[0])
    if missing_audio == "error":
        where = os.path.join(audio_root, table.folder(first), table.ids[first] + ".wav")
        raise DataError(f"{path}: {len(missing)} of {len(table)} clips have no audio file, the first is entry "
                        f"{first} (id {table.ids[first]}): {where} not found; pass --missing_audio skip "
                        f"to train on the clips that are present")
    if len(missing) == len(table):
        raise DataError(f"{path}: none of its {len(table)} clips has an audio file under {audio_root}")
    kept = table.drop(missing)
    log.warning("%s: skipping %d of %d clips whose audio is missing (--missing_audio skip)",
                path, len(missing), len(table))
    return kept


def _parse_clips(path, classes):
    entries = _load_json(path, "clip list")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected a non-empty json list of {{'id', 'folder', 'label'}} entries")
    class_of = classes.index()
    folder_code = {}
    ids, codes, label_counts, label_indices = [], np.empty(len(entries), dtype=np.int32), [], []
    for i, entry in enumerate(entries):
        try:
            clip_id, folder, labels = str(entry["id"]), str(entry["folder"]), entry["label"]
        except (TypeError, KeyError):
            raise DataError(f"{path}: entry {i}: expected keys 'id', 'folder', 'label', got {entry!r:.200}") from None
        if isinstance(labels, str):  # tolerate the "mid1,mid2" string form
            labels = [m for m in labels.split(",") if m]
        if not isinstance(labels, list) or not all(isinstance(m, str) for m in labels):
            raise DataError(f"{path}: entry {i} (id {clip_id}): expected 'label' to be a list of class ids "
                            f"(mids), got {labels!r:.200}")
        try:
            indices = sorted({class_of[m] for m in labels})  # a class listed twice counts once
        except KeyError:
            unknown = next(m for m in labels if m not in class_of)
            raise DataError(f"{path}: entry {i} (id {clip_id}): label {unknown!r} is not in the class csv") from None
        ids.append(clip_id)
        codes[i] = folder_code.setdefault(folder, len(folder_code))
        label_counts.append(len(indices))
        label_indices.extend(indices)
    del entries  # the json's Python objects go now; only the columns below stay
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(label_counts, out=offsets[1:])
    return ClipTable(StringColumn(ids), list(folder_code), codes, offsets,
                     np.asarray(label_indices, dtype=np.int16 if len(classes) < 2**15 else np.int32),
                     classes, np.arange(len(ids)), len(ids))


def _audio_present(table, audio_root):
    """[clips] bool: the clip's audio exists. Each folder, or HDF5 pack, is listed once."""
    present = np.ones(len(table), dtype=bool)
    for code, folder in enumerate(table.folders):
        container = os.path.join(audio_root, folder)
        if os.path.isfile(container):
            names = _pack_members(container)
        else:
            try:
                names = {entry.name for entry in os.scandir(container)}
            except (FileNotFoundError, NotADirectoryError):
                names = set()
        rows = np.flatnonzero(table.folder_codes == code)
        present[rows] = [table.ids[i] + ".wav" in names for i in rows]
    return present


def _pack_members(path):
    """The member names of an HDF5 pack: scripts/pack_hdf5.py leaves out the clips it could not read."""
    try:
        with h5py.File(path, "r") as pack:
            return set(pack.keys())
    except OSError as error:
        raise DataError(f"{path}: a file where a folder of clips was expected, and not a readable HDF5 pack "
                        f"({error})") from None


def load_room_impulses(path, reverb_root, reverb_type, check_files=True):
    """Reverb json as a RirTable, with the spatial targets computed once."""
    document = _load_json(path, "reverb")
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: expected {{'data': [{{'fname', 'sensor_position', 'source_position'}}, ...]}}")
    fnames, targets = [], np.empty((len(entries), 3), dtype=np.int16)
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict) or not {"fname", "sensor_position", "source_position"} <= set(entry):
            raise DataError(f"{where}: expected keys 'fname', 'sensor_position', 'source_position'")
        sensor = parse_position(entry["sensor_position"], f"{where} sensor_position")
        source = parse_position(entry["source_position"], f"{where} source_position")
        if np.allclose(sensor, source):
            raise DataError(f"{where}: source and sensor are at the same position, direction undefined")
        t = spatial_targets(sensor, source)
        targets[i] = t["distance"], t["azimuth"], t["elevation"]
        fnames.append(str(entry["fname"]))
    if check_files:
        _check_rirs_exist(path, fnames, os.path.join(reverb_root, reverb_type))
    return RirTable(StringColumn(fnames), targets)


def _check_rirs_exist(path, fnames, folder):
    listings = {}
    for i, fname in enumerate(fnames):
        directory, name = os.path.split(os.path.join(folder, fname))
        if directory not in listings:
            try:
                listings[directory] = set(os.listdir(directory))
            except (FileNotFoundError, NotADirectoryError):
                listings[directory] = set()
        if name not in listings[directory]:
            raise DataError(f"{path}: entry {i}: impulse response {os.path.join(directory, name)} not found")


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


def load_clip_weights(path, clips):
    """The weight csv (one line per json entry) aligned with `clips`, after any skipped clips."""
    weights = load_weights(path, clips.num_listed)[clips.source_index]
    if weights.sum() <= 0:
        raise DataError(f"{path}: every clip that has audio has weight 0; nothing can be sampled")
    return weights
