"""Where a forward pass spends its time: per module type, SpaceTimeUNet (frame chunking on, and off)
vs the per-frame 2D U-Net.

    python -m benchmarks.bench_profile [--config mid] [--frames 16 64 80] [--repeats 2]

Both models come from the same base ``UNet2DConditionModel`` (``bench_models.CONFIGS``).
Each module of a profiled type is timed inclusively by forward hooks (wall clock, with a
device sync on CUDA); the types are chosen so that none contains another, and what is left
of the whole forward is ``other`` (time embedding, skip concatenations, the folds between
layouts). FLOPs per type come from torch's FLOP counter, so each row also has its achieved
GFLOP/s: a type far below the 2D layers' rate is where the time does not follow the FLOPs.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections import defaultdict

import torch
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from torch.utils.flop_counter import FlopCounterMode

from lumiere.models.temporal import TemporalAttentionBlock, TemporalConvBlock, TemporalDownsample, TemporalUpsample

from .bench_models import CONFIGS, TEXT_TOKENS, Candidate, build
from .common import device, median, save, synchronize

TYPES = {
    "resnet": ResnetBlock2D,
    "spatial_attention": Transformer2DModel,
    "spatial_resample": (Downsample2D, Upsample2D),
    "temporal_conv_block": TemporalConvBlock,
    "temporal_attention_block": TemporalAttentionBlock,
    "temporal_resample": (TemporalDownsample, TemporalUpsample),
}


def _typed_modules(model: torch.nn.Module) -> dict[str, list[tuple[str, torch.nn.Module]]]:
    found: dict[str, list[tuple[str, torch.nn.Module]]] = defaultdict(list)
    for name, module in model.named_modules():
        for kind, types in TYPES.items():
            if isinstance(module, types):
                found[kind].append((name, module))
    return found


def _timed(modules: dict[str, list[tuple[str, torch.nn.Module]]], dev: torch.device, totals: dict[str, float]):
    """Install hooks adding each typed module's inclusive forward time to ``totals[kind]``."""
    handles = []
    for kind, members in modules.items():
        for _, module in members:
            starts: list[float] = []

            def pre(_module, _args, starts=starts):
                synchronize(dev)
                starts.append(time.perf_counter())

            def post(_module, _args, _output, starts=starts, kind=kind):
                synchronize(dev)
                totals[kind] += time.perf_counter() - starts.pop()

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return handles


def _flops(candidate: Candidate, modules, clip, context) -> dict[str, float]:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        candidate(clip, context)
    per_module = counter.get_flop_counts()
    prefix = type(candidate.model).__name__
    flops = {
        kind: sum(sum(per_module.get(f"{prefix}.{name}", {}).values()) for name, _ in members)
        for kind, members in modules.items()
    }
    flops["total"] = counter.get_total_flops()
    flops["other"] = flops["total"] - sum(v for k, v in flops.items() if k != "total")
    return flops


def profile(candidate: Candidate, clip, context, repeats: int, dev: torch.device) -> dict:
    modules = _typed_modules(candidate.model)
    flops = _flops(candidate, modules, clip, context)
    samples: dict[str, list[float]] = defaultdict(list)
    with torch.no_grad():
        candidate(clip, context)  # warm-up
        for _ in range(repeats):
            totals: dict[str, float] = defaultdict(float)
            handles = _timed(modules, dev, totals)
            gc.collect()
            synchronize(dev)
            start = time.perf_counter()
            candidate(clip, context)
            synchronize(dev)
            whole = time.perf_counter() - start
            for handle in handles:
                handle.remove()
            for kind in modules:
                samples[kind].append(totals[kind])
            samples["other"].append(whole - sum(totals.values()))
            samples["total"].append(whole)
    rows = {}
    for kind, values in samples.items():
        seconds = median(values)
        rows[kind] = {
            "seconds": seconds,
            "gflop": flops[kind] / 1e9,
            "gflops_per_s": flops[kind] / 1e9 / seconds if seconds > 0 else None,
            "samples": values,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="mid")
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 80])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    dev = device()
    config = CONFIGS[args.config]
    candidates = [c for c in build(config, dev) if c.name != "animatediff"]
    report = {"config_name": args.config, "config": config, "repeats": args.repeats, "results": {}}
    for frames in args.frames:
        generator = torch.Generator().manual_seed(frames)
        clip = torch.randn(1, config["in_channels"], frames, config["sample_size"], config["sample_size"],
                           generator=generator).to(dev)  # fmt: skip
        context = torch.randn(1, TEXT_TOKENS, config["cross_attention_dim"], generator=generator).to(dev)
        report["results"][str(frames)] = {c.name: profile(c, clip, context, args.repeats, dev) for c in candidates}
        save(f"profile_{args.config}", report)
        summary = {
            name: {kind: (round(r["seconds"], 3), r["gflops_per_s"] and round(r["gflops_per_s"], 1))
                   for kind, r in rows.items()}
            for name, rows in report["results"][str(frames)].items()
        }  # fmt: skip
        print(f"{args.config} F={frames}: {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
