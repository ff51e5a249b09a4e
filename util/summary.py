"""Summarise a finished run: the metrics beside chance, and training curves.

    python -m util.summary OUTPUT_DIR

Reads OUTPUT_DIR/metrics.json (written by `main_finetune.py --eval`) and
OUTPUT_DIR/log.txt (one JSON line per training epoch); prints a table and writes
OUTPUT_DIR/training_curves.png.
"""
import json
import os
import sys

from util.report import new_figure, save_figure

METRICS = (("mAP", "%", "higher"), ("ER20", "%", "lower"), ("MAE", "deg", "lower"), ("DER", "%", "lower"),
           ("lateral_MAE", "deg", "lower"), ("elevation_MAE", "deg", "lower"), ("front_back_accuracy", "%", "higher"),
           ("MAE_front_back_resolved", "deg", "lower"))


def metrics_table(metrics):
    """Lines of a plain-text table: each metric, chance, and the model's factor over chance
    (metrics that an older metrics.json lacks are left out)."""
    chance = metrics.get("chance") or {}
    lines = [f"{'metric':<32}{'model':>8}{'chance':>10}{'model/chance':>14}  better"]
    for name, unit, better in METRICS:
        if name not in metrics:
            continue
        model_value, chance_value = metrics[name], chance.get(name)  # None: nothing to score
        ratio = f"{model_value / chance_value:.2f}" if chance_value and model_value is not None else "-"
        chance_text = f"{chance_value:.2f}" if chance_value is not None else "-"
        model_text = f"{model_value:.2f}" if model_value is not None else "-"
        lines.append(f"{name + ' (' + unit + ')':<32}{model_text:>8}{chance_text:>10}{ratio:>14}  {better}")
    return lines


def read_json(path, lines=False):
    """A json file (or, with `lines`, one json value per line), or one line naming what is wrong."""
    with open(path) as f:
        try:
            return [json.loads(line) for line in f if line.strip()] if lines else json.load(f)
        except ValueError as error:
            raise SystemExit(f"error: {path}: not valid json ({error}); was the run interrupted while writing it?")


def read_log(path):
    return read_json(path, lines=True)


def plot_training_curves(records, path, chance=None):
    """Training loss and the evaluation metrics per epoch, each metric beside its chance level."""
    chance = chance or {}
    fig = new_figure((18, 3.2))
    epochs = [r["epoch"] for r in records]
    panels = [("train_loss", "training loss", None)] + [
        (f"test_{name}", f"{name} ({unit})", chance.get(name)) for name, unit, _ in METRICS]
    for i, (key, title, chance_value) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        points = [(e, r[key]) for e, r in zip(epochs, records) if r.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", label="model")
        if chance_value is not None:
            ax.axhline(chance_value, color="grey", linestyle="--", linewidth=1, label="chance")
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
    return save_figure(fig, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = argv[0]
    metrics_path, log_path = os.path.join(out, "metrics.json"), os.path.join(out, "log.txt")
    if not os.path.exists(metrics_path):
        print(f"error: {metrics_path} not found; run main_finetune.py --eval first", file=sys.stderr)
        return 2
    metrics = read_json(metrics_path)
    print(f"held-out evaluation, {metrics.get('num_clips', '?')} clips ({metrics.get('reverb_type', '?')}):")
    print("\n".join(metrics_table(metrics)))
    if os.path.exists(log_path):
        curves = plot_training_curves(read_log(log_path), os.path.join(out, "training_curves.png"), metrics.get("chance"))
        print(f"training curves: {curves}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
