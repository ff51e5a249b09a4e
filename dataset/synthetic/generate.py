"""Write the embedded synthetic binaural dataset in the upstream Spatial-AST formats.

    python -m dataset.synthetic.generate --out DIR [--seed 0] [--n_train 2000]
        [--n_eval 400] [--train_rooms 20] [--eval_rooms 5] [--positions_per_room 40]
        [--ambisonic_order {0,1,2}] [--workers N] [--force]

Layout under DIR (audio root DIR/audio, reverb root DIR):
    audio/{train,eval}/<id>.wav            10 s, 32 kHz, mono, 16-bit PCM
    train.json, eval.json                  [{"id", "folder", "label": [mid, ...]}, ...]
    class_labels_indices.csv               index,mid,display_name
    train_weight.csv                       one sampling weight per training clip
    binaural/<room>/<i>.npy                float32 [2, T] (row 0 left ear, row 1 right ear)
    mono/<room>/<i>.npy                    float32 [1, T]
    ambisonics/<room>/<i>.npy              with --ambisonic_order N: float32 [(N + 1)^2, T], ACN/SN3D
                                           (docs/ambisonics.md)
    {train,eval}_reverberation.json        {"data": [{"fname", "sensor_position", ...}]}
    meta.json                              settings, counts, "complete"

Every clip and every room position draws from its own random stream keyed by
(seed, kind, split, index), so the output is identical for any --workers. Ambisonic RIRs
draw last from their position's stream: with or without --ambisonic_order, the same seed
gives the same clips, rooms, positions and binaural and mono files, bit for bit.
"""
import argparse
import csv
import json
import multiprocessing
import os
import shutil
import sys
import time

import numpy as np
import soundfile as sf
from tqdm import tqdm

from . import head, rooms, sources

# 2: no NaN in the late tail of short-RT60 rooms (1 wrote some); 3: per-ear pinna shadow;
# 4: free field and dry rooms (RT60 0-1 s), sources from 0.3 m, a random KEMAR-fitted head per
#    position, near-field spreading, azimuths spread evenly in every room; 5: a sharp, KEMAR-like
#    pinna notch (20 dB) for elevation, where 4 had a 1 dB ripple (mono and ambisonic files unchanged)
FORMAT_VERSION = 5
SPLITS = ("train", "eval")
_SPLIT_CODE = {"train": 0, "eval": 1}
RIR_KINDS = ("binaural", "mono", "ambisonics")  # the order rooms.room_impulse_responses returns them in
_CLIP_STREAM, _ROOM_STREAM, _POSITION_STREAM, _AZIMUTH_STREAM, _CONDITION_STREAM = 0, 1, 2, 3, 4
_OWNED_DIRS = ("audio", "binaural", "mono", "ambisonics")
_OWNED_FILES = ("train.json", "eval.json", "class_labels_indices.csv", "train_weight.csv",
                "train_reverberation.json", "eval_reverberation.json", "meta.json")


