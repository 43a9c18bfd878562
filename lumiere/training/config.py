"""Every training option in one dataclass, readable from YAML and from the command line.

Precedence: dataclass defaults < ``--config FILE.yaml`` < command-line flags. The run
writes the resolved configuration to ``OUTPUT_DIR/config.yaml``, which can be passed back
with ``--config`` to repeat it. Each field's ``help`` is the documentation of the option
(``lumiere train --help`` prints it; docs/training.md lists it).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..conditioning import DEFAULT_MASK_MIX, parse_mask_mix
from ..files import write_text
from ..models.space_time_unet import CONDITIONING_INITS, TemporalOptions
from ..validation import check_finite, check_frame_correlation, check_int, finite_float, seed_int

PREDICTION_TYPES = ("auto", "v_prediction", "epsilon")
MIXED_PRECISION = ("auto", "no", "fp16", "bf16")
MODES = ("video", "image")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
REPORT_TO = ("tensorboard", "none")
TIMESTEP_BIAS = ("none", "later", "earlier")


def _option(default: Any, help: str, choices: Sequence[str] | None = None) -> Any:
    metadata = {"help": help, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig(TemporalOptions):
    """Every training option. The temporal options (``temporal_*``, inherited from
    [`TemporalOptions`]) apply when ``pretrained`` is a text-to-image folder, inflated on
    load; a saved Lumiere pipeline keeps its own."""

    # --- model
    pretrained: str | None = _option(
        None,
        "Folder of the starting pipeline: a diffusers text-to-image pipeline (SD or IF layout, inflated "
        "on load) or a saved LumierePipeline. Required.",
    )
    mode: str = _option(
        "video",
        "'video' trains a Lumiere pipeline on clips; 'image' trains the text-to-image U-Net itself on stills "
        "(the pretraining stage of a model made from scratch).",
        MODES,
    )
    from_scratch: bool = _option(False, "Re-initialize the U-Net weights randomly from its config before training.")
    train_spatial: bool = _option(
        False, "Video mode: also train the pretrained 2D weights (by default only the temporal layers train)."
    )
    lora_rank: int = _option(
        0,
        "Image mode: train a LoRA of this rank on the U-Net's attention projections instead of every weight "
        "(0: no LoRA); the run then saves pytorch_lora_weights.safetensors (e.g. a style for lumiere.stylize).",
    )
    lora_alpha: float | None = _option(
        None, "With lora_rank: the LoRA alpha, its scale being alpha / rank (none: the rank)."
    )
    lora_target_modules: list[str] = _option(
        ["to_q", "to_k", "to_v", "to_out.0"], "With lora_rank: the names of the modules that get a LoRA."
    )
    # --- data
    train_data: str | None = _option(
        None,
        "Folder with metadata.jsonl ({'file_name', 'text'} per line) and the videos (or images); several "
        "folders separated by commas are trained on as one dataset. Required.",
    )
    num_frames: int = _option(16, "Frames per training clip.")
    resolution: int = _option(64, "Training size in pixels (square: resize the short side, then center-crop).")
    frame_stride: int = _option(1, "Take every n-th frame of the source video.")
    fps: float | None = _option(None, "Resample clips to this frame rate instead of using --frame-stride.")
    dataloader_num_workers: int = _option(0, "Data loading worker processes (0: load in the training process).")
    # --- output and checkpoints
    output_dir: str = _option("lumiere-train", "Where checkpoints, logs, validation clips and the final pipeline go.")
    checkpointing_steps: int = _option(500, "Write a checkpoint every this many optimizer steps (and at the end).")
    checkpoints_total_limit: int | None = _option(3, "Keep only the newest N checkpoints (none: keep all).")
    resume: str | None = _option(
        None, "'latest' (newest complete checkpoint in output_dir, if any) or the path of a checkpoint folder."
    )
    overwrite: bool = _option(
        False,
        "Delete what a non-empty output_dir holds (an earlier run) and start afresh; without it, a run into a "
        "non-empty output_dir needs --resume.",
    )
    # --- optimization
    seed: int = _option(
        0, "Seed of new weights (temporal layers, or all from scratch), the data order, noise and timesteps."
    )
    max_train_steps: int = _option(1000, "Optimizer steps to train for.")
    train_batch_size: int = _option(1, "Clips per process per micro-batch.")
    gradient_accumulation_steps: int = _option(1, "Micro-batches per optimizer step.")
    learning_rate: float = _option(1e-4, "Peak AdamW learning rate.")
    lr_scheduler: str = _option("constant_with_warmup", "Learning-rate schedule after warm-up.", LR_SCHEDULERS)
    lr_warmup_steps: int = _option(100, "Linear warm-up from 0, in optimizer steps.")
    adam_beta1: float = _option(0.9, "AdamW beta1.")
    adam_beta2: float = _option(0.999, "AdamW beta2.")
    adam_weight_decay: float = _option(1e-2, "AdamW decoupled weight decay.")
    adam_epsilon: float = _option(1e-8, "AdamW epsilon.")
    max_grad_norm: float = _option(1.0, "Clip the gradient norm to this value (0: no clipping).")
    mixed_precision: str = _option(
        "auto",
        "'auto' uses bf16/fp16 only where the hardware runs it natively (plain fp32 on CPUs without bf16).",
        MIXED_PRECISION,
    )
    gradient_checkpointing: bool = _option(False, "Recompute activations in the backward pass to save memory.")
    # --- diffusion objective
    prediction_type: str = _option(
        "auto",
        "What the U-Net predicts. 'auto': the pretrained scheduler's type, or v_prediction when training from "
        "scratch (frozen 2D layers must keep the type they were trained with).",
        PREDICTION_TYPES,
    )
    snr_gamma: float | None = _option(None, "Min-SNR loss weighting with this gamma (5.0 is usual; none: plain MSE).")
    timestep_bias_strategy: str = _option(
        "none",
        "Draw the noisiest ('later') or cleanest ('earlier') timesteps more often than the others.",
        TIMESTEP_BIAS,
    )
    timestep_bias_portion: float = _option(0.25, "With a bias: the fraction of the timesteps that is favoured.")
    timestep_bias_multiplier: float = _option(1.0, "With a bias: how many times as often a favoured timestep is drawn.")
    noise_frame_correlation: float = _option(
        0.0,
        "Video mode: the correlation of the noise between a clip's frames (PYoCo's mixed noise; 0: independent). "
        "Saved in the pipeline's config, so that sampling draws the same.",
    )
    noise_offset: float = _option(0.0, "Scale of a per-clip, per-channel noise offset, shaped (B, C, 1, 1, 1).")
    text_dropout: float = _option(0.1, "Fraction of captions replaced by '' so classifier-free guidance works.")
    # --- conditional training (<J, C, M>)
    conditioning: bool = _option(
        False,
        "Video mode: train a conditional model, whose U-Net also reads a masked copy of the clip and its mask "
        "(image-to-video, inpainting, cinemagraphs); a U-Net without that input gets it "
        "(SpaceTimeUNet.with_conditioning, started as conditioning_init says), and it trains with the temporal "
        "layers.",
    )
    mask_mix: list[str] = _option(
        list(DEFAULT_MASK_MIX),
        "With conditioning: the kinds of known-pixel masks drawn per clip and their relative weights, KIND:WEIGHT "
        "with KIND one of none, first_frame, first_frames, box, cinemagraph (lumiere.conditioning).",
    )
    conditioning_noise: float = _option(
        0.0,
        "With conditioning: augmentation, Gaussian noise on the known pixels with a standard deviation drawn per "
        "clip in [0, this] (0: none).",
    )
    known_loss_weight: float = _option(
        1.0,
        "With conditioning: the loss on known pixels weighs this many times an unknown pixel's (each clip's "
        "weights normalised to mean 1), so that the model redraws what it is given faithfully (1: plain MSE).",
    )
    known_drift: float = _option(
        0.0,
        "With conditioning: the share of clips whose noise on known pixels also carries a copy of the clip "
        "shifted by up to 2 pixels, so the noisy sample there disagrees with the known pixels and the model "
        "learns to redraw them from those (lumiere.conditioning.drift_known_noise). 0: none.",
    )
    conditioning_init: str = _option(
        "zero",
        "With conditioning, for a U-Net without that input: how it starts. zero: the model predicts exactly what "
        "it did; copy: the masked clip's channels start as conv_in's weights, so the known pixels read as part of "
        "the sample and the model follows them far sooner (SpaceTimeUNet.with_conditioning).",
        CONDITIONING_INITS,
    )
    conditioning_decoder_input: bool = _option(
        False,
        "With conditioning: the U-Net also gets the conditioning's decoder input, a second path from the known "
        "pixels into its last, full-resolution decoder block (zero at first; SpaceTimeUNet's "
        "conditioning_decoder_input). A conditional U-Net without it gets it added, its other weights kept.",
    )
    conditioning_learning_rate: float | None = _option(
        None,
        "With conditioning: peak AdamW learning rate of the conditioning inputs' convs alone (none: "
        "learning_rate). Higher lets a new, zero-initialized input catch up with weights that are already trained.",
    )
    # --- super-resolution training
    super_resolution_scale: int = _option(
        0,
        "Train a spatial super-resolution model (pixel space): the U-Net also reads the clip (or still) shrunk this "
        "many times per side, noised to an augmentation level and upsampled back, on extra input channels, and the "
        "level as class_labels (a 2D U-Net with twice the output's input channels and class_embed_type "
        "'timestep'; lumiere.super_resolution). 0: a text-to-video or text-to-image model.",
    )
    super_resolution_noise_level: int = _option(
        250,
        "With super_resolution_scale: the augmentation level of the low-resolution input is drawn per clip in "
        "[0, this] (levels index the noise schedule's 1,000 steps).",
    )
    super_resolution_residual: bool = _option(
        False,
        "With super_resolution_scale: diffuse the clip minus its clean input upsampled bicubically (the pipeline "
        "adds the upsample back after sampling) instead of the clip itself; flat regions are zero in the residual.",
    )
    # --- progressive distillation
    distill_teacher: str | None = _option(
        None,
        "Folder of a saved LumierePipeline to distill (lumiere.distillation): the U-Net being trained learns to do "
        "in one DDIM step what this teacher does in two, guided, on its grid of distill_teacher_steps steps, so it "
        "samples in half the steps. A U-Net without a guidance input gets one (guidance_embedding_dim wide, zero "
        "at init) and then makes the guided prediction in one pass. Needs train_spatial. None: ordinary training.",
    )
    distill_teacher_steps: int = _option(
        16, "With distill_teacher: the teacher's DDIM steps (even); the trained U-Net samples with half as many."
    )
    distill_guidance_scale_max: float = _option(
        5.0,
        "With distill_teacher: each clip's guidance scale is drawn in [1, this], and the trained U-Net learns the "
        "teacher's prediction at that scale.",
    )
    guidance_embedding_dim: int = _option(
        256, "With distill_teacher: the width of the guidance-scale input given to a U-Net that has none."
    )
    # --- EMA
    use_ema: bool = _option(False, "Keep an exponential moving average of the trained weights; it is what gets saved.")
    ema_decay: float = _option(0.9999, "Maximum EMA decay (reached after a warm-up that follows the step count).")
    # --- validation and logging
    validation_prompts: list[str] = _option([], "Prompts sampled at every validation (none: no validation).")
    validation_steps: int = _option(500, "Validate every this many optimizer steps (and at the end).")
    validation_num_inference_steps: int = _option(25, "Sampling steps of validation clips.")
    validation_guidance_scale: float = _option(7.5, "Classifier-free guidance of validation clips.")
    report_to: str = _option(
        "tensorboard", "Where loss and learning rate are logged (under output_dir/logs).", REPORT_TO
    )

    def __post_init__(self) -> None:
        self._check_types()
        check_int("seed", self.seed, 0, 2**64 - 1)
        positive = ("num_frames", "resolution", "frame_stride", "max_train_steps", "train_batch_size",
                    "gradient_accumulation_steps", "checkpointing_steps", "validation_steps")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is invalid; it must be at least 1")
        for spec in dataclasses.fields(self):
            choices = spec.metadata["choices"]
            if choices and getattr(self, spec.name) not in choices:
                raise ValueError(
                    f"{spec.name}={getattr(self, spec.name)!r} is invalid; choose one of {', '.join(choices)}"
                )
        if not 0 <= self.text_dropout < 1:
            raise ValueError(f"text_dropout={self.text_dropout} is invalid; it must be in [0, 1)")
        check_frame_correlation(self.noise_frame_correlation)
        if self.mode == "image" and self.noise_frame_correlation:
            raise ValueError(
                f"noise_frame_correlation={self.noise_frame_correlation} is invalid in mode='image'; "
                "images have no frames"
            )
        if not 0 < self.timestep_bias_portion <= 1:
            raise ValueError(f"timestep_bias_portion={self.timestep_bias_portion} is invalid; it must be in (0, 1]")
        if self.timestep_bias_multiplier <= 0:
            raise ValueError(
                f"timestep_bias_multiplier={self.timestep_bias_multiplier} is invalid; it must be positive"
            )
        parse_mask_mix(self.mask_mix)
        check_int("lora_rank", self.lora_rank, 0)
        if self.lora_rank and self.mode != "image":
            raise ValueError(f"lora_rank={self.lora_rank} trains a text-to-image LoRA; it needs mode='image'")
        if self.lora_rank and self.from_scratch:
            raise ValueError(f"lora_rank={self.lora_rank} adapts pretrained weights; it cannot be from_scratch")
        if self.lora_alpha is not None:
            check_finite("lora_alpha", self.lora_alpha)
            if self.lora_alpha <= 0:
                raise ValueError(f"lora_alpha={self.lora_alpha} is invalid; it must be positive or none")
        if self.lora_rank and not self.lora_target_modules:
            raise ValueError("lora_target_modules is empty; name at least one module, e.g. to_q")
        check_finite("conditioning_noise", self.conditioning_noise, low=0.0)
        check_finite("known_loss_weight", self.known_loss_weight, low=0.0)
        if self.known_loss_weight == 0:
            raise ValueError("known_loss_weight=0 leaves a clip that is all known without a loss; use a value > 0")
        if self.known_loss_weight != 1.0 and not self.conditioning:
            raise ValueError(f"known_loss_weight={self.known_loss_weight} needs conditioning=True (known pixels)")
        check_finite("known_drift", self.known_drift, low=0.0)
        if self.known_drift > 1:
            raise ValueError(f"known_drift={self.known_drift} is a share of clips; use a value in [0, 1]")
        if self.conditioning_learning_rate is not None:
            rate = self.conditioning_learning_rate
            check_finite("conditioning_learning_rate", rate)
            if rate <= 0:
                raise ValueError(f"conditioning_learning_rate={rate} is invalid; it must be positive or none")
            if not self.conditioning:
                raise ValueError(f"conditioning_learning_rate={rate} needs conditioning=True (known pixels)")
        if self.conditioning_decoder_input and not self.conditioning:
            raise ValueError("conditioning_decoder_input=True needs conditioning=True (known pixels)")
        if self.known_drift and not self.conditioning:
            raise ValueError(f"known_drift={self.known_drift} needs conditioning=True (known pixels)")
        if self.conditioning and self.mode == "image":
            raise ValueError("conditioning=True trains a video model; it needs mode='video'")
        check_int("super_resolution_scale", self.super_resolution_scale, 0)
        check_int("super_resolution_noise_level", self.super_resolution_noise_level, 0, 999)
        if self.super_resolution_residual and not self.super_resolution_scale:
            raise ValueError("super_resolution_residual=True needs super_resolution_scale (a super-resolution model)")
        if self.super_resolution_scale:
            if self.conditioning:
                raise ValueError("super_resolution_scale and conditioning cannot be combined; choose one")
            if self.resolution % self.super_resolution_scale:
                raise ValueError(
                    f"resolution={self.resolution} is not a multiple of super_resolution_scale="
                    f"{self.super_resolution_scale}"
                )
            if self.validation_prompts:
                raise ValueError(
                    "validation_prompts are text-to-video samples, which a super-resolution model does not make; "
                    "leave them empty and score it with python -m lumiere.eval.super_resolution"
                )
        check_int("distill_teacher_steps", self.distill_teacher_steps, 2)
        if self.distill_teacher_steps % 2:
            raise ValueError(f"distill_teacher_steps={self.distill_teacher_steps} is invalid; it must be even")
        check_finite("distill_guidance_scale_max", self.distill_guidance_scale_max, low=1.0)
        check_int("guidance_embedding_dim", self.guidance_embedding_dim, 1)
        if self.distill_teacher is not None:
            if self.mode != "video" or not self.train_spatial:
                raise ValueError(
                    "distill_teacher trains the whole video U-Net (the step it learns is not the temporal layers' "
                    "alone); it needs mode='video' and train_spatial=True"
                )
            for name in ("conditioning", "super_resolution_scale"):
                if getattr(self, name):
                    raise ValueError(f"distill_teacher distills a text-to-video model; {name} must be off")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(
                f"checkpoints_total_limit={self.checkpoints_total_limit} is invalid; use at least 1 or none"
            )

    def _check_types(self) -> None:
        """Each value has its field's type (a YAML file can hold anything), and every number
        is finite."""
        for spec in dataclasses.fields(self):
            value, kind = getattr(self, spec.name), _base_type(type(self), spec.name)
            if value is None and _optional(type(self), spec.name):
                continue
            if kind is float:
                check_finite(spec.name, value)
            elif kind is int:
                check_int(spec.name, value, -(2**63))
            elif kind in (bool, str) and not isinstance(value, kind):
                raise ValueError(f"{spec.name} must be a {kind.__name__}; got {value!r}")

    def check_required(self) -> None:
        """The options with no default; checked when training starts, not when parsing a partial file."""
        for name in ("pretrained", "train_data"):
            if getattr(self, name) is None:
                raise ValueError(f"{name} is required (--{name.replace('_', '-')} or in the --config file)")

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"config file {str(path)!r} must hold a mapping of option: value")
        known = {spec.name for spec in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config file {str(path)!r} has unknown options {unknown}")
        return cls(**{**values, **overrides})

    def to_yaml(self, path: str | Path, overwrite: bool = False) -> None:
        write_text(path, yaml.safe_dump(dataclasses.asdict(self), sort_keys=False), overwrite)


def _optional(options: type, name: str) -> bool:
    """Whether a field's annotation admits None."""
    hint = typing.get_type_hints(options)[name]
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _base_type(options: type, name: str) -> Any:
    """The non-None type of a field's annotation."""
    hint = typing.get_type_hints(options)[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def parse_flags(text: str) -> list[bool] | bool:
    """``1,1,0``-style flags (also true/false), or ``all`` / ``none`` for True / False."""
    if text.strip().lower() in ("all", "none"):
        return text.strip().lower() == "all"
    flags = [part.strip().lower() for part in text.split(",")]
    if not all(flag in ("1", "0", "true", "false") for flag in flags):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated 1/0 flags such as 1,1,0, or all / none; got {text!r}"
        )
    return [flag in ("1", "true") for flag in flags]


