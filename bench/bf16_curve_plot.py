#!/usr/bin/env python3
"""Two runs' loss curves in one SVG, and their validation losses side by side.

usage: bf16_curve_plot.py FP32_METRICS BF16_METRICS OUT_SVG [BF16_LABEL]
Reads the train and eval records of each metrics.jsonl; the train curve is drawn as a moving
average over 10 records, so that the two runs' batch-to-batch noise does not hide the gap.
"""
import json
import sys


def read(path):
    train, evals = [], []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if r["type"] == "train":
                train.append((r["step"], r["loss"]))
            elif r["type"] == "eval":
                evals.append((r["step"], r["val_loss"]))
    return train, evals


def smooth(points, n=10):
    out = []
    for i in range(len(points)):
        window = points[max(0, i - n + 1):i + 1]
        out.append((points[i][0], sum(v for _, v in window) / len(window)))
    return out


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    label = sys.argv[4] if len(sys.argv) == 5 else "bf16"
    runs = {"fp32": read(sys.argv[1]), label: read(sys.argv[2])}
    colors = {"fp32": "#1f5fbf", label: "#d9480f"}
    series = []
    for name, (train, evals) in runs.items():
        series.append((name + " train (mean of 10)", smooth(train), colors[name], ""))
        series.append((name + " validation", evals, colors[name], "6,4"))
    xs = [x for _, pts, _, _ in series for x, _ in pts]
    ys = [y for _, pts, _, _ in series for _, y in pts]
    if not xs:
        sys.exit("bf16_curve_plot: no records")
    x0, x1 = min(0, min(xs)), max(xs)
    y0, y1 = min(ys), max(ys)
    W, H, L, R, T, B = 760, 440, 60, 20, 20, 60
    sx = lambda x: L + (x - x0) / max(1e-9, x1 - x0) * (W - L - R)
    sy = lambda y: T + (y1 - y) / max(1e-9, y1 - y0) * (H - T - B)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
           f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
    for i in range(6):
        y = y0 + (y1 - y0) * i / 5
        svg.append(f'<text x="{L - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
        x = x0 + (x1 - x0) * i / 5
        svg.append(f'<text x="{sx(x):.1f}" y="{H - B + 16}" text-anchor="middle">{x:.0f}</text>')
    svg.append(f'<text x="{(L + W - R) / 2}" y="{H - 22}" text-anchor="middle">step</text>')
    for k, (name, pts, color, dash) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{extra} '
                   f'points="{path}"/>')
        ly = T + 14 + 16 * k
        svg.append(f'<line x1="{W - 260}" y1="{ly - 4}" x2="{W - 230}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{extra}/>')
        svg.append(f'<text x="{W - 224}" y="{ly}">{name}</text>')
    svg.append("</svg>")
    with open(sys.argv[3], "w") as f:
        f.write("\n".join(svg) + "\n")

    (ta, ea), (tb, eb) = runs["fp32"], runs[label]
    print(f"{'step':>6} {'val fp32':>10} {'val bf16':>10} {'bf16/fp32 - 1':>14}")
    for (s, a), (_, b) in zip(ea, eb):
        print(f"{s:>6} {a:>10.4f} {b:>10.4f} {100 * (b / a - 1):>13.2f}%")
    ma = smooth(ta)[-1][1] if ta else float("nan")
    mb = smooth(tb)[-1][1] if tb else float("nan")
    print(f"train loss, mean of the last 10 records: fp32 {ma:.4f}  bf16 {mb:.4f}  "
          f"({100 * (mb / ma - 1):+.2f}%)")
    print(f"plot: {sys.argv[3]}")


if __name__ == "__main__":
    main()
