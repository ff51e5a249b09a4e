"""Data-loading figures at AudioSet size (run by hand; the machine's load matters).

    python scripts/benchmark_data.py --clips 500000 [--rirs 20000] [--num_workers 2] [--items 1000]
                                     [--gpu_clips_per_s 500] [--reference /tmp/upstream] [--workdir /tmp]

Builds, in a temporary folder, an AudioSet-style training list of N clips (the paper's
configuration: 32 kHz 16-bit wav, 355 classes, binaural RIRs): a few real 10 s wavs
behind N symlinks, the same clips as one HDF5 pack (hard links inside the pack), and a
reverb json of --rirs entries. Then, in a fresh process (so that the figures are the
data's, not the builder's), it prints:

- start-up: the training dataset built and checked (every clip and RIR looked up), the
  weight csv read and the sampler made, in seconds;
- resident memory of the main process after gc.collect(), and of each DataLoader worker
  after 100 and after --items items (the second figure staying at the first is "flat");
- items/s of one process for wav files and for the HDF5 pack, with mixup 0.5, roll + gain
  and -14 dBFS normalisation, and how many workers keep a GPU at --gpu_clips_per_s fed;
- with --reference PATH (an unpacked upstream Spatial-AST checkout, never shipped here),
  its dataset's items/s on the same files, timed in alternating rounds beside this one's.
"""
import argparse
import csv
import gc
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SOURCE_CLIPS = 32  # real wav files behind the symlinks: enough that reads are not all one file
SOURCE_RIRS = 16


