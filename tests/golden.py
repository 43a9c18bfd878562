"""Fixed-seed LumierePipeline outputs recorded before the pipeline core was reshaped
(tests/fixtures/golden_frames.npz), and the calls that reproduce them.

    python -m tests.golden   # re-record (only when a change of outputs is intended)
"""

from __future__ import annotations

import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.testing import make_pixel_lumiere_pipeline, make_sd_pipeline, perturb_temporal

FIXTURE = Path(__file__).parent / "fixtures" / "golden_frames.npz"
PROMPT = "a red circle moving right"


def _latent() -> LumierePipeline:
    pipe = LumierePipeline.from_text_to_image(make_sd_pipeline())
    perturb_temporal(pipe.unet)
    return pipe


def _swap_prompt_at_step_0(pipe, step, timestep, tensors):
    if step == 0:
        return {"prompt_embeds": tensors["prompt_embeds"].flip(1)}
    return {}


def _interrupt_after_step_1(pipe, step, timestep, tensors):
    if step == 1:
        pipe._interrupt = True
    return {}


def cases(vocab_dir: str):
    """``name -> (pipeline factory, call kwargs)``; every call is fp32 with no autocast."""
    common = dict(generator=None, output_type="pt", autocast=False)
    return {
        "pixel_cfg_negative_two_per_prompt": (
            lambda: make_pixel_lumiere_pipeline(vocab_dir),
            dict(
                common,
                prompt=PROMPT,
                num_frames=8,
                num_inference_steps=3,
                negative_prompt="a blue square",
                num_videos_per_prompt=2,
            ),
        ),
        "pixel_callback_swaps_prompt_embeds": (
            lambda: make_pixel_lumiere_pipeline(vocab_dir),
            dict(
                common,
                prompt=[PROMPT, "a blue square"],
                num_frames=8,
                num_inference_steps=3,
                callback_on_step_end=_swap_prompt_at_step_0,
                callback_on_step_end_tensor_inputs=["latents", "prompt_embeds"],
            ),
        ),
        "pixel_interrupted_after_step_1": (
            lambda: make_pixel_lumiere_pipeline(vocab_dir),
            dict(
                common,
                prompt=PROMPT,
                num_frames=8,
                num_inference_steps=4,
                output_type="latent",
                callback_on_step_end=_interrupt_after_step_1,
            ),
        ),
        "latent_cfg": (_latent, dict(common, prompt=PROMPT, num_frames=8, num_inference_steps=3)),
        "latent_no_guidance_latents": (
            _latent,
            dict(common, prompt=PROMPT, num_frames=8, num_inference_steps=3, guidance_scale=1.0, output_type="latent"),
        ),
        "shipped": (
            lambda: LumierePipeline.from_pretrained(default_model_dir(), dtype=torch.float32),
            dict(common, prompt=PROMPT, num_frames=16, num_inference_steps=4, guidance_scale=3.0),
        ),
    }


def run_case(factory, kwargs: dict, seed: int = 0) -> np.ndarray:
    pipe = factory()
    pipe.set_progress_bar_config(disable=True)
    frames = pipe(**{**kwargs, "generator": torch.Generator().manual_seed(seed)}).frames
    return frames.float().numpy()


def machine() -> str:
    """What the recording ran on: fp32 kernels may round differently on other CPUs."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else platform.machine()
    if "amx_tile" in flags:  # an Intel Xeon with AMX rounded fp32 differently (1e-6) from the recording
        isa += "-amx"
    return f"{isa} torch-{torch.__version__} threads-{torch.get_num_threads()}"


def main() -> int:
    with tempfile.TemporaryDirectory() as vocab_dir:
        arrays = {name: run_case(factory, kwargs) for name, (factory, kwargs) in cases(vocab_dir).items()}
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, machine=np.array(machine()), **arrays)
    print(f"wrote {FIXTURE}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())} on {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
