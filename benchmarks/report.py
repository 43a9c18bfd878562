"""Turn benchmarks/results/*.json into the tables and plot of docs/performance.md.

    python -m benchmarks.report

Rewrites the part of docs/performance.md between the ``<!-- results:start -->`` and
``<!-- results:end -->`` markers, and docs/performance.png.
"""

from __future__ import annotations

import json
from pathlib import Path

from lumiere.files import write_text

from .common import RESULTS

DOCS = Path(__file__).resolve().parents[1] / "docs"
START, END = "<!-- results:start -->", "<!-- results:end -->"
MODELS = ("stunet", "animatediff", "per_frame_2d")
LABELS = {
    "stunet": "SpaceTimeUNet",
    "animatediff": "UNetMotionModel (AnimateDiff)",
    "per_frame_2d": "2D U-Net per frame",
}


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def verdict(ratio: float, target: float) -> str:
    return f"{fmt(ratio)} ({'met' if ratio <= target else 'not met'}, target <= {target})"


def table_rows(results: dict, forward_key: str, train_key: str, digits: int, versus_2d: bool) -> list[str]:
    """One row per frame count: the three models' values, STUNet's ratios to the others."""
    rows = []
    for frames, row in results.items():
        forward = [row[m][forward_key] for m in MODELS]
        train = [row[m].get(train_key) for m in MODELS]
        cells = [frames, " / ".join(fmt(v, digits) for v in forward), fmt(forward[0] / forward[1])]
        if versus_2d:
            cells.append(fmt(forward[0] / forward[2]))
        if None in train:
            cells += ["not run", "-"]
        else:
            cells += [" / ".join(fmt(v, digits) for v in train), fmt(train[0] / train[1])]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def models_section(config_name: str, peak: dict | None) -> list[str]:
    timing, memory = load(f"models_{config_name}"), load(f"models_{config_name}_memory")
    if timing is None:
        return []
    lines = [f"### `{config_name}` config", "", f"`{json.dumps(timing['config'])}`", ""]
    params = timing["params"]
    lines += ["| model | parameters | trainable in the training step |", "|---|---|---|"]
    lines += [f"| {LABELS[m]} | {params[m]['total']:,} | {params[m]['trainable']:,} |" for m in MODELS]
    lines += ["", f"Medians of {timing['repeats']} interleaved repeats, batch 1, seconds.", ""]
    lines += [
        "| frames | forward: STUNet / AnimateDiff / 2D | STUNet vs AnimateDiff | STUNet vs 2D | "
        "train step: STUNet / AnimateDiff / 2D (all weights) | STUNet vs AnimateDiff |",
        "|---|---|---|---|---|---|",
    ]
    results = timing["results"]
    lines += table_rows(results, "forward_s", "train_s", digits=2, versus_2d=True)
    if memory is not None:
        lines += ["", "Peak memory above the resting process, MiB (one run, `--memory`).", ""]
        lines += [
            "| frames | forward: STUNet / AnimateDiff / 2D | STUNet vs AnimateDiff | "
            "train step: STUNet / AnimateDiff / 2D | STUNet vs AnimateDiff |",
            "|---|---|---|---|---|",
        ]
        lines += table_rows(memory["results"], "forward_mib", "train_mib", digits=0, versus_2d=False)
    if peak is not None:
        fp32 = peak["gflops"]["matmul_float32"]
        bf16 = peak["gflops"]["matmul_bfloat16"]
        lines += ["", "Forward FLOPs (torch's FLOP counter) and achieved rate against the measured peaks.", ""]
        lines += [
            "| frames | model | GFLOP | GFLOP/s | % of fp32 matmul peak | % of bf16 matmul peak |",
            "|---|---|---|---|---|---|",
        ]
        for frames, row in results.items():
            for m in MODELS:
                rate = row[m]["forward_gflops_per_s"]
                lines.append(
                    f"| {frames} | {LABELS[m]} | {fmt(row[m]['forward_gflop'], 1)} | {fmt(rate, 1)} | "
                    f"{fmt(100 * rate / fp32, 0)}% | {fmt(100 * rate / bf16, 0)}% |"
                )
    lines += ["", "Targets:", ""]
    for frames in ("64", "80"):
        if frames in results:
            row = results[frames]
            lines.append(
                f"- F={frames} forward, STUNet vs AnimateDiff: "
                f"{verdict(row['stunet']['forward_s'] / row['animatediff']['forward_s'], 0.7)}; "
                f"vs 2D per frame: {verdict(row['stunet']['forward_s'] / row['per_frame_2d']['forward_s'], 1.0)}"
            )
            if memory is not None and frames in memory["results"]:
                mem = memory["results"][frames]
                lines.append(
                    f"- F={frames} forward peak memory, STUNet vs AnimateDiff: "
                    f"{verdict(mem['stunet']['forward_mib'] / mem['animatediff']['forward_mib'], 0.7)}"
                )
    if "80" in results and "train_s" in results["80"]["stunet"]:
        row = results["80"]
        lines.append(
            f"- F=80 training step, STUNet vs AnimateDiff: "
            f"{verdict(row['stunet']['train_s'] / row['animatediff']['train_s'], 0.6)}"
        )
    if "16" in results and "80" in results:
        growth = (results["80"]["stunet"]["forward_s"] / 80) / (results["16"]["stunet"]["forward_s"] / 16)
        lines.append(f"- STUNet time per frame, F=80 vs F=16: {verdict(growth, 1.3)}")
    return lines + [""]