def rss_mb(pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------- building the synthetic data

def build(folder, num_clips, num_rirs, seed=0):
    import h5py
    import soundfile as sf
    rng = np.random.default_rng(seed)
    start = time.time()
    num_classes = 355
    with open(os.path.join(folder, "classes.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "mid", "display_name"])
        writer.writerows((i, f"/m/{i:05d}", f"class {i}") for i in range(num_classes))
    sources = os.path.join(folder, "sources")
    clips_dir = os.path.join(folder, "audio", "unbalanced")
    os.makedirs(sources)
    os.makedirs(clips_dir)
    for k in range(SOURCE_CLIPS):
        signal = rng.standard_normal(320000) * 10 ** rng.uniform(-2.5, -0.7)
        sf.write(os.path.join(sources, f"{k}.wav"), np.clip(signal, -1, 1), 32000, subtype="PCM_16")
    ids = [f"Y{i:010d}" for i in range(num_clips)]
    for i, clip_id in enumerate(ids):
        os.symlink(os.path.join(sources, f"{i % SOURCE_CLIPS}.wav"), os.path.join(clips_dir, clip_id + ".wav"))
    label_counts = rng.integers(1, 4, num_clips)
    labels = rng.integers(0, num_classes, label_counts.sum())
    offsets = np.concatenate([[0], np.cumsum(label_counts)])
    entries = [{"id": clip_id, "folder": "unbalanced",
                "label": [f"/m/{c:05d}" for c in labels[offsets[i]:offsets[i + 1]]]} for i, clip_id in enumerate(ids)]
    with open(os.path.join(folder, "train.json"), "w") as f:
        json.dump(entries, f)
    del entries
    np.savetxt(os.path.join(folder, "weights.csv"), rng.gamma(0.5, size=num_clips), fmt="%.6g")
    # the same clips as one HDF5 pack, in place of the folder under another root
    os.makedirs(os.path.join(folder, "packed"))
    with h5py.File(os.path.join(folder, "packed", "unbalanced"), "w", libver="latest") as pack:
        for k in range(SOURCE_CLIPS):
            signal, _ = sf.read(os.path.join(sources, f"{k}.wav"), dtype="int16")
            pack.create_dataset(f"source{k}", data=signal)
        for i, clip_id in enumerate(ids):  # hard links: one copy of the samples, N names
            h5py.h5o.link(pack[f"source{i % SOURCE_CLIPS}"].id, pack.id, (clip_id + ".wav").encode())
    rir_sources = os.path.join(folder, "rir_sources")
    os.makedirs(rir_sources)
    for k in range(SOURCE_RIRS):
        rir = np.zeros((2, 64000), dtype=np.float32)
        rir[:, rng.integers(0, 400, 2)] = 1.0
        rir += (rng.standard_normal((2, 64000)) * np.exp(-np.arange(64000) / 8000) * 0.01).astype(np.float32)
        np.save(os.path.join(rir_sources, f"{k}.npy"), rir)
    rirs = []
    for r in range(num_rirs):
        room = f"room{r // 1000:03d}"
        os.makedirs(os.path.join(folder, "binaural", room), exist_ok=True)
        os.symlink(os.path.join(rir_sources, f"{r % SOURCE_RIRS}.npy"), os.path.join(folder, "binaural", room, f"{r}.npy"))
        source = rng.uniform(-5, 5, 3)
        rirs.append({"fname": f"{room}/{r}.npy", "sensor_position": "0,1.5,0",
                     "source_position": ",".join(f"{v:.3f}" for v in source)})
    with open(os.path.join(folder, "reverb.json"), "w") as f:
        json.dump({"data": rirs}, f)
    return time.time() - start


# ---------------------------------------------------------------- measuring, in a fresh process

def make_dataset(folder, audio_root, check_files=True):
    from dataset.metadata import load_class_table
    from dataset.spatial_dataset import SpatialSoundDataset
    return SpatialSoundDataset(os.path.join(folder, "train.json"), audio_root,
                               load_class_table(os.path.join(folder, "classes.csv")),
                               os.path.join(folder, "reverb.json"), folder, "binaural", train=True,
                               mixup=0.5, roll_mag_aug=True, normalize=True, check_files=check_files)


def items_per_second(get_item, indices):
    start = time.perf_counter()
    for i in indices:
        get_item(int(i))
    return len(indices) / (time.perf_counter() - start)


def reference_dataset(folder, reference):
    """Upstream's dataset class from an unpacked checkout, in the same configuration."""
    sys.path.insert(0, reference)
    from data.dataset import MultichannelDataset  # noqa: E402 (upstream's module, not this project's)
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its settings
        return MultichannelDataset(
            os.path.join(folder, "train.json"), {"mode": "train", "mixup": 0.5, "dataset": "audioset"},
            os.path.join(folder, "audio"), os.path.join(folder, "reverb.json"), "binaural", folder,
            label_csv=os.path.join(folder, "classes.csv"), roll_mag_aug=True, normalize=True)


def worker_memory(dataset, weights, num_workers, items):
    """(RSS of each worker after ~100 and after `items` items, items/s of the loader)."""
    import torch
    from dataset.samplers import WeightedDistributedSampler
    sampler = WeightedDistributedSampler(weights, items + 200, 1, 0, replacement=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, sampler=sampler, num_workers=num_workers)
    iterator = iter(loader)
    pids = [w.pid for w in iterator._workers]
    seen, early, start, at = 0, None, None, 0
    first = min(100, items // 2)  # the early snapshot, and where the rate's clock starts
    while seen < items:
        seen += len(next(iterator)[0])
        if early is None and seen >= first:
            early, start, at = [rss_mb(p) for p in pids], time.perf_counter(), seen
    late = [rss_mb(p) for p in pids]
    rate = (seen - at) / (time.perf_counter() - start)
    del iterator
    return early, late, rate


def measure(folder, args):
    import torch
    from dataset.metadata import load_clip_weights
    from dataset.samplers import WeightedDistributedSampler
    torch.set_num_threads(1)
    gc.collect()
    base = rss_mb()
    start = time.perf_counter()
    train = make_dataset(folder, os.path.join(folder, "audio"))
    weights = load_clip_weights(os.path.join(folder, "weights.csv"), train.clips)
    WeightedDistributedSampler(weights, min(200000, len(train) // 10), 1, 0, replacement=False)  # the 2M recipe
    startup = time.perf_counter() - start
    gc.collect()
    main_rss = rss_mb()
    print(f"clips {len(train):,}  RIRs {len(train.rirs):,}")
    print(f"start-up (list, all {len(train):,} clips and {len(train.rirs):,} RIRs checked, weights, sampler): "
          f"{startup:.2f} s")
    print(f"main process RSS after gc.collect(): {main_rss:.0f} MB ({main_rss - base:+.0f} MB for the data)")

    packed = make_dataset(folder, os.path.join(folder, "packed"))
    rng = np.random.default_rng(1)
    n = args.rate_items
    for dataset in (train, packed):  # warm the page cache and the HDF5 handle
        items_per_second(dataset.__getitem__, rng.integers(len(train), size=20))
    wav_rates, h5_rates, reference_rates = [], [], []
    reference = reference_dataset(folder, args.reference) if args.reference else None
    if reference is not None:
        items_per_second(reference.__getitem__, rng.integers(len(train), size=20))
    for _ in range(args.rounds):  # alternating rounds: a busy moment hits all alike
        indices = rng.integers(len(train), size=n)
        wav_rates.append(items_per_second(train.__getitem__, indices))
        h5_rates.append(items_per_second(packed.__getitem__, indices))
        if reference is not None:
            reference_rates.append(items_per_second(reference.__getitem__, indices))
    wav, h5 = statistics.median(wav_rates), statistics.median(h5_rates)
    print(f"one process, mixup 0.5 + roll/gain + -14 dBFS + binaural RIR, median of {args.rounds} rounds "
          f"of {n} items:")
    print(f"  wav files:   {wav:7.1f} items/s")
    print(f"  HDF5 pack:   {h5:7.1f} items/s")
    if reference is not None:
        ref = statistics.median(reference_rates)
        print(f"  upstream's MultichannelDataset, wav files: {ref:7.1f} items/s "
              f"(this project: {wav / ref:.2f}x with wav, {h5 / ref:.2f}x with HDF5)")
    for name, rate in (("wav", wav), ("HDF5", h5)):
        print(f"workers to feed {args.gpu_clips_per_s:g} clips/s with {name}: "
              f"{math.ceil(args.gpu_clips_per_s / rate)}")
    del packed, reference
    gc.collect()
    if args.num_workers:
        early, late, rate = worker_memory(train, weights, args.num_workers, args.items)
        print(f"{args.num_workers} DataLoader workers (wav): {rate:.1f} items/s together")
        for i, (a, b) in enumerate(zip(early, late)):
            print(f"  worker {i} RSS: {a:.0f} MB after 100 items, {b:.0f} MB after {args.items} ({b - a:+.0f} MB)")
        print(f"main process RSS with the workers running: {rss_mb():.0f} MB")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=500000)
    p.add_argument("--rirs", type=int, default=20000)
    p.add_argument("--num_workers", type=int, default=2)
    p.add_argument("--items", type=int, default=1000, help="items each worker-memory figure is taken after")
    p.add_argument("--rate_items", type=int, default=200, help="items per timing round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gpu_clips_per_s", type=float, default=500.0,
                   help="clips/s one GPU trains at (to size --num_workers)")
    p.add_argument("--reference", help="an unpacked upstream Spatial-AST checkout to time beside this one")
    p.add_argument("--workdir", default=None, help="where the temporary folder goes (default: the system's)")
    p.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure an already built folder
    args = p.parse_args()
    if args.measure:
        return measure(args.measure, args)
    folder = tempfile.mkdtemp(prefix="benchmark_data_", dir=args.workdir)
    try:
        print(f"building {args.clips:,} clips and {args.rirs:,} RIRs in {folder} ...", flush=True)
        print(f"built in {build(folder, args.clips, args.rirs):.0f} s (not part of any figure)", flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", folder, *sys.argv[1:]], check=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
