"""Draw the Spatial-AST architecture figure of the README: assets/architecture.png.

    python scripts/draw_architecture.py [--out assets/architecture.png]

Plain matplotlib boxes and arrows, so the figure changes with the code that it shows:
edit the stages below and run the script again.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from util.report import new_figure, save_figure  # noqa: E402

# (title, detail, colour) of each stage, left to right
STAGES = [
    ("waveform", "mono clip\n10 s, 32 kHz", "#dbe9f6"),
    ("room", "x binaural room\nimpulse response\n(left, right ear)", "#dbe9f6"),
    ("front end", "STFT per ear\nlog-mel L, R (128)\nIPD cos, sin (mel)", "#fde9d9"),
    ("fusion", "3x3 conv:\n4 maps -> 1 channel\n(demo: 7)", "#fde9d9"),
    ("patches", "16x16 -> 512 tokens\n(demo: 32x32 -> 128)\n+ sin-cos positions", "#e2f0d9"),
    ("ViT encoder", "3 CLS tokens\n+ patch tokens\n12 blocks (demo: 4)", "#e2f0d9"),
]
HEADS = [
    ("events", "multi-label, 355 classes\n(demo: 14)"),
    ("distance", "21 classes of 0.5 m"),
    ("direction", "azimuth 360 + elevation\n180 classes of 1 deg"),
]
BOX_W, BOX_H, GAP = 1.55, 1.25, 0.45


def box(ax, x, y, w, h, title, detail, colour):
    from matplotlib.patches import FancyBboxPatch
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor="#404040", linewidth=1.0))
    ax.text(x + w / 2, y + h - 0.2, title, ha="center", va="top", fontsize=9.5, fontweight="bold")
    ax.text(x + w / 2, y + h - 0.45, detail, ha="center", va="top", fontsize=7.5, linespacing=1.25)


def arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="#404040", linewidth=1.0))


def draw(path):
    fig = new_figure((13, 3.3))
    ax = fig.add_subplot()
    y = 1.0
    for i, (title, detail, colour) in enumerate(STAGES):
        x = i * (BOX_W + GAP)
        box(ax, x, y, BOX_W, BOX_H, title, detail, colour)
        if i:
            arrow(ax, (x - GAP, y + BOX_H / 2), (x, y + BOX_H / 2))
    encoder_right = (len(STAGES) - 1) * (BOX_W + GAP) + BOX_W
    head_x = encoder_right + GAP + 0.2
    head_h = 0.78
    for j, (title, detail) in enumerate(HEADS):
        head_y = y + BOX_H / 2 + (1 - j) * (head_h + 0.25) - head_h / 2
        box(ax, head_x, head_y, BOX_W + 0.25, head_h, title, detail, "#ece3f3")
        arrow(ax, (encoder_right, y + BOX_H / 2), (head_x, head_y + head_h / 2))
    ax.text(encoder_right + 0.05, y - 0.35, "one CLS token per head:\n0 distance, 1 direction, 2 events",
            ha="right", va="top", fontsize=7.5, color="#404040")
    ax.set(xlim=(-0.1, head_x + BOX_W + 0.4), ylim=(0.1, y + BOX_H + 0.95), aspect="equal")
    ax.axis("off")
    ax.set_title("Spatial-AST: binaural audio -> sound events, distance and direction", fontsize=11)
    return save_figure(fig, path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="assets/architecture.png")
    args = p.parse_args()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    print(draw(args.out))


if __name__ == "__main__":
    main()