def plot(configs: list[str]) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loaded = [(c, load(f"models_{c}"), load(f"models_{c}_memory")) for c in configs]
    loaded = [item for item in loaded if item[1] is not None]
    if not loaded:
        return None
    figure, axes = plt.subplots(len(loaded), 2, figsize=(10, 3.6 * len(loaded)), squeeze=False)
    for row_axes, (name, timing, memory) in zip(axes, loaded):
        for model in MODELS:
            frames = [int(f) for f in timing["results"]]
            row_axes[0].plot(
                frames,
                [timing["results"][str(f)][model]["forward_s"] for f in frames],
                "o-",
                label=LABELS[model],
                color=f"C{MODELS.index(model)}",
            )
            if memory is not None:
                mem_frames = [int(f) for f in memory["results"]]
                row_axes[1].plot(
                    mem_frames,
                    [memory["results"][str(f)][model]["forward_mib"] for f in mem_frames],
                    "o-",
                    label=f"{LABELS[model]} forward",
                    color=f"C{MODELS.index(model)}",
                )
                trained = [f for f in mem_frames if "train_mib" in memory["results"][str(f)][model]]
                row_axes[1].plot(
                    trained,
                    [memory["results"][str(f)][model]["train_mib"] for f in trained],
                    "s--",
                    label=f"{LABELS[model]} training step",
                    color=f"C{MODELS.index(model)}",
                )
        row_axes[0].set(title=f"{name}: forward time", xlabel="frames", ylabel="seconds")
        row_axes[1].set(
            title=f"{name}: peak memory" + ("" if memory else " (not measured)"), xlabel="frames", ylabel="MiB"
        )
        for axis in row_axes:
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize=7)
    figure.tight_layout()
    path = DOCS / "performance.png"
    figure.savefig(path, dpi=110)
    return path


def main() -> None:
    peak, sampling, ops = load("peak"), load("sampling"), load("ops")
    lines = []
    any_result = next((r for r in (load("models_mid"), load("models_small"), peak) if r is not None), None)
    if any_result is not None:
        info = any_result["machine"]
        lines += [f"Measured on: {info.get('cpu')}, {info.get('logical_cpus')} logical CPUs, "
                  f"SIMD {', '.join(info.get('simd', []))}; torch {info['torch']}, {info['threads']} threads, "
                  f"device {info['device']}.", ""]  # fmt: skip
    if peak is not None:
        lines += ["### Machine peak (GFLOP/s)", "", "| kernel | GFLOP/s |", "|---|---|"]
        lines += [f"| {k} | {fmt(v, 2) if isinstance(v, float) else v} |" for k, v in peak["gflops"].items()]
        lines.append("")
    for config in ("mid", "small"):
        lines += models_section(config, peak)
    if ops is not None:
        lines += [
            "### Single optimizations",
            "",
            "| temporal conv at | Conv3d (before), ms | Conv2d (after), ms | after / before |",
            "|---|---|---|---|",
        ]
        for key, row in ops["temporal_conv"].items():
            lines.append(f"| {key} | {fmt(row['conv3d_ms'], 1)} | {fmt(row['conv2d_ms'], 1)} | {fmt(row['ratio'])} |")
        ckpt = ops["gradient_checkpointing"]
        lines += [
            "",
            f"Gradient checkpointing, STUNet `mid` training step at 32 frames: peak memory "
            f"{fmt(ckpt['off']['peak_mib'], 0)} -> {fmt(ckpt['on']['peak_mib'], 0)} MiB "
            f"(x{fmt(ckpt['memory_ratio'])}), "
            f"time {fmt(ckpt['off']['seconds'])} -> {fmt(ckpt['on']['seconds'])} s (x{fmt(ckpt['time_ratio'])}).",
            "",
        ]
    if sampling is not None:
        default = sampling["default"]
        lines += [
            "### Sampling",
            "",
            f"Small pixel-space pipeline, {sampling['frames']} frames at 64x64, "
            f"{sampling['steps']} DDIM steps with guidance: "
            f"{fmt(default['seconds_per_clip'], 1)} s per clip, {fmt(default['frames_per_second'], 3)} frames/s; "
            f"U-Net {fmt(default['unet_gflops_per_s'], 1)} GFLOP/s"
            + (
                f" ({fmt(100 * default['unet_gflops_per_s'] / peak['gflops']['matmul_float32'], 0)}% "
                "of the fp32 matmul peak)."
                if peak
                else "."
            ),
            "",
            f"| setting (vs the default, {sampling['variant_steps']} steps) | time ratio | max abs pixel difference |",
            "|---|---|---|",
        ]
        for name, row in sampling["variants"].items():
            diff = fmt(row["max_abs_diff"], 4) if "max_abs_diff" in row else "-"
            extra = (
                f" (compile + first step {fmt(row['compile_and_first_step_s'], 0)} s)"
                if "compile_and_first_step_s" in row
                else ""
            )
            lines.append(f"| {name}{extra} | {fmt(row['time_ratio'])} | {diff} |")
        lines.append("")
    image = plot(["mid", "small"])
    if image is not None:
        lines += ["![time and memory vs frames](performance.png)", ""]

    doc = DOCS / "performance.md"
    text = doc.read_text()
    head, rest = text.split(START)
    _, tail = rest.split(END)
    write_text(doc, head + START + "\n" + "\n".join(lines) + "\n" + END + tail, overwrite=True)
    print(doc)


if __name__ == "__main__":
    main()
