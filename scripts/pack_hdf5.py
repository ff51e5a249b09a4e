"""Pack a clip list's audio into one HDF5 file (PANNs-style int16 at 32 kHz).

    python scripts/pack_hdf5.py CLIP_JSON AUDIO_ROOT OUT.h5 [--folder NAME]

Each clip `<AUDIO_ROOT>/<folder>/<id>.wav` (any sample rate; first channel) becomes the
int16 dataset `<id>.wav` of OUT.h5. To read the pack, put it where the folder was:
with `--audio_path_root R`, a clip of folder `F` is read from the pack `R/F` when that
path is a file (see README, 'Data'). Opening one file instead of millions of small ones
helps on network file systems.

Resumable: clips already in OUT.h5 are skipped, so an interrupted run (Ctrl-C closes the
file cleanly) continues where it stopped. Clips that cannot be read are skipped and
listed, one id per line, in OUT.h5.unreadable.txt.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset.audio import DataError, read_audio_file  # noqa: E402

FLUSH_EVERY = 1000  # clips; bounds what a crash (not Ctrl-C) can lose


def to_int16(signal):
    """float [-1, 1] -> int16 as PANNs stores it (x * 32767, clipped)."""
    return (np.clip(signal, -1.0, 1.0) * 32767.0).astype(np.int16)


def read_clip_folders(clip_json):
    """[(id, folder)] of a clip list, or one line naming what is wrong with it."""
    try:
        with open(clip_json) as f:
            entries = json.load(f)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {clip_json}: cannot read the clip list ({error})") from None
    if not isinstance(entries, list) or not entries:
        raise SystemExit(f"error: {clip_json}: expected a non-empty json list of {{'id', 'folder', 'label'}} entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"id", "folder"} <= set(entry):
            raise SystemExit(f"error: {clip_json}: entry {i}: expected keys 'id' and 'folder', got {entry!r:.200}")
    return [(str(e["id"]), str(e["folder"])) for e in entries]


def clips_to_pack(clip_json, folder):
    clips = read_clip_folders(clip_json)
    folders = sorted({f for _, f in clips})
    if folder is None and len(folders) > 1:
        raise SystemExit(f"error: {clip_json} lists clips of {len(folders)} folders ({', '.join(folders[:5])}); "
                         f"a pack replaces one folder: pass --folder NAME")
    if folder is not None and folder not in folders:
        raise SystemExit(f"error: --folder {folder}: {clip_json} lists no clip in it; its folders are "
                         f"{', '.join(folders[:5])}" + (", ..." if len(folders) > 5 else ""))
    folder = folder or folders[0]
    return folder, [clip_id for clip_id, f in clips if f == folder]


def pack(clip_json, audio_root, out_path, folder=None):
    """Returns (clips written now, clips already there, unreadable ids)."""
    folder, ids = clips_to_pack(clip_json, folder)
    unreadable, written = [], 0
    with h5py.File(out_path, "a") as out:
        done = set(out.keys())
        todo = [clip_id for clip_id in ids if clip_id + ".wav" not in done]
        try:
            for clip_id in tqdm(todo, desc=f"packing {folder}", unit="clip", initial=len(ids) - len(todo),
                                total=len(ids)):
                try:
                    signal, _ = read_audio_file(os.path.join(audio_root, folder, clip_id + ".wav"))
                except DataError:
                    unreadable.append(clip_id)
                    continue
                out.create_dataset(clip_id + ".wav", data=to_int16(signal))
                written += 1
                if written % FLUSH_EVERY == 0:
                    out.flush()
        finally:  # also on Ctrl-C: the list of unreadable clips so far, and a cleanly closed file
            listing = out_path + ".unreadable.txt"
            if unreadable:
                with open(listing, "w") as f:
                    f.writelines(clip_id + "\n" for clip_id in unreadable)
            elif os.path.exists(listing):  # an earlier run's: those clips were retried and read
                os.remove(listing)
    return written, len(ids) - len(todo), unreadable


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip_json")
    p.add_argument("audio_root")
    p.add_argument("out", help="the HDF5 file to write (appended to if it exists)")
    p.add_argument("--folder", help="the json folder to pack (needed when the json lists several)")
    args = p.parse_args(argv)
    written, kept, unreadable = pack(args.clip_json, args.audio_root, args.out, args.folder)
    print(f"{args.out}: {written} clips packed, {kept} already there, {len(unreadable)} unreadable"
          + (f" (listed in {args.out}.unreadable.txt)" if unreadable else ""))


if __name__ == "__main__":
    main()
