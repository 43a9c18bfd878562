"""Step time and peak memory of `lumiere.training.train` itself, on real shapes-world files.

    python -m benchmarks.bench_training [--steps 6] [--configs test small]

Each setting trains twice in this process, for 2 and for 2 + ``--steps`` steps; the time
per step is the difference over ``--steps``, so loading, the final checkpoint and saving
cancel out. Peak memory is that of the longer run, above what the process held before.

- ``test``: the configuration of tests/test_training.py (the tiny pixel U-Net of
  ``lumiere.testing``, 8 frames of 16x16, batch 1).
- ``small``: the ``small`` U-Net of bench_models (64x64 pixels, widths 32/64/128, text
  width 384), 16 frames, batch 1: the scale planned for the embedded default.
Each in the default mode (temporal layers only), with ``--train-spatial``, and with
gradient checkpointing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
from transformers import BertConfig, BertModel

from lumiere.data.shapes import write_dataset
from lumiere.testing import make_bert, make_pixel_t2i_pipeline
from lumiere.training import TrainConfig, train

from .bench_models import CONFIGS
from .common import device, ensure_malloc_env, measure, save

SETTINGS = {
    "temporal only (default)": {},
    "train spatial": {"train_spatial": True},
    "temporal only, gradient checkpointing": {"gradient_checkpointing": True},
}
SHAPES = {"test": dict(num_frames=8, resolution=16), "small": dict(num_frames=16, resolution=64)}


def _small_t2i(folder: Path) -> None:
    """The ``small`` U-Net with a text encoder of MiniLM's width (random weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    _, tokenizer = make_bert(folder)
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(hidden_size=384, intermediate_size=64, num_attention_heads=4, num_hidden_layers=1,
                                   vocab_size=64, max_position_embeddings=16), add_pooling_layer=False)  # fmt: skip
    IFPipeline(
        unet=UNet2DConditionModel(**CONFIGS["small"]), text_encoder=encoder, tokenizer=tokenizer,
        scheduler=DDPMScheduler(prediction_type="v_prediction"), safety_checker=None, feature_extractor=None,
        watermarker=None, requires_safety_checker=False,
    ).save_pretrained(folder / "t2i")  # fmt: skip


def main() -> None:
    ensure_malloc_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--configs", nargs="+", choices=tuple(SHAPES), default=list(SHAPES))
    args = parser.parse_args()
    dev = device()
    report: dict = {"steps": args.steps, "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_pixel_t2i_pipeline().save_pretrained(root / "test" / "t2i")
        _small_t2i(root / "small")
        for name in args.configs:
            shape = SHAPES[name]
            clips = write_dataset(root / name / "clips", 8, num_frames=shape["num_frames"], size=64, seed=0)
            for label, overrides in SETTINGS.items():

                def run(steps: int, run_dir: str) -> None:
                    train(TrainConfig(
                        pretrained=str(root / name / "t2i"), train_data=str(clips), output_dir=str(root / run_dir),
                        max_train_steps=steps, report_to="none", checkpointing_steps=10_000, **shape, **overrides,
                    ))  # fmt: skip

                short, _ = measure(lambda: run(2, "short"), dev)
                long, peak = measure(lambda: run(2 + args.steps, "long"), dev)
                row = {"config": name, "setting": label, "seconds_per_step": (long - short) / args.steps,
                       "peak_mib": peak, **shape}  # fmt: skip
                print(row, flush=True)
                report["results"].append(row)
                save("training", report)


if __name__ == "__main__":
    main()
