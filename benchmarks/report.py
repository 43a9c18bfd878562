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


def verdict(ratio: float, target: float, at_least: bool = False) -> str:
    met = ratio >= target if at_least else ratio <= target
    return f"{fmt(ratio)} ({'met' if met else 'not met'}, target {'>=' if at_least else '<='} {target})"


def efficiency_lines(results: dict, memory: dict | None) -> list[str]:
    """The performance issue's goals: STUNet's achieved rate against the per-frame 2D
    U-Net's, its time ratios against its FLOP ratios, its peak memory, and what frame
    chunking changed (STUNet against the same model with chunking off)."""
    lines = []
    for frames, row in results.items():
        if "stunet_whole" not in row:
            continue
        stunet, motion, flat = row["stunet"], row["animatediff"], row["per_frame_2d"]
        rate = stunet["forward_gflops_per_s"] / flat["forward_gflops_per_s"]
        versus_motion = (stunet["forward_s"] / motion["forward_s"]) / (
            stunet["forward_gflop"] / motion["forward_gflop"]
        )
        lines.append(
            f"- F={frames}: GFLOP/s vs 2D per frame {verdict(rate, 0.95, at_least=True)}; "
            f"time ratio / FLOP ratio vs AnimateDiff {verdict(versus_motion, 1.1)}; "
            f"time vs 2D per frame {verdict(stunet['forward_s'] / flat['forward_s'], 0.8)}; "
            f"frame chunking: time x{fmt(stunet['forward_s'] / row['stunet_whole']['forward_s'])} of chunking off"
        )
        if memory is not None and frames in memory["results"] and "stunet_whole" in memory["results"][frames]:
            mem = memory["results"][frames]
            peak = mem["stunet"]["forward_mib"]
            lines.append(
                f"- F={frames} forward peak: vs AnimateDiff {verdict(peak / mem['animatediff']['forward_mib'], 0.5)}; "
                f"vs 2D per frame {verdict(peak / mem['per_frame_2d']['forward_mib'], 0.5)}; "
                f"frame chunking: x{fmt(peak / mem['stunet_whole']['forward_mib'])} of chunking off "
                f"({fmt(mem['stunet_whole']['forward_mib'], 0)} -> {fmt(peak, 0)} MiB)"
            )
    return ["", "Performance goals (frame chunking on, the default):", "", *lines] if lines else []


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
    lines = [f"### `{config_name}` config", "", measured_on(timing), "", f"`{json.dumps(timing['config'])}`", ""]
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
    lines += efficiency_lines(results, memory)
    return lines + [""]


def measured_on(result: dict) -> str:
    info = result["machine"]
    return (
        f"Measured on: {info.get('cpu')}, {info.get('logical_cpus')} logical CPUs, SIMD "
        f"{', '.join(info.get('simd', []))}; torch {info['torch']}, {info['threads']} threads, device {info['device']}."
    )


def profile_section(profile: dict | None) -> list[str]:
    """``bench_profile``: seconds and achieved GFLOP/s per module type."""
    if profile is None:
        return []
    lines = [
        f"### Where the forward time goes (`{profile['config_name']}`)", "", measured_on(profile), "",
        "Inclusive seconds per module type (forward hooks), median of "
        f"{profile['repeats']} runs, and achieved GFLOP/s in brackets.", "",
    ]  # fmt: skip
    for frames, models in profile["results"].items():
        names = list(models)
        kinds = list(dict.fromkeys(kind for rows in models.values() for kind in rows))
        lines += [f"{frames} frames:", "", "| module type | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for kind in kinds:
            cells = []
            for name in names:
                row = models[name].get(kind)
                rate = row and row["gflops_per_s"]
                cells.append("-" if row is None else f"{fmt(row['seconds'], 3)} ({fmt(rate, 0) if rate else '-'})")
            lines.append(f"| {kind} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


FAST_NOTE = (
    " (`fast/`: shapes-tiny-fast, distilled from it, which takes the guidance scale as an input and makes one pass "
    "per step)"
)


def few_step_section(few: dict | None) -> list[str]:
    """The sampler table of ``bench_few_step`` and the goal: <= 1 s per clip with colour,
    shape and direction within 3 points of DDIM at 25 steps on unseen combinations."""
    if few is None:
        return []
    keys = ("colour", "shape", "motion", "motion_direction")
    lines = [
        "### Few-step sampling", "",
        f"The shipped shapes-tiny{FAST_NOTE if any('fast/' in k for k in few['results']) else ''}, guidance "
        f"{few['guidance']}, {few['prompts']} prompts of `lumiere eval` (half held-out combinations), the same noise "
        "for every setting; seconds per clip in batches of 8.", "",
        measured_on(few), "",
        "| sampler:steps | unseen colour / shape / motion / direction | seen colour / shape / motion / direction "
        "| s/clip fp32 | s/clip bf16 autocast |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for setting, row in few["results"].items():
        cells = [" / ".join(f"{100 * row[split][k]:.1f}" for k in keys) for split in ("unseen", "seen")]
        times = [fmt(row["seconds"][p]) if p in row["seconds"] else "-" for p in ("fp32", "bf16_autocast")]
        lines.append(f"| {setting} | {cells[0]} | {cells[1]} | {times[0]} | {times[1]} |")
    reference = few["results"].get("ddim:25")
    if reference is not None:
        lines += ["", "Goal: <= 1 s per clip, colour / shape / direction within 3 points of ddim:25 (unseen):", ""]
        for setting, row in few["results"].items():
            drops = [100 * (reference["unseen"][k] - row["unseen"][k]) for k in ("colour", "shape", "motion_direction")]
            fastest = min(row["seconds"].values()) if row["seconds"] else float("nan")
            met = fastest <= 1.0 and max(drops) <= 3
            lines.append(
                f"- {setting}: {fmt(fastest)} s per clip, drops {' / '.join(f'{d:+.1f}' for d in drops)} points: "
                f"{'met' if met else 'not met'}"
            )
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
    lines += profile_section(load("profile_mid"))
    lines += few_step_section(load("few_step"))
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
