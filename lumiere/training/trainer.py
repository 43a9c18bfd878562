"""The training loop: one function, [`train`], for one process or many under
``accelerate launch``.

Reproducibility is by construction, not by saved random state: the data order of an
epoch, the clip start inside a video, the noise, the timesteps and the caption dropout of
a micro-batch are all drawn from generators seeded by ``(seed, epoch, position, rank)``.
A run resumed from a checkpoint therefore draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import ProjectConfiguration, parse_flag_from_env
from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from peft import LoraConfig
from peft.utils import set_peft_model_state_dict
from safetensors.torch import load_file
from torch.utils.data import ConcatDataset, DataLoader, Sampler
from tqdm.auto import tqdm

from .. import super_resolution
from ..codec import encode_pixels, encode_text
from ..conditioning import conditioning_input, drift_known_noise, parse_mask_mix, sample_known_masks
from ..data import ImageFolderDataset, VideoFolderDataset
from ..distillation import step_grid, two_step_target
from ..files import update_folder
from ..models.space_time_unet import TEMPORAL_OPTIONS, SpaceTimeUNet
from ..performance import fast_autocast_dtype
from ..pipelines import LumierePipeline, LumiereSuperResolutionPipeline
from ..pipelines.folders import is_video_pipeline, load_local, read_model_index
from ..pipelines.sampling import Branch, guide
from ..stylize import LORA_FILE
from ..video import save_contact_sheet, save_video
from . import checkpoints
from .config import TrainConfig
from .objective import diffusion_loss, resolve_prediction_type, sample_noise, sample_timesteps

logger = get_logger("lumiere.train")


@dataclass
class TrainResult:
    """What one process ends with: its step count, its (unwrapped) U-Net with the raw
    trained weights, and the loss of every optimizer step it ran (averaged over ranks)."""

    global_step: int
    unet: torch.nn.Module
    is_main_process: bool
    losses: list[float] = field(default_factory=list)


class EpochShuffleSampler(Sampler[int]):
    """A permutation of the dataset that depends only on ``(seed, epoch)``, so every rank
    shuffles alike (accelerate shards the batches) and a resumed run repeats it."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(_mix(self.seed, "order", self.epoch))
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def _mix(*parts: Any) -> int:
    """A 63-bit seed from any tuple of values (``hash`` is salted per process)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _mixed_precision(requested: str) -> str:
    if requested != "auto":
        return requested
    # Decided before the Accelerator exists; creating a PartialState here would fix the
    # distributed setup too early (a CPU launch would then not become multi-process).
    on_cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    dtype = fast_autocast_dtype(torch.device("cpu" if on_cpu else "cuda"))
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "no")


@dataclass
class _Components:
    """The pipeline being trained, taken apart: ``unet`` trains, the rest stay frozen."""

    unet: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: Any
    scheduler: Any
    vae: torch.nn.Module | None
    source: DiffusionPipeline  # saved again, with the trained U-Net, at the end
    teacher: torch.nn.Module | None = None  # the frozen U-Net being distilled (distill_teacher)


def _load(config: TrainConfig) -> _Components:
    folder = Path(config.pretrained)
    is_lumiere = is_video_pipeline(read_model_index(folder, "pretrained"))
    torch.manual_seed(config.seed)  # new weights: the temporal layers of an inflation, or all from scratch
    if config.mode == "image":
        if is_lumiere:
            raise ValueError(
                f"mode='image' trains a text-to-image U-Net, but {config.pretrained!r} is a LumierePipeline"
            )
        source = load_local(folder, lambda: DiffusionPipeline.from_pretrained(folder))
    elif is_lumiere:
        source = LumierePipeline.from_pretrained(folder)
    else:
        temporal_options = {name: getattr(config, name) for name in TEMPORAL_OPTIONS}
        source = LumierePipeline.from_text_to_image(folder, **temporal_options)
    parts = source.components
    unet = parts["unet"].float()
    if config.from_scratch:
        unet = type(unet).from_config(unet.config)
    missing_decoder_input = config.conditioning_decoder_input and not unet.config.conditioning_decoder_input
    if config.conditioning and (not unet.config.conditioning_channels or missing_decoder_input):
        unet = unet.with_conditioning(init=config.conditioning_init, decoder_input=config.conditioning_decoder_input)
    teacher = None
    if config.distill_teacher is not None:
        teacher = LumierePipeline.from_pretrained(config.distill_teacher).unet.float().requires_grad_(False).eval()
        if unet.guidance_embedding_dim is None:
            unet = unet.with_guidance_embedding(config.guidance_embedding_dim)
    components = (parts["text_encoder"], parts["tokenizer"], parts["scheduler"], parts.get("vae"), source)
    return _Components(unet, *components, teacher)


def _select_trainable(unet: torch.nn.Module, config: TrainConfig) -> list[torch.nn.Parameter]:
    if config.lora_rank:
        unet.requires_grad_(False)
        unet.add_adapter(  # its new weights alone require grad
            LoraConfig(
                r=config.lora_rank, lora_alpha=config.lora_alpha or config.lora_rank,
                target_modules=list(config.lora_target_modules), init_lora_weights="gaussian",
            )
        )  # fmt: skip
    elif config.mode == "image" or config.train_spatial:
        unet.requires_grad_(True)
    else:
        unet.requires_grad_(False)
        for parameter in (*unet.temporal_parameters(), *unet.conditioning_parameters()):
            parameter.requires_grad_(True)
    return [parameter for parameter in unet.parameters() if parameter.requires_grad]


def _parameter_groups(unet: torch.nn.Module, trainable: list[torch.nn.Parameter], config: TrainConfig) -> list[dict]:
    """AdamW's groups: the conditioning inputs' convs at ``conditioning_learning_rate``
    when it is set, every other trainable weight at ``learning_rate``."""
    if config.conditioning_learning_rate is None:
        return [{"params": trainable}]
    own = {id(parameter) for parameter in unet.conditioning_parameters()}
    groups = [
        {"params": [p for p in trainable if id(p) not in own]},
        {"params": [p for p in trainable if id(p) in own], "lr": config.conditioning_learning_rate},
    ]
    return [group for group in groups if group["params"]]


class _FolderUnion(ConcatDataset):
    """Several training folders as one dataset; :meth:`set_epoch` reaches every folder."""

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)


def _dataset(config: TrainConfig) -> torch.utils.data.Dataset:
    def folder(root: str) -> torch.utils.data.Dataset:
        if config.mode == "image":
            return ImageFolderDataset(root, size=config.resolution)
        return VideoFolderDataset(
            root, num_frames=config.num_frames, size=config.resolution,
            frame_stride=config.frame_stride, fps=config.fps, seed=config.seed,
        )  # fmt: skip

    parts = [folder(root) for root in config.train_data.split(",")]
    return parts[0] if len(parts) == 1 else _FolderUnion(parts)


def train(config: TrainConfig) -> TrainResult:
    """Train as ``config`` says; see docs/training.md. Returns this process's result."""
    config.check_required()
    output_dir = Path(config.output_dir)
    checkpoints.check_output_dir(output_dir, config.resume, config.overwrite)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=_mixed_precision(config.mixed_precision),
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    if config.mode == "video" and config.from_scratch and not config.train_spatial:
        raise ValueError("from_scratch=True in video mode re-initializes the 2D layers, so it needs train_spatial=True")

    parts = _load(config)
    unet, vae, text_encoder = parts.unet, parts.vae, parts.text_encoder
    if config.super_resolution_scale and vae is not None:
        raise ValueError(f"super_resolution_scale trains a pixel-space model; {config.pretrained!r} has a VAE")
    prediction_type = resolve_prediction_type(
        config.prediction_type, parts.scheduler.config.prediction_type, config.from_scratch
    )
    sampling_scheduler = type(parts.scheduler).from_config(parts.scheduler.config, prediction_type=prediction_type)
    noise_scheduler = DDPMScheduler.from_config(sampling_scheduler.config)
    trainable = _select_trainable(unet, config)
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    for frozen in (text_encoder, vae, parts.teacher):
        if frozen is not None:
            frozen.requires_grad_(False).eval().to(accelerator.device)
    if parts.teacher is not None:
        # The steps the student learns are DDIM's on the sampler's schedule, its last landing
        # where the sampler's does (final_alpha_cumprod).
        ddim = DDIMScheduler.from_config(sampling_scheduler.config)
        grid = step_grid(ddim, config.distill_teacher_steps, accelerator.device)

    dataset = _dataset(config)
    sampler = EpochShuffleSampler(len(dataset), config.seed)
    loader = DataLoader(
        dataset, batch_size=config.train_batch_size, sampler=sampler, num_workers=config.dataloader_num_workers
    )
    optimizer = torch.optim.AdamW(
        _parameter_groups(unet, trainable, config), lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2), weight_decay=config.adam_weight_decay, eps=config.adam_epsilon,
    )  # fmt: skip
    # The prepared scheduler steps once per process per optimizer step.
    lr_scheduler = get_scheduler(
        config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_train_steps * accelerator.num_processes,
    )  # fmt: skip
    ema = EMAModel(trainable, decay=config.ema_decay, use_ema_warmup=True) if config.use_ema else None
    if ema is not None:
        accelerator.register_for_checkpointing(ema)
    _register_diffusers_format(accelerator, ema, trainable)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader, lr_scheduler)
    if ema is not None:
        ema.to(accelerator.device)

    epoch, position, global_step = 0, 0, 0
    if accelerator.is_main_process:
        if config.overwrite:
            checkpoints.clear(output_dir)
        checkpoints.remove_partial(output_dir)
    accelerator.wait_for_everyone()
    resume_from = checkpoints.resolve_resume(config.resume, output_dir)
    if resume_from is not None:
        accelerator.load_state(str(resume_from))
        state = checkpoints.read_state(resume_from)
        epoch, position, global_step = state["epoch"], state["position"], state["global_step"]
        logger.info(f"resumed from {resume_from} at step {global_step}")
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        # overwrite is what this invocation did to the folder, not part of the run's recipe:
        # kept, it would clear the run again when the file is passed back with --resume.
        dataclasses.replace(config, overwrite=False).to_yaml(output_dir / "config.yaml", overwrite=True)
        accelerator.init_trackers("lumiere", config={k: str(v) for k, v in asdict(config).items()})

    def save_checkpoint() -> None:
        final = checkpoints.checkpoint_dir(output_dir, global_step)
        temporary = checkpoints.temporary_dir(final)
        accelerator.save_state(str(temporary))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            checkpoints.finalize(temporary, final, {"global_step": global_step, "epoch": epoch, "position": position})
            checkpoints.prune(output_dir, config.checkpoints_total_limit)
        accelerator.wait_for_everyone()

    def validate() -> None:
        if config.validation_prompts and accelerator.is_main_process:
            with _ema_weights(ema, trainable):
                _validate(config, parts, accelerator.unwrap_model(unet), sampling_scheduler, global_step)
        accelerator.wait_for_everyone()

    batches = len(loader)
    losses: list[float] = []
    step_losses: list[torch.Tensor] = []
    progress = tqdm(
        total=config.max_train_steps, initial=global_step, desc="train", disable=not accelerator.is_local_main_process
    )
    unet.train()
    while global_step < config.max_train_steps:
        if position >= batches:
            epoch, position = epoch + 1, 0
        loader.set_epoch(epoch)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        epoch_batches = accelerator.skip_first_batches(loader, position) if position else loader
        for batch in epoch_batches:
            position += 1
            generator = torch.Generator().manual_seed(
                _mix(config.seed, "step", epoch, position, accelerator.process_index)
            )
            with accelerator.accumulate(unet):
                if parts.teacher is None:
                    loss = _loss(
                        batch, unet, vae, text_encoder, parts.tokenizer, noise_scheduler, config, generator,
                        accelerator.device,
                    )  # fmt: skip
                else:
                    with accelerator.autocast():  # the teacher too runs in the mixed precision
                        loss = _distillation_loss(batch, unet, parts, ddim, grid, config, generator, accelerator.device)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_losses.append(accelerator.gather(loss.detach()).mean())
            if not accelerator.sync_gradients:
                continue
            if ema is not None:
                ema.step(trainable)
            global_step += 1
            losses.append(torch.stack(step_losses).mean().item())
            step_losses.clear()
            learning_rate = lr_scheduler.get_last_lr()[0]
            accelerator.log({"loss": losses[-1], "lr": learning_rate}, step=global_step)
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{learning_rate:.2e}")
            done = global_step >= config.max_train_steps
            if global_step % config.checkpointing_steps == 0 or done:
                save_checkpoint()
            if global_step % config.validation_steps == 0 or done:
                validate()
            if done:
                break
    progress.close()

    unwrapped = accelerator.unwrap_model(unet)
    if accelerator.is_main_process:
        with _ema_weights(ema, trainable):
            _save_pipeline(config, parts, unwrapped, sampling_scheduler, output_dir)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    result = TrainResult(global_step, unwrapped, accelerator.is_main_process, losses)
    if accelerator.num_processes == 1:
        # accelerate keeps its state per process and refuses a second Accelerator with other
        # settings (e.g. mixed precision); a single process may train again (a recipe's
        # stages, a notebook). Distributed state stays: it owns the process group.
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
    return result