# ---------------------------------------------------------------- command line
def _int_at_least(minimum, what):
    """argparse type: an integer >= minimum, with an error that says `what` was expected."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_seed = _int_at_least(0, "a non-negative integer seed")


def _ambisonic_order(text):
    what = "an ambisonic order: 0 (none), 1 or 2"
    value = _int_at_least(0, what)(text)
    if value > 2:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m dataset.synthetic.generate",
        description="Generate the embedded synthetic binaural dataset (upstream Spatial-AST formats).")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("--seed", type=_seed, default=0)
    parser.add_argument("--n_train", type=_positive_int, default=2000, help="training clips")
    parser.add_argument("--n_eval", type=_positive_int, default=400, help="evaluation clips")
    parser.add_argument("--train_rooms", type=_positive_int, default=20)
    parser.add_argument("--eval_rooms", type=_positive_int, default=5)
    parser.add_argument("--positions_per_room", type=_positive_int, default=40)
    parser.add_argument("--ambisonic_order", type=_ambisonic_order, default=0,
                        help="also write ambisonics/<room>/<i>.npy of this order (1: 4 channels, 2: 9; ACN/SN3D) "
                             "from the same image sources; 0 (default): none. Costs several times the "
                             "generation time and disk; the other files are the same either way")
    parser.add_argument("--workers", type=_positive_int, default=_available_cores(),
                        help="worker processes (default: all cores); does not change the output")
    parser.add_argument("--force", action="store_true", help="regenerate even if DIR is already complete")
    return parser.parse_args(argv)


def settings_of(args):
    """Everything that determines the output (not --workers)."""
    settings = {"format_version": FORMAT_VERSION, "seed": args.seed, "n_train": args.n_train, "n_eval": args.n_eval,
                "train_rooms": args.train_rooms, "eval_rooms": args.eval_rooms,
                "positions_per_room": args.positions_per_room, "sample_rate": sources.SAMPLE_RATE,
                "clip_seconds": sources.CLIP_SECONDS, "num_classes": len(sources.CLASSES)}
    if args.ambisonic_order:  # recorded only when asked: a binaural dataset's settings do not change
        settings["ambisonic_order"] = args.ambisonic_order
    return settings


def rir_kinds(settings):
    """The impulse-response folders a dataset with these settings holds."""
    return RIR_KINDS if settings.get("ambisonic_order") else RIR_KINDS[:2]


# ---------------------------------------------------------------- names
def clip_id(split, index):
    return f"synthetic_{split}_{index:06d}"


def room_name(split, index):
    return f"{split}_room{index:02d}"


def _position_text(xyz):
    return ",".join(f"{v:.3f}" for v in xyz)


# ---------------------------------------------------------------- work items
def make_clip_file(out, seed, split, index):
    """Render one clip to audio/<split>/<id>.wav and return its json entry."""
    rng = np.random.default_rng([seed, _CLIP_STREAM, _SPLIT_CODE[split], index])
    audio, labels = sources.make_clip(rng)
    name = clip_id(split, index)
    sf.write(os.path.join(out, "audio", split, name + ".wav"), audio, sources.SAMPLE_RATE, subtype="PCM_16")
    return {"id": name, "folder": split, "label": [sources.CLASSES[c].mid for c in labels]}


def room_of(seed, split, room_index):
    """The split's room_index-th condition: the rooms of a split spread evenly from free field
    to reverberant (`rooms.condition_quantile`). The sequence starts among the anechoic
    conditions, so even 5 held-out rooms hold one, beside four rooms from dry to reverberant."""
    start = np.random.default_rng([seed, _CONDITION_STREAM, _SPLIT_CODE[split]]).uniform(0, rooms.FREE_FIELD_SHARE / 2)
    rng = np.random.default_rng([seed, _ROOM_STREAM, _SPLIT_CODE[split], room_index])
    return rooms.sample_room(rng, rooms.condition_quantile(start, room_index))


def source_azimuth(seed, split, room_index, position_index):
    """Azimuth (radians) of a room's position_index-th source: a golden-ratio sequence from a
    random start, so that every room covers the circle evenly. Independent uniform draws
    leave lumps of +-30 % in the training histogram of 800 positions, which an under-trained
    direction head learns as its prior (the README's azimuth collapse)."""
    start = np.random.default_rng([seed, _AZIMUTH_STREAM, _SPLIT_CODE[split], room_index]).uniform()
    return 2 * np.pi * rooms.condition_quantile(start, position_index)


def make_position_files(out, seed, split, room_index, position_index, ambisonic_order=0):
    """Render one listener/source pair of a room, heard by a random head, to binaural/ and
    mono/ (and with `ambisonic_order` to ambisonics/); return its json entry."""
    room = room_of(seed, split, room_index)
    rng = np.random.default_rng([seed, _POSITION_STREAM, _SPLIT_CODE[split], room_index, position_index])
    listener, source = rooms.sample_positions(rng, room, source_azimuth(seed, split, room_index, position_index))
    listener_head = head.sample_head(rng)
    rirs = rooms.room_impulse_responses(room, listener, source, rng, listener_head=listener_head,
                                        ambisonic_order=ambisonic_order)
    name = room_name(split, room_index)
    fname = f"{name}/{position_index}.npy"
    for kind, rir in zip(RIR_KINDS, rirs):  # the ambisonic one only when asked for
        np.save(os.path.join(out, kind, fname), rir)
    return {"fname": fname, "sensor_position": _position_text(listener), "source_position": _position_text(source),
            "room": name, "condition": room.kind, "rt60": round(room.rt60, 4), "room_size": _position_text(room.size),
            "head_radius": round(listener_head.radius, 4)}


def _run(task):
    kind, out, seed, split, *index = task
    if kind == "clip":
        return task, make_clip_file(out, seed, split, *index)
    return task, make_position_files(out, seed, split, *index)


def plan(out, settings):
    """All work items; room positions first since they are the larger files."""
    seed, tasks = settings["seed"], []
    for split in SPLITS:
        for r in range(settings[f"{split}_rooms"]):
            tasks += [("position", out, seed, split, r, p, settings.get("ambisonic_order", 0))
                      for p in range(settings["positions_per_room"])]
    for split in SPLITS:
        tasks += [("clip", out, seed, split, i) for i in range(settings[f"n_{split}"])]
    return tasks


def run_tasks(tasks, workers):
    """Run work items (in `workers` processes) with a progress bar; results in task order."""
    results = {}
    # the pool is forked before tqdm can start its monitor thread
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)  # fork: no re-imports
    pool = context.Pool(workers) if workers > 1 else None
    try:
        stream = pool.imap_unordered(_run, tasks, chunksize=4) if pool else map(_run, tasks)
        for task, result in tqdm(stream, total=len(tasks), desc="generating", unit="item", file=sys.stderr):
            results[task] = result
    finally:
        if pool:
            pool.terminate()
            pool.join()
    return [results[task] for task in tasks]


