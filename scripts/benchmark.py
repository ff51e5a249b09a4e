"""Speed figures, measured side by side in one process (run by hand; the machine's load matters).

    python scripts/benchmark.py [--model build_AST_tiny] [--batch_size 8] [--repeats 5] [--device auto]
                                [--fusion_channels 1] [--patch_size 16] [--allocator]

Prints, for the chosen model and batch:
- six hot spots of a training step, each beside the straightforward formula it replaced
  (IPD from two atan2 phases, dense mel projections, the 2-D bicubic stretch to 1024 frames,
  the fusion block (conv, BatchNorm, GELU) in one memory layout throughout, either one, the
  patch embedding as a strided conv);
- the front end alone (room convolution, STFT, log-mel, IPD);
- one training step (forward + backward + AdamW) and one inference forward, in float32 and
  under bfloat16 autocast, as clips per second;
- a float32 training step on all tokens, and on a random quarter of them (a masked warm-up's encoder).
Medians over `--repeats` runs after one warm-up run.

With `--allocator`, instead: the float32 training step in fresh processes under glibc's default
malloc and under scripts/allocator.sh's settings (which the scripts export), taking turns, with
the page faults and kernel time per step that the difference comes from.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from main_finetune import patch_size_arg  # noqa: E402
from models import create_model, frontend  # noqa: E402
from models.spatial_ast import patch_shape  # noqa: E402
from util.dist import resolve_device  # noqa: E402


def median_seconds(fn, repeats, device):
    fn()  # warm-up: allocator, kernels, caches
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_fn(model, waveforms, reverbs, device, amp=None, masks=(0.25, 0.25)):
    """One training step; `masks` are (mask_t_prob, mask_f_prob), the paper's by default."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step():
        model.train()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            outputs = model(waveforms, reverbs, *masks)
        sum(o.float().mean() for o in outputs).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return train_step


def step_cost(train_step, repeats):
    """Seconds, minor page faults and kernel seconds per float32 training step, after two warm-ups."""
    train_step(), train_step()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(repeats):
        train_step()
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds / repeats, "faults": (after.ru_minflt - before.ru_minflt) / repeats,
            "kernel_seconds": (after.ru_stime - before.ru_stime) / repeats}