def _loss(
    batch: dict[str, Any],
    unet: torch.nn.Module,
    vae: torch.nn.Module | None,
    text_encoder: torch.nn.Module,
    tokenizer: Any,
    scheduler: DDPMScheduler,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The loss of one micro-batch; every random draw comes from ``generator``."""
    pixels = batch["pixel_values"].to(device)
    clean = encode_pixels(vae, pixels, generator)
    batch_size = clean.shape[0]
    noise = sample_noise(
        tuple(clean.shape), config.noise_offset, generator, device, clean.dtype, config.noise_frame_correlation
    )
    timesteps = sample_timesteps(
        batch_size, scheduler.config.num_train_timesteps, generator, config.timestep_bias_strategy,
        config.timestep_bias_portion, config.timestep_bias_multiplier,
    ).to(device)  # fmt: skip
    dropped = torch.rand(batch_size, generator=generator) < config.text_dropout
    captions = ["" if drop else text for text, drop in zip(batch["text"], dropped.tolist())]
    with torch.no_grad():
        context = encode_text(text_encoder, tokenizer, captions, device)
    if config.conditioning:
        # Drawn after everything else, so an unconditional run's draws are unchanged.
        known, _ = sample_known_masks(batch_size, *clean.shape[2:], parse_mask_mix(config.mask_mix), generator)
        sigma = torch.rand(batch_size, generator=generator) * config.conditioning_noise
        condition = conditioning_input(clean, known, sigma, generator)
        noise = drift_known_noise(clean, noise, known, config.known_drift, generator)
    if config.super_resolution_scale:
        low = super_resolution.downsample(clean, config.super_resolution_scale)
        if config.super_resolution_residual:
            clean = clean - super_resolution.residual_base(low, clean.shape[-2:])
    noisy = scheduler.add_noise(clean, noise, timesteps)
    if config.conditioning:
        noisy = torch.cat([noisy, condition], dim=1)
    pixel_weight = None
    if config.conditioning and config.known_loss_weight != 1.0:
        pixel_weight = 1.0 + (config.known_loss_weight - 1.0) * known.to(device)
    model_kwargs = {}
    if config.super_resolution_scale:
        level = torch.randint(0, config.super_resolution_noise_level + 1, (batch_size,), generator=generator)
        noisy = torch.cat([noisy, super_resolution.conditioning(low, clean.shape[-2:], level, scheduler, generator)], 1)
        model_kwargs["class_labels"] = level.to(device)
    output = unet(noisy, timesteps, encoder_hidden_states=context, return_dict=False, **model_kwargs)[0]
    return diffusion_loss(output, clean, noise, timesteps, scheduler, config.snr_gamma, pixel_weight)


def _distillation_loss(
    batch: dict[str, Any],
    unet: torch.nn.Module,
    parts: _Components,
    scheduler: DDIMScheduler,
    grid: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The loss of one micro-batch of progressive distillation (:mod:`lumiere.distillation`):
    each clip noised to a step of the student's grid (every other step of the teacher's
    ``grid``) at a guidance scale drawn in ``[1, distill_guidance_scale_max]``, and the
    student's output set against the one whose DDIM step lands where the teacher's two do.
    Every random draw comes from ``generator``."""
    clean = encode_pixels(parts.vae, batch["pixel_values"].to(device), generator)
    batch_size = clean.shape[0]
    noise = sample_noise(
        tuple(clean.shape), config.noise_offset, generator, device, clean.dtype, config.noise_frame_correlation
    )
    pair = 2 * torch.randint(0, (len(grid) - 1) // 2, (batch_size,), generator=generator).to(device)
    t, mid, s = grid[pair], grid[pair + 1], grid[pair + 2]
    scale = 1 + torch.rand(batch_size, generator=generator) * (config.distill_guidance_scale_max - 1)
    with torch.no_grad():
        context = encode_text(parts.text_encoder, parts.tokenizer, list(batch["text"]), device)
        empty = encode_text(parts.text_encoder, parts.tokenizer, [""] * batch_size, device)
    noisy = scheduler.add_noise(clean, noise, t)
    teacher = guide(parts.teacher, scheduler, scale.to(device), Branch(context), Branch(empty))
    target = two_step_target(teacher, scheduler, noisy, t, mid, s)
    student = getattr(unet, "module", unet)  # its attributes, under a DistributedDataParallel wrapper
    timestep_cond = student.guidance_condition(scale.to(device))
    output = unet(noisy, t, encoder_hidden_states=context, timestep_cond=timestep_cond, return_dict=False)[0]
    return torch.nn.functional.mse_loss(output.float(), target.float())


@contextmanager
def _ema_weights(ema: EMAModel | None, parameters: list[torch.nn.Parameter]) -> Iterator[None]:
    """Within the block the trained parameters hold their EMA (no-op without EMA)."""
    if ema is None:
        yield
        return
    ema.store(parameters)
    ema.copy_to(parameters)
    try:
        yield
    finally:
        ema.restore(parameters)


def _has_lora(unet: torch.nn.Module) -> bool:
    return bool(getattr(unet, "peft_config", None))


def _save_unet(unet: torch.nn.Module, folder: str) -> None:
    """The U-Net in diffusers format; a LoRA run saves only the LoRA (``LORA_FILE``, with
    its rank, alpha and targets in the file's metadata)."""
    if _has_lora(unet):
        unet.save_lora_adapter(folder)
    else:
        unet.save_pretrained(folder)


def _register_diffusers_format(accelerator: Accelerator, ema: EMAModel | None, trainable: list) -> None:
    """Checkpoints hold the U-Net in diffusers format (``unet/``, and ``unet_ema/`` with
    EMA: loadable with ``from_pretrained``) instead of accelerate's own weights file."""

    def save(models: list, weights: list, folder: str) -> None:
        for model in models:
            if accelerator.is_main_process:
                unwrapped = accelerator.unwrap_model(model)
                _save_unet(unwrapped, os.path.join(folder, "unet"))
                if ema is not None:
                    with _ema_weights(ema, trainable):
                        _save_unet(unwrapped, os.path.join(folder, "unet_ema"))
            if weights:
                weights.pop()

    def load(models: list, folder: str) -> None:
        while models:
            model = accelerator.unwrap_model(models.pop())
            if _has_lora(model):
                set_peft_model_state_dict(model, load_file(os.path.join(folder, "unet", LORA_FILE)))
            else:
                saved = type(model).from_pretrained(os.path.join(folder, "unet"))
                model.load_state_dict(saved.state_dict())

    accelerator.register_save_state_pre_hook(save)
    accelerator.register_load_state_pre_hook(load)


def _pipeline(parts: _Components, unet: torch.nn.Module, scheduler: Any, config: TrainConfig) -> DiffusionPipeline:
    """The pipeline that samples with ``unet``: a Lumiere pipeline for video; for image
    mode, the same with the 2D U-Net inflated without temporal resampling (an inflated
    U-Net is the 2D one until its temporal layers train), sampling single frames."""
    if _has_lora(unet):  # the 2D U-Net with its LoRA merged, the trained one untouched
        merged = copy.deepcopy(unet)
        merged.fuse_lora()
        merged.unload_lora()
        unet = merged
    if config.mode == "image":
        unet = SpaceTimeUNet.from_unet2d(unet, temporal_downsample=False)
    components = dict(
        unet=unet, scheduler=scheduler, text_encoder=parts.text_encoder, tokenizer=parts.tokenizer, vae=parts.vae,
        noise_frame_correlation=config.noise_frame_correlation,
    )  # fmt: skip
    if config.super_resolution_scale:
        return LumiereSuperResolutionPipeline(
            **components, super_resolution_scale=config.super_resolution_scale,
            super_resolution_residual=config.super_resolution_residual,
        )  # fmt: skip
    return LumierePipeline(**components)


@torch.no_grad()
def _validate(config: TrainConfig, parts: _Components, unet: torch.nn.Module, scheduler: Any, step: int) -> None:
    was_training = unet.training
    pipeline = _pipeline(parts, unet.eval(), scheduler, config)
    pipeline.set_progress_bar_config(disable=True)
    folder = Path(config.output_dir) / "validation" / f"step-{step:06d}"
    folder.mkdir(parents=True, exist_ok=True)
    num_frames = 1 if config.mode == "image" else config.num_frames
    for index, prompt in enumerate(config.validation_prompts):
        video = pipeline(
            prompt, num_frames=num_frames, height=config.resolution, width=config.resolution,
            num_inference_steps=config.validation_num_inference_steps,
            guidance_scale=config.validation_guidance_scale,
            generator=torch.Generator().manual_seed(config.seed + index), output_type="np",
        ).frames[0]  # fmt: skip
        path = folder / f"{index:02d}-{''.join(char if char.isalnum() else '-' for char in prompt)[:48]}"
        # A resumed run validates again at the steps it repeats.
        if num_frames > 1:
            save_video(video, path.with_suffix(".mp4"), overwrite=True)
        save_contact_sheet(video, path.with_suffix(".png"), overwrite=True)
    unet.train(was_training)


def _save_pipeline(
    config: TrainConfig, parts: _Components, unet: torch.nn.Module, scheduler: Any, output_dir: Path
) -> None:
    """The trained pipeline (EMA weights when kept) in ``output_dir``, loadable with
    ``DiffusionPipeline.from_pretrained``: the source text-to-image pipeline class in image
    mode, a LumierePipeline in video mode. It is written beside the run's checkpoints and
    logs, into a temporary folder whose entries then replace the previous pipeline's."""
    if _has_lora(unet):
        update_folder(output_dir, partial(_save_unet, unet))
        return
    if config.mode == "image":
        pipeline = parts.source
        pipeline.register_modules(unet=unet, scheduler=scheduler)
    else:
        pipeline = _pipeline(parts, unet, scheduler, config)
    update_folder(output_dir, pipeline.save_pretrained)