# ---------------------------------------------------------------- index files
def upstream_weights(entries, mids):
    """Per-clip sampling weights as upstream makes them: for each clip, the sum over its
    labels of 1000 / (number of training clips with that label + 0.01)."""
    column = {mid: i for i, mid in enumerate(mids)}
    counts = np.zeros(len(mids))
    for entry in entries:
        for mid in entry["label"]:
            counts[column[mid]] += 1
    label_weight = 1000.0 / (counts + 0.01)
    return np.array([sum(label_weight[column[mid]] for mid in entry["label"]) for entry in entries])


def _write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


def write_indexes(out, clip_entries, position_entries):
    for split in SPLITS:
        _write_json(os.path.join(out, f"{split}.json"), clip_entries[split])
        _write_json(os.path.join(out, f"{split}_reverberation.json"), {"data": position_entries[split]})
    with open(os.path.join(out, "class_labels_indices.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows(sources.class_table())
    mids = [c.mid for c in sources.CLASSES]
    np.savetxt(os.path.join(out, "train_weight.csv"), upstream_weights(clip_entries["train"], mids), delimiter=",")


# ---------------------------------------------------------------- directory state
def _expected_files(out, settings):
    files = [os.path.join(out, name) for name in _OWNED_FILES]
    for split in SPLITS:
        files += [os.path.join(out, "audio", split, clip_id(split, i) + ".wav") for i in range(settings[f"n_{split}"])]
        for r in range(settings[f"{split}_rooms"]):
            for p in range(settings["positions_per_room"]):
                files += [os.path.join(out, kind, room_name(split, r), f"{p}.npy") for kind in rir_kinds(settings)]
    return files


def _read_meta(out):
    try:
        with open(os.path.join(out, "meta.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_complete(out, settings):
    """True when `out` holds a finished dataset generated with exactly these settings."""
    meta = _read_meta(out)
    return (meta is not None and meta.get("complete") is True and meta.get("settings") == settings
            and all(os.path.isfile(path) for path in _expected_files(out, settings)))


def prepare_directory(out, settings):
    """Remove a previous (ours) generation and create the folders; refuse foreign content."""
    owned = [os.path.join(out, d) for d in _OWNED_DIRS] + [os.path.join(out, f) for f in _OWNED_FILES]
    if _read_meta(out) is None and any(os.path.exists(path) for path in owned):
        raise SystemExit(f"error: {out} already holds dataset files that were not written by this generator "
                         "(no meta.json); choose an empty or new --out directory")
    for path in owned:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    for split in SPLITS:
        os.makedirs(os.path.join(out, "audio", split), exist_ok=True)
        for r in range(settings[f"{split}_rooms"]):
            for kind in rir_kinds(settings):
                os.makedirs(os.path.join(out, kind, room_name(split, r)), exist_ok=True)


def _write_meta(out, settings, complete, seconds=None):
    meta = {"generator": "dataset.synthetic.generate", "complete": complete, "settings": settings,
            "audio_root": "audio", "reverb_root": ".", "classes": [c.mid for c in sources.CLASSES]}
    if seconds is not None:
        meta["generation_seconds"] = round(seconds, 1)
    _write_json(os.path.join(out, "meta.json"), meta)


def _disk_megabytes(out):
    total = 0
    for folder, _, names in os.walk(out):
        total += sum(os.path.getsize(os.path.join(folder, n)) for n in names)
    return total / 1e6


# ---------------------------------------------------------------- main
def generate(out, settings, workers):
    """Generate the whole dataset into `out`; returns the elapsed seconds."""
    started = time.perf_counter()
    prepare_directory(out, settings)
    _write_meta(out, settings, complete=False)
    tasks = plan(out, settings)
    results = run_tasks(tasks, workers)
    clip_entries = {split: [] for split in SPLITS}
    position_entries = {split: [] for split in SPLITS}
    for task, result in zip(tasks, results):
        (clip_entries if task[0] == "clip" else position_entries)[task[3]].append(result)
    write_indexes(out, clip_entries, position_entries)
    seconds = time.perf_counter() - started
    _write_meta(out, settings, complete=True, seconds=seconds)
    return seconds


def main(argv=None):
    args = parse_args(argv)
    out = os.path.abspath(args.out)
    settings = settings_of(args)
    if not args.force and is_complete(out, settings):
        print(f"{out} already holds a complete dataset generated with these settings (seed {args.seed}); "
              "nothing to do (use --force to regenerate)")
        return 0
    if os.path.exists(out) and not os.path.isdir(out):
        raise SystemExit(f"error: --out {out} exists and is not a directory")
    os.makedirs(out, exist_ok=True)
    seconds = generate(out, settings, args.workers)
    positions = (args.train_rooms + args.eval_rooms) * args.positions_per_room
    print(f"wrote {args.n_train} train + {args.n_eval} eval clips, {len(sources.CLASSES)} classes, "
          f"{positions} RIR positions in {args.train_rooms} train + {args.eval_rooms} eval rooms to {out} "
          f"in {seconds:.1f} s ({_disk_megabytes(out):.0f} MB, {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
