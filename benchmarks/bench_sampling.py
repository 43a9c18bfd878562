"""End-to-end sampling throughput of a small pixel-space pipeline, and what each speed
setting changes.

    python -m benchmarks.bench_sampling [--steps 50] [--variant-steps 10]

The pipeline is the ``small`` benchmark U-Net (64x64 pixels, random weights) inflated with
``SpaceTimeUNet.from_unet2d``, a tiny BERT text encoder, DDIM, 16 frames, guidance on.
The default settings are timed at ``--steps`` (the pipeline's default, 50); each variant
runs ``--variant-steps`` steps interleaved with the default at the same count, and is
reported as a time ratio to it (below 1 = faster) with its largest output difference
(pixels in [0, 1]; for bf16, the U-Net output).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from diffusers import DDIMScheduler, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from lumiere import LumierePipeline, SpaceTimeUNet
from lumiere.pipelines.sampling import Branch, Guidance
from lumiere.testing import make_bert

from .bench_models import CONFIGS
from .common import count_flops, device, measure, median, save

FRAMES = 16
PROMPT = "a red circle moving right"


def build_pipeline(dev: torch.device, vocab_dir: str) -> LumierePipeline:
    torch.manual_seed(0)
    config = {**CONFIGS["small"], "cross_attention_dim": 32}  # the tiny test BERT is 32 wide
    unet = SpaceTimeUNet.from_unet2d(UNet2DConditionModel(**config))
    encoder, tokenizer = make_bert(vocab_dir)
    scheduler = DDIMScheduler(prediction_type="v_prediction", clip_sample=False)
    pipe = LumierePipeline(unet=unet.eval(), scheduler=scheduler, text_encoder=encoder, tokenizer=tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(dev)


def sample(pipe: LumierePipeline, steps: int, **kwargs) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    frames = pipe(
        PROMPT, num_frames=FRAMES, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
        output_type="pt", **kwargs,
    ).frames  # fmt: skip
    return time.perf_counter() - start, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--variant-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dev = device()
    report: dict = {"frames": FRAMES, "steps": args.steps, "variant_steps": args.variant_steps}
    with tempfile.TemporaryDirectory() as vocab_dir:
        pipe = build_pipeline(dev, vocab_dir)
        sample(pipe, 2)  # warm-up
        seconds, _ = sample(pipe, args.steps)
        report["default"] = {"seconds_per_clip": seconds, "frames_per_second": FRAMES / seconds}

        # FLOPs of one denoising step (both guidance branches) for the achieved rate.
        latents = torch.randn(1, 3, FRAMES, 64, 64, device=dev)
        context = torch.randn(2, 16, 32, device=dev)
        guided = Guidance(pipe.unet, pipe.scheduler, 7.5, cond=Branch(context[1:]), uncond=Branch(context[:1]))
        with torch.no_grad():
            step_flops = count_flops(lambda: guided(latents, torch.tensor(500)))
        report["default"]["unet_gflop_per_step"] = step_flops / 1e9
        report["default"]["unet_gflops_per_s"] = step_flops * args.steps / seconds / 1e9

        def classic_attention(on: bool):
            pipe.unet.set_attn_processor(AttnProcessor() if on else AttnProcessor2_0())

        def channels_last(on: bool):
            pipe.unet.to(memory_format=torch.channels_last if on else torch.contiguous_format)

        variants = {"classic_attention_instead_of_sdpa": classic_attention, "channels_last": channels_last}
        report["variants"] = {}
        for name, switch in variants.items():
            base_times, variant_times = [], []
            for _ in range(args.repeats):
                t, reference = sample(pipe, args.variant_steps)
                base_times.append(t)
                switch(True)
                t, frames = sample(pipe, args.variant_steps)
                variant_times.append(t)
                switch(False)
            report["variants"][name] = {
                "time_ratio": median(variant_times) / median(base_times),
                "max_abs_diff": (frames - reference).abs().max().item(),
                "default_s": base_times,
                "variant_s": variant_times,
            }
            print(name, report["variants"][name], flush=True)

        # bf16 autocast, the path the default takes where the CPU has native bf16 kernels.
        # Where it does not, bf16 is emulated and a whole clip would take hours: time one
        # U-Net call on a 4-frame clip instead.
        short = latents[:, :, :4]
        with torch.no_grad():
            reference = pipe.unet(short, 500, context[1:]).sample
            fp32_s = median([measure(lambda: pipe.unet(short, 500, context[1:]), dev)[0] for _ in range(2)])
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                bf16_out = pipe.unet(short, 500, context[1:]).sample
                bf16_s = measure(lambda: pipe.unet(short, 500, context[1:]), dev)[0]
        report["variants"]["bf16_autocast (one U-Net call, 4 frames)"] = {
            "time_ratio": bf16_s / fp32_s,
            "max_abs_diff": (bf16_out.float() - reference).abs().max().item(),
            "default_s": [fp32_s],
            "variant_s": [bf16_s],
        }
        print("bf16", report["variants"]["bf16_autocast (one U-Net call, 4 frames)"], flush=True)

        # torch.compile of the whole U-Net: compile time, then steady-state steps.
        eager_unet = pipe.unet
        compiled_unet = torch.compile(eager_unet, dynamic=False)
        start = time.perf_counter()
        pipe.unet = compiled_unet
        sample(pipe, 1)
        compile_seconds = time.perf_counter() - start
        compiled_times, base_times = [], []
        for _ in range(args.repeats):
            pipe.unet = compiled_unet
            compiled_times.append(sample(pipe, args.variant_steps)[0])
            pipe.unet = eager_unet
            base_times.append(sample(pipe, args.variant_steps)[0])
        report["variants"]["torch_compile"] = {
            "time_ratio": median(compiled_times) / median(base_times),
            "compile_and_first_step_s": compile_seconds,
            "default_s": base_times,
            "variant_s": compiled_times,
        }
        print("torch_compile", report["variants"]["torch_compile"], flush=True)
    print(save("sampling", report))


if __name__ == "__main__":
    main()
