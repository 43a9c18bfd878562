"""Few-step sampling of the shipped text-to-video models: accuracy and seconds per clip by sampler.

    python -m benchmarks.bench_few_step [--prompts 64] [--timing-repeats 3] [--settings ddim:25 unipc:8 ...]
                                        [--parts accuracy timing]

Each setting is ``[MODEL/]SAMPLER:STEPS``: a shipped model by its ``default_model_dir``
kind (``text-to-video``, shapes-tiny, by default; ``fast``, shapes-tiny-fast, distilled to
few steps), a sampler of ``lumiere.pipelines.schedulers`` (on the model's own noise
schedule) and a step count, at the model's evaluated guidance (3.0). Accuracy: the
``lumiere eval`` scorer on its prompt set (half held-out combinations), from pixels, the
same noise for every setting. Time: a batch of 8 prompts, seconds per clip, the settings
interleaved over the repeats; in fp32, and under bf16 autocast where the CPU runs bf16
natively (``lumiere.performance``). ``--parts timing`` re-times the settings of an earlier
run and keeps its accuracies (timing wants a quiet machine; accuracy does not).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.eval.shapes import generate, prompt_set, score_cases
from lumiere.performance import fast_autocast_dtype
from lumiere.pipelines.schedulers import using_scheduler
from lumiere.recipes.shapes_tiny import SAMPLING

from .common import RESULTS, device, median, save

SETTINGS = ["ddim:25", "ddim:8", "dpmsolver++:8", "unipc:8", "unipc:6", "unipc:4", "fast/ddim:8", "fast/ddim:4"]
TIMING_BATCH = 8


def parse(setting: str) -> tuple[str, str, int]:
    """``[MODEL/]SAMPLER:STEPS`` -> ``(model kind, sampler, steps)``."""
    model, _, sampler = setting.rpartition("/")
    name, steps = sampler.split(":")
    return model or "text-to-video", name, int(steps)


def key(model: str, name: str, steps: int) -> str:
    return f"{name}:{steps}" if model == "text-to-video" else f"{model}/{name}:{steps}"


def seconds_per_clip(pipe: LumierePipeline, name: str, steps: int, autocast: bool) -> float:
    cases = prompt_set(TIMING_BATCH, seed=1)
    with using_scheduler(pipe, name):
        start = time.perf_counter()
        generate(pipe, cases, 16, steps, SAMPLING["guidance"], batch_size=TIMING_BATCH, autocast=autocast)
    return (time.perf_counter() - start) / TIMING_BATCH


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=SETTINGS, help="[MODEL/]SAMPLER:STEPS")
    parser.add_argument("--parts", nargs="+", choices=("accuracy", "timing"), default=["accuracy", "timing"])
    args = parser.parse_args()
    dev = device()
    pipes: dict[str, LumierePipeline] = {}

    def pipe_of(model: str) -> LumierePipeline:
        if model not in pipes:
            pipes[model] = LumierePipeline.from_pretrained(default_model_dir(kind=model), dtype=torch.float32).to(dev)
            pipes[model].set_progress_bar_config(disable=True)
        return pipes[model]

    precisions = [False] + ([True] if fast_autocast_dtype(dev) is not None else [])
    report: dict = {"guidance": SAMPLING["guidance"], "prompts": args.prompts, "results": {}}
    earlier = RESULTS / "few_step.json"
    if earlier.is_file():  # settings measured before keep their accuracy; every setting is re-timed
        report["results"] = json.loads(earlier.read_text())["results"]
    if "accuracy" in args.parts:
        cases = prompt_set(args.prompts, seed=0)
        for model, name, steps in (parse(s) for s in args.settings):
            with using_scheduler(pipe_of(model), name):
                clips = generate(pipe_of(model), cases, 16, steps, SAMPLING["guidance"])
            scores = score_cases(cases, clips)
            report["results"][key(model, name, steps)] = {"seen": scores["seen"], "unseen": scores["unseen"],
                                                          "seconds": {}}  # fmt: skip
            print(key(model, name, steps), {split: {k: round(scores[split][k], 3) for k in ("colour", "shape",
                  "motion", "motion_direction")} for split in ("unseen", "seen")}, flush=True)  # fmt: skip
            save("few_step", report)

    if "timing" not in args.parts:
        return
    settings = [parse(s) for s in report["results"]]
    samples: dict = {(s, a): [] for s in settings for a in precisions}
    for (model, name, _), autocast in samples:  # warm-up
        seconds_per_clip(pipe_of(model), name, 2, autocast)
    for _ in range(args.timing_repeats):
        for (model, name, steps), autocast in samples:
            samples[(model, name, steps), autocast].append(seconds_per_clip(pipe_of(model), name, steps, autocast))
    for (setting, autocast), values in samples.items():
        report["results"][key(*setting)]["seconds"]["bf16_autocast" if autocast else "fp32"] = median(values)
        print(f"{key(*setting)} {'bf16' if autocast else 'fp32'} {median(values):.2f} s/clip", flush=True)
    print(save("few_step", report))


if __name__ == "__main__":
    main()