def compare_allocators(argv, rounds=3):
    """The training step under glibc's default malloc and under scripts/allocator.sh, each in fresh
    processes (glibc reads its settings at start-up), taking turns so that load drifts hit both."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "allocator.sh")
    clean = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    tuned = subprocess.run(["bash", "-c", f'source "{script}"; printf %s "$GLIBC_TUNABLES"'], env=clean,
                           check=True, capture_output=True, text=True).stdout
    settings = {"glibc default": clean, "scripts/allocator.sh": {**clean, "GLIBC_TUNABLES": tuned}}
    runs = {name: [] for name in settings}
    for _ in range(rounds):
        for name, env in settings.items():
            out = subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--step_cost"], env=env,
                                 check=True, capture_output=True, text=True).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    print(f"float32 training step, median of {rounds} processes each ({tuned}):")
    base = statistics.median(r["seconds"] for r in runs["glibc default"])
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        faults = statistics.median(r["faults"] for r in results)
        kernel = statistics.median(r["kernel_seconds"] for r in results)
        print(f"  {name:<22} {seconds * 1000:6.0f} ms/step ({base / seconds:.2f}x), {faults:8.0f} page faults "
              f"and {kernel * 1000:4.0f} ms in the kernel per step")


def hot_spots(model, waveforms, reverbs, repeats, device):
    """(name, straightforward seconds, this code's seconds) for six parts of a training step."""
    with torch.no_grad():
        spec = frontend.stft(frontend.fft_convolve(waveforms, reverbs), model.window)
        features = model.features(frontend.fft_convolve(waveforms, reverbs))
    mel, blocks = model.mel, model.mel_blocks
    maps = features[:, :, :spec.shape[2]].contiguous()  # feature maps of the STFT's frame count, as the stretch takes

    def ipd_from_phases():
        phase = torch.atan2(spec.imag, spec.real)
        ipd = phase[:, 1] - phase[:, 0]
        return torch.cos(ipd) @ mel, torch.sin(ipd) @ mel

    def fusion_and_backward(fuse):  # through the patch embedding, whose gradient layout the GELU's backward meets
        model.patch_embed(fuse(features)).sum().backward()

    fused = model.fuse(features).detach().requires_grad_()  # in the layout the model hands the patch embedding
    with torch.no_grad():
        pairs = [
            ("IPD cos/sin on the mel basis", ipd_from_phases, lambda: frontend.interaural_phase(spec, mel, blocks)),
            ("log-mel of both ears", lambda: frontend.log_mel(spec, mel), lambda: frontend.log_mel(spec, mel, blocks)),
            ("1001 -> 1024 frames: 2-D bicubic vs along time",
             lambda: torch.nn.functional.interpolate(maps, (1024, maps.shape[3]), mode="bicubic", align_corners=True),
             lambda: frontend.stretch_frames(maps, 1024)),
        ]
    pairs += [
        ("fusion block, forward + backward, vs standard layout", lambda: fusion_and_backward(model.conv_downsample),
         lambda: fusion_and_backward(model.fuse)),
        ("fusion block, forward + backward, vs channels_last",
         lambda: fusion_and_backward(lambda x: model.conv_downsample(x.contiguous(memory_format=torch.channels_last))),
         lambda: fusion_and_backward(model.fuse)),
        ("patch embedding, forward + backward", lambda: model.patch_embed.proj(fused).sum().backward(),
         lambda: model.patch_embed(fused).sum().backward()),
    ]
    rows = []
    for name, before, after in pairs:
        grad = torch.enable_grad() if "backward" in name else torch.no_grad()
        with grad:
            rows.append((name, median_seconds(before, repeats, device), median_seconds(after, repeats, device)))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--model", default="build_AST_tiny")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--fusion_channels", type=int, default=1, help="1 (the paper's model) up to 8 binaural; the demo fuses 7")
    p.add_argument("--patch_size", type=patch_size_arg, default=16,
                   help="16 (the paper's), 32 (the demo's) or TIMExFREQ, e.g. 8x128")
    p.add_argument("--allocator", action="store_true",
                   help="compare glibc's default malloc with scripts/allocator.sh on the training step")
    p.add_argument("--step_cost", action="store_true", help=argparse.SUPPRESS)  # one --allocator process
    args = p.parse_args()
    if args.allocator and not args.step_cost:  # a child process measures; only the parent compares
        return compare_allocators([a for a in sys.argv[1:] if a != "--allocator"])
    device = resolve_device(args.device)
    torch.manual_seed(0)
    b = args.batch_size
    waveforms = torch.randn(b, 1, 320000, device=device) * 0.1
    reverbs = torch.randn(b, 2, 64000, device=device) * torch.linspace(1, 0, 64000, device=device) ** 8
    model = create_model(args.model, num_classes=355, fusion_channels=args.fusion_channels,
                         patch_size=args.patch_size).to(device)
    if args.step_cost:
        print(json.dumps(step_cost(train_step_fn(model, waveforms, reverbs, device), args.repeats)))
        return
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"model {args.model}, batch {b}, {args.fusion_channels} fused channel(s), {'x'.join(map(str, patch_shape(args.patch_size)))} patches")

    print("hot spots, straightforward formula vs this code:")
    for name, before, after in hot_spots(model, waveforms, reverbs, args.repeats, device):
        print(f"  {name:<52} {before * 1000:7.1f} ms -> {after * 1000:6.1f} ms  ({before / after:.1f}x)")
    with torch.no_grad():
        front = median_seconds(lambda: model.features(frontend.fft_convolve(waveforms, reverbs)), args.repeats, device)
    print(f"front end: {b / front:.1f} clips/s ({front * 1000:.0f} ms)")

    for amp in (None, torch.bfloat16):
        train_step = train_step_fn(model, waveforms, reverbs, device, amp)

        @torch.no_grad()
        def infer():
            model.eval()
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                model(waveforms, reverbs)

        name = "bf16 autocast" if amp else "float32"
        train = median_seconds(train_step, args.repeats, device)
        forward = median_seconds(infer, args.repeats, device)
        print(f"{name:>14}: train step {b / train:7.1f} clips/s ({train * 1000:.0f} ms), "
              f"inference {b / forward:7.1f} clips/s ({forward * 1000:.0f} ms)")

    # A masked warm-up (AudioMAE's pre-training) encodes a quarter of the tokens, but still pays for
    # every token's front end, fusion and patch embedding (docs/demo.md section 4 weighs it).
    full = median_seconds(train_step_fn(model, waveforms, reverbs, device, masks=(0.0, 0.0)), args.repeats, device)
    model.mask_2d = False  # random tokens, as a masked autoencoder drops them
    quarter = median_seconds(train_step_fn(model, waveforms, reverbs, device, masks=(0.75, 0.0)), args.repeats, device)
    print(f"float32 train step, all tokens {full * 1000:.0f} ms, a random quarter of them {quarter * 1000:.0f} ms "
          f"({quarter / full:.2f}x)")


if __name__ == "__main__":
    main()
