"""Training and evaluation throughput of the paper's recipe on one device (run by hand; docs/gpu.md).

    python scripts/benchmark_gpu.py [--device auto|cpu|cuda] [--models build_AST,build_AST_tiny]
                                    [--batch_size 64] [--amp none,bf16] [--compile both|on|off]
                                    [--steps 20] [--warmup 3] [--json results.json] [--smoke]

One row per (model, autocast, torch.compile): the paper's training step (355 classes, 25 % of
token rows and columns dropped, SpecAugment, soft mixup labels, the 1250/1/2/2 loss, layer-decay
AdamW as main_finetune.py builds it) on random 10 s clips and 2 s binaural room responses that sit
on the device, so the data loader is not measured. Columns:

- train clips/s and ms/step: mean over --steps after --warmup steps (compilation happens there);
- front/encoder/optim %: the step's split into the front end (room convolution, STFT, log-mel, IPD;
  float32), encoder + heads + loss forward and backward, and the AdamW update; timed with CUDA
  events on a GPU (no synchronisation inside the steps), perf_counter elsewhere;
- GFLOP/clip: forward + backward FLOPs of one training clip, counted by
  torch.utils.flop_counter.FlopCounterMode (matmuls, convolutions, attention; FFTs and elementwise
  work are not counted);
- MFU: GFLOP/clip x clips/s over the device's dense bf16 tensor peak (PEAK_BF16_TFLOPS below), also
  for float32 rows, so that rows compare; n/a on a device not in the table;
- peak mem: torch.cuda.max_memory_allocated over the timed steps; on a CPU, the process's peak RSS
  so far (it only grows from row to row);
- eval clips/s: inference forward in eval mode under torch.inference_mode, same autocast and compile.

With torch.compile the front end and the encoder are compiled separately (so that the split can be
timed); main_finetune.py --compile compiles the whole model. --smoke: build_AST_tiny only, batch 2,
2 steps, no compile, so that it runs in seconds on a CPU (tests/test_benchmark_gpu.py).
"""
import argparse
import json
import os
import re
import resource
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine_finetune as engine  # noqa: E402
from main_finetune import build_optimizer  # noqa: E402
from models import create_model, frontend  # noqa: E402
from models.spatial_ast import TARGET_FRAMES  # noqa: E402
from util.dist import resolve_device  # noqa: E402

NUM_CLASSES = 355
CLIP_SAMPLES = 10 * frontend.SAMPLE_RATE
RIR_SAMPLES = 2 * frontend.SAMPLE_RATE

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, matched against torch.cuda.get_device_name();
# first match wins. NVIDIA's datasheets quote the 2:4-sparsity figure, twice the dense one.
PEAK_BF16_TFLOPS = [
    (r"H100.*PCIe", 756.0, "NVIDIA H100 datasheet, H100 PCIe: 1,513 TFLOPS bf16 with sparsity"),
    (r"H100 NVL", 835.5, "NVIDIA H100 datasheet, H100 NVL: 1,671 TFLOPS bf16 with sparsity"),
    (r"H100|GH200", 989.5, "NVIDIA H100 datasheet, H100 SXM: 1,979 TFLOPS bf16 with sparsity"),
    (r"H200 NVL", 835.5, "NVIDIA H200 datasheet, H200 NVL: 1,671 TFLOPS bf16 with sparsity"),
    (r"H200", 989.5, "NVIDIA H200 datasheet, H200 SXM: 1,979 TFLOPS bf16 with sparsity"),
    (r"A100", 312.0, "NVIDIA A100 datasheet: 312 TFLOPS bf16 dense (624 with sparsity)"),
    (r"L40S", 362.05, "NVIDIA L40S datasheet: 362.05 TFLOPS bf16 dense (733 with sparsity)"),
    (r"\bL4\b", 121.0, "NVIDIA L4 datasheet: 242 TFLOPS bf16 with sparsity"),
    (r"\bA10\b", 125.0, "NVIDIA A10 datasheet: 250 TFLOPS bf16 with sparsity"),
]

# The recipe's loss (scripts/finetune-2m.sh: upstream's weights, one-hot targets).
RECIPE_LOSS = argparse.Namespace(event_loss_weight=1250.0, distance_loss_weight=1.0, direction_loss_weight=2.0,
                                 direction_label_sigma=0.0, distance_label_sigma=0.0)
RECIPE_OPTIMIZER = argparse.Namespace(weight_decay=5e-4, layer_decay=0.75, head_lr_scale=1.0, lr=1e-3 * 64 / 256)
MASK_PROB = 0.25



def _cpu_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                                  **kwargs):
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# FlopCounterMode knows the CUDA attention kernels but not the CPU one: give it the same formulas.
CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_attention_backward_flops,
}