def add_option_flags(parser: argparse.ArgumentParser, options: type) -> None:
    """One ``--kebab-case`` flag per field of the dataclass ``options``, its help from the
    field's metadata. Defaults are left unset so that only flags given on the command line
    override (a config file, or the callee's defaults)."""
    for spec in dataclasses.fields(options):
        kind = _base_type(options, spec.name)
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        flag = "--" + spec.name.replace("_", "-")
        help = f"{spec.metadata['help']} (default: {default})"
        common = dict(dest=spec.name, default=argparse.SUPPRESS, help=help)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif typing.get_args(kind) == (bool,):  # a flag per level
            parser.add_argument(flag, type=parse_flags, metavar="FLAGS", **common)
        elif typing.get_origin(kind) is list:
            parser.add_argument(flag, nargs="*", metavar="TEXT", **common)
        elif spec.metadata["choices"]:
            parser.add_argument(flag, choices=spec.metadata["choices"], **common)
        else:
            parse = {float: finite_float, int: seed_int if spec.name == "seed" else int}.get(kind, kind)
            parser.add_argument(flag, type=parse, metavar={int: "N", float: "X"}.get(kind, "TEXT"), **common)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE.yaml`` and one flag per [`TrainConfig`] option."""
    parser.add_argument("--config", type=Path, default=None, help="YAML file of options (flags override it)")
    add_option_flags(parser, TrainConfig)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    overrides = {
        spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TrainConfig) if hasattr(args, spec.name)
    }
    if args.config is not None:
        return TrainConfig.from_yaml(args.config, **overrides)
    return TrainConfig(**overrides)


def options_table() -> str:
    """Every option as a Markdown table (the reference section of docs/training.md)."""
    rows = ["| option | flag | default | meaning |", "|---|---|---|---|"]
    for spec in dataclasses.fields(TrainConfig):
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        choices = f" One of: {', '.join(spec.metadata['choices'])}." if spec.metadata["choices"] else ""
        flag = "--" + spec.name.replace("_", "-")
        rows.append(f"| `{spec.name}` | `{flag}` | `{default}` | {spec.metadata['help']}{choices} |")
    return "\n".join(rows) + "\n"