def peak_bf16_flops(device_name):
    """(FLOP/s, source) of the device's dense bf16 peak, or (None, reason) if it is not in the table."""
    for pattern, tflops, source in PEAK_BF16_TFLOPS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return tflops * 1e12, source
    return None, f"no bf16 peak known for {device_name!r}: MFU not shown"


def count_flops(fn):
    """FLOPs of everything `fn` runs (forward and backward), as FlopCounterMode counts them."""
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        fn()
    return counter.get_total_flops()


class Clock:
    """Marks on the device's timeline: CUDA events (no host sync) or perf_counter (CPU)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"
        self.marks = []

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def intervals_ms(self):
        """Milliseconds between consecutive marks (waits for the device once)."""
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) for a, b in zip(self.marks, self.marks[1:])]
        return [(b - a) * 1000 for a, b in zip(self.marks, self.marks[1:])]


def synthetic_batch(batch, device, generator):
    """Random clips, decaying binaural noise responses, soft mixup labels and spatial classes."""
    waveforms = 0.1 * torch.randn(batch, 1, CLIP_SAMPLES, generator=generator)
    decay = torch.linspace(1, 0, RIR_SAMPLES) ** 8
    reverbs = torch.randn(batch, 2, RIR_SAMPLES, generator=generator) * decay
    first, second = (torch.rand(batch, NUM_CLASSES, generator=generator) < 0.01 for _ in range(2))
    lam = torch.distributions.Beta(10.0, 10.0).sample((batch, 1))
    labels = lam * first.float() + (1 - lam) * second.float()
    spatial = torch.stack([torch.randint(0, n, (batch,), generator=generator) for n in (21, 360, 180)], dim=1)
    return [t.to(device) for t in (waveforms, reverbs, labels, spatial)]


def front_end(model):
    def run(waveforms, reverbs):
        return model.features(frontend.fft_convolve(waveforms, reverbs))
    return run


def training_step(model, optimizer, amp, device, compiled):
    """A step function marking the clock after the front end, the backward pass and the update."""
    front = front_end(model)
    encoder = model.forward_features
    if compiled:
        front, encoder = torch.compile(front), torch.compile(encoder)

    def step(batch, clock=None):
        waveforms, reverbs, labels, spatial = batch
        features = front(waveforms, reverbs)
        clock and clock.mark()
        with engine.autocast(device, amp):
            outputs = encoder(features, MASK_PROB, MASK_PROB)
        loss, _ = engine.compute_loss(outputs, labels, spatial, RECIPE_LOSS)
        loss.backward()
        clock and clock.mark()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        clock and clock.mark()
    return step


def flops_per_clip(model, batch, amp, device):
    """Forward + backward FLOPs of one training clip (optimizer excluded: it is elementwise)."""
    step = training_step(model, torch.optim.SGD(model.parameters(), lr=0.0), amp, device, compiled=False)
    flops = count_flops(lambda: step(batch))
    model.zero_grad(set_to_none=True)
    return flops / batch[0].shape[0]


def peak_memory_bytes(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measure_training(model, batch, amp, compiled, device, steps, warmup):
    """Mean ms per step, timed whole, and of its three parts (whose shares then show any work the
    parts miss), and the peak memory of the timed steps."""
    optimizer = build_optimizer(RECIPE_OPTIMIZER, model, device)
    step = training_step(model, optimizer, amp, device, compiled)
    model.train()
    for _ in range(warmup):
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    clocks, wholes = [], []
    for _ in range(steps):
        clock, whole = Clock(device), Clock(device)
        whole.mark()
        clock.mark()
        step(batch, clock)
        whole.mark()
        clocks.append(clock)
        wholes.append(whole)
    parts = [sum(values) / steps for values in zip(*(clock.intervals_ms() for clock in clocks))]
    ms_per_step = sum(whole.intervals_ms()[0] for whole in wholes) / steps
    return {"ms_per_step": ms_per_step, "front_ms": parts[0], "encoder_ms": parts[1], "optimizer_ms": parts[2],
            "peak_memory_bytes": peak_memory_bytes(device)}


def measure_evaluation(model, batch, amp, compiled, device, steps, warmup):
    """Inference clips/s of the whole model in eval mode."""
    model.eval()
    forward = torch.compile(model) if compiled else model
    waveforms, reverbs = batch[0], batch[1]
    with torch.inference_mode(), engine.autocast(device, amp):
        for _ in range(warmup):
            forward(waveforms, reverbs)
        clock = Clock(device)
        clock.mark()
        for _ in range(steps):
            forward(waveforms, reverbs)
        clock.mark()
    model.train()
    return waveforms.shape[0] * steps / (clock.intervals_ms()[0] / 1000)


def benchmark_row(model_name, amp, compiled, args, device, peak_flops, flops_cache):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = create_model(model_name, num_classes=NUM_CLASSES).to(device)
    batch = synthetic_batch(args.batch_size, device, generator)
    if model_name not in flops_cache:
        flops_cache[model_name] = flops_per_clip(model, synthetic_batch(min(args.batch_size, 2), device, generator),
                                                 amp, device)
    row = {"model": model_name, "amp": amp, "compile": compiled, "batch_size": args.batch_size,
           "flops_per_clip": flops_cache[model_name]}
    try:
        row.update(measure_training(model, batch, amp, compiled, device, args.steps, args.warmup))
        eval_batch = synthetic_batch(args.eval_batch_size, device, generator)
        row["eval_clips_per_s"] = measure_evaluation(model, eval_batch, amp, compiled, device, args.steps, args.warmup)
    except torch.cuda.OutOfMemoryError:
        row["error"] = "out of memory"
        return row
    finally:
        del model, batch
        if device.type == "cuda":
            torch.cuda.empty_cache()
    row["train_clips_per_s"] = args.batch_size / (row["ms_per_step"] / 1000)
    row["mfu"] = row["flops_per_clip"] * row["train_clips_per_s"] / peak_flops if peak_flops else None
    return row


def format_table(rows):
    header = ["model", "amp", "compile", "train clips/s", "ms/step", "front %", "encoder %", "optim %",
              "GFLOP/clip", "MFU", "peak mem GiB", "eval clips/s"]
    lines = [header]
    for r in rows:
        if "error" in r:
            lines.append([r["model"], r["amp"], "on" if r["compile"] else "off", r["error"]] + [""] * 8)
            continue
        share = lambda key: f"{100 * r[key] / r['ms_per_step']:.1f}"  # noqa: E731
        lines.append([r["model"], r["amp"], "on" if r["compile"] else "off", f"{r['train_clips_per_s']:.1f}",
                      f"{r['ms_per_step']:.1f}", share("front_ms"), share("encoder_ms"), share("optimizer_ms"),
                      f"{r['flops_per_clip'] / 1e9:.1f}", "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.3g}%",
                      f"{r['peak_memory_bytes'] / 2 ** 30:.2f}", f"{r['eval_clips_per_s']:.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |" for line in lines)


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--models", default=None, help="comma-separated (default: build_AST,build_AST_tiny)")
    p.add_argument("--batch_size", type=int, default=None, help="training clips per step (default 64, the paper's)")
    p.add_argument("--eval_batch_size", type=int, default=None, help="default: --batch_size")
    p.add_argument("--amp", default="none,bf16", help="comma-separated autocast settings: none, bf16")
    p.add_argument("--compile", choices=["off", "on", "both"], default=None, help="torch.compile (default both)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per row (default 20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3)")
    p.add_argument("--json", default="", help="also write the rows to this json file")
    p.add_argument("--smoke", action="store_true", help="tiny model, batch 2, 2 steps, no compile: seconds on a CPU")
    args = p.parse_args(argv)
    smoke = args.smoke
    defaults = dict(models="build_AST_tiny" if smoke else "build_AST,build_AST_tiny", batch_size=2 if smoke else 64,
                    compile="off" if smoke else "both", steps=2 if smoke else 20, warmup=1 if smoke else 3)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.eval_batch_size = args.eval_batch_size or args.batch_size
    args.models = args.models.split(",")
    args.amp = args.amp.split(",")
    for amp in args.amp:
        if amp not in ("none", "bf16"):
            p.error(f"--amp takes none and/or bf16, got {amp!r}")
    if min(args.batch_size, args.eval_batch_size, args.steps) < 1 or args.warmup < 0:
        p.error("--batch_size, --eval_batch_size and --steps must be positive, --warmup >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    device = resolve_device(args.device)
    name = device_name(device)
    peak_flops, source = peak_bf16_flops(name)
    print(f"device {name}, torch {torch.__version__}, batch {args.batch_size} (eval {args.eval_batch_size}), "
          f"{args.steps} timed steps after {args.warmup}, {TARGET_FRAMES} frames, masks {MASK_PROB}/{MASK_PROB}")
    print(f"bf16 dense peak: {peak_flops / 1e12:.1f} TFLOP/s ({source})" if peak_flops else source)
    compile_settings = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    rows, flops_cache = [], {}
    for model_name in args.models:
        for amp in args.amp:
            for compiled in compile_settings:
                rows.append(benchmark_row(model_name, amp, compiled, args, device, peak_flops, flops_cache))
                print(f"  done: {model_name}, amp {amp}, compile {'on' if compiled else 'off'}", file=sys.stderr)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "peak_bf16_flops": peak_flops,
                       "peak_source": source, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
