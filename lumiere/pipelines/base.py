"""What every Lumiere pipeline shares: its components, prompt encoding, initial noise, the
VAE codec, input checks, the guided denoising run with callbacks, and the output.

A pipeline is a subclass that prepares its own inputs (a conditioning video, a start step,
windows) and calls these pieces; docs/architecture.md ("Pipelines") shows how.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import PIL.Image
import torch
from accelerate import PartialState
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.schedulers import KarrasDiffusionSchedulers, SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.video_processor import VideoProcessor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..codec import decode_latents, encode_pixels, encode_text
from ..files import atomic_dir
from ..memory import check_fits
from ..models.space_time_unet import SpaceTimeUNet
from ..noise import video_noise
from ..performance import compute_dtype, fast_autocast
from ..validation import check_finite, check_frame_correlation, check_int, check_multiple, check_text
from .checks import Callback, callback_names, check_callback_result, check_embeds, check_finite_latents
from .folders import check_video_pipeline, load_local
from .sampling import Branch, Guidance, ModelFn, denoise, guide, schedule, step_kwargs
from .windows import NOISES, TemporalMultiDiffusion, shuffle_window_noise, temporal_windows, window_weights

OUTPUT_TYPES = ("np", "pt", "pil", "latent")

# The sampling arguments every pipeline takes, by the names LumierePipeline gives them, and
# their defaults; [`LumiereBasePipeline.prepare`] and [`LumiereBasePipeline.finish`] read them.
SAMPLING_OPTIONS: dict[str, Any] = dict(
    height=None, width=None, num_inference_steps=50, guidance_scale=7.5, negative_prompt=None,
    num_videos_per_prompt=1, eta=0.0, generator=None, latents=None, prompt_embeds=None,
    negative_prompt_embeds=None, output_type="np", return_dict=True, cross_attention_kwargs=None,
    callback_on_step_end=None, callback_on_step_end_tensor_inputs=("latents",), decode_chunk_size=16,
    autocast=False, check_memory=True, window_size=None, window_stride=None, window_weighting="flat",
    window_noise="independent", window_batch_size=1, distribute_windows=False,
)  # fmt: skip


def first_generator(generator: torch.Generator | list[torch.Generator] | None) -> torch.Generator | None:
    """The generator of draws made once per call rather than per video (one per video given:
    the first)."""
    return generator[0] if isinstance(generator, list) else generator


def merge_options(pipeline: Any, options: dict[str, Any], allowed: dict[str, Any] = SAMPLING_OPTIONS) -> dict[str, Any]:
    """``options`` over the defaults ``allowed``; a TypeError names unknown ones (as Python
    does for a misspelt keyword argument)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"{type(pipeline).__name__}() got unexpected arguments {unknown}; it takes {sorted(allowed)}")
    return {**allowed, **options}


@dataclass
class Prepared:
    """What [`LumiereBasePipeline.prepare`] makes for one call: the text of both guidance
    branches ``(B, L, D)`` (the negative None with guidance off), the timesteps, the
    initial latents ``(B, C, F, h, w)`` and the temporal windows (None: the whole clip in
    one model call)."""

    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor | None
    timesteps: torch.Tensor
    latents: torch.Tensor
    windows: list[slice] | None = None


@dataclass
class LumierePipelineOutput(BaseOutput):
    """``frames``: per ``output_type``, ``np`` ``(B, F, H, W, C)`` floats in [0, 1], ``pt``
    ``(B, F, C, H, W)`` in [0, 1], ``pil`` a list (per video) of lists of images, ``latent``
    the final latents ``(B, C, F, h, w)`` (pixels in [-1, 1] for a pixel-space model)."""

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


class LumiereBasePipeline(DiffusionPipeline):
    r"""The shared part of the Lumiere pipelines (not a pipeline to call on its own).

    Components:
        unet ([`SpaceTimeUNet`]): denoises ``(B, C, F, H, W)`` clips.
        scheduler: any diffusers scheduler (epsilon, v-prediction or sample prediction).
        text_encoder (`PreTrainedModel`): frozen text encoder (CLIP, T5, BERT-style); its last
            hidden states are the cross-attention context.
        tokenizer (`PreTrainedTokenizerBase`): the encoder's tokenizer.
        vae ([`AutoencoderKL`], *optional*): None for a pixel-space model.

    Config:
        noise_frame_correlation (`float`, defaults to 0): the correlation between the
            frames of the initial noise (see [`lumiere.noise.video_noise`]); the value the
            U-Net was trained with, which training records here.
    """

    model_cpu_offload_seq = "text_encoder->unet->vae"
    _optional_components = ["vae"]
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(
        self,
        unet: SpaceTimeUNet,
        scheduler: KarrasDiffusionSchedulers | SchedulerMixin,
        text_encoder: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        vae: AutoencoderKL | None = None,
        noise_frame_correlation: float = 0.0,
    ):
        super().__init__()
        check_frame_correlation(noise_frame_correlation)
        self.register_modules(unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer, vae=vae)
        self.register_to_config(noise_frame_correlation=noise_frame_correlation)
        self.video_processor = VideoProcessor(do_resize=False, vae_scale_factor=self.vae_scale_factor)

    @classmethod
    def from_pipe(cls, pipeline: DiffusionPipeline, **kwargs: Any) -> LumiereBasePipeline:
        """This pipeline on the modules of another loaded Lumiere pipeline: no weight is
        copied or cast (unlike ``DiffusionPipeline.from_pipe``, which casts the shared
        modules to float32 unless told a dtype). ``kwargs`` replace components or config
        values by name."""
        names = set(cls._get_signature_keys(cls)[0]) | set(cls._get_signature_keys(cls)[1])
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"from_pipe got {unknown}; {cls.__name__} takes {sorted(names)}")
        shared = {name: value for name, value in {**pipeline.config, **pipeline.components}.items() if name in names}
        return cls(**{**shared, **kwargs})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> LumiereBasePipeline:
        """diffusers' ``from_pretrained``; a local folder is checked first, so an empty or
        damaged folder, or a text-to-image one (which needs inflating), is a ValueError that
        says so. ``kwargs`` as diffusers' (``dtype``, component overrides, ...)."""
        path = pretrained_model_name_or_path
        if not os.path.exists(path):  # a model hub id: diffusers' own resolution and errors
            return super().from_pretrained(path, **kwargs)
        check_video_pipeline(path)
        return load_local(path, lambda: super(LumiereBasePipeline, cls).from_pretrained(path, **kwargs))

    def save_pretrained(
        self, save_directory: str | os.PathLike, *args: Any, overwrite: bool = False, **kwargs: Any
    ) -> None:
        """diffusers' ``save_pretrained``, written atomically (into a temporary folder renamed
        into place, see :mod:`lumiere.files`). A non-empty ``save_directory`` is replaced
        (whole, not merged with the old files) only with ``overwrite=True``; otherwise
        ``OutputExistsError``. Other arguments as diffusers'."""
        if kwargs.get("push_to_hub"):
            kwargs.setdefault("repo_id", os.path.basename(os.path.abspath(save_directory)))
        with atomic_dir(save_directory, overwrite) as temporary:
            super().save_pretrained(temporary, *args, **kwargs)

    # ------------------------------------------------------------------ properties

    @property
    def vae_scale_factor(self) -> int:
        vae = getattr(self, "vae", None)
        return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 1

    @property
    def num_channels_latents(self) -> int:
        return self.unet.config.unet2d_config["in_channels"]

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        # A guidance-distilled U-Net reads the scale and makes the guided prediction alone.
        return self._guidance_scale > 1 and self.unet.guidance_embedding_dim is None

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    def default_size(self, height: int | None, width: int | None) -> tuple[int, int]:
        """``(height, width)`` in pixels, each defaulting (when None) to the U-Net's
        ``sample_size`` times the VAE factor."""
        for name, value in (("height", height), ("width", width)):
            if value is not None:
                check_int(name, value, 1)
        sample_size = self.unet.config.unet2d_config.get("sample_size") or 32
        sample_size = sample_size if isinstance(sample_size, int) else sample_size[0]
        default = sample_size * self.vae_scale_factor
        return default if height is None else height, default if width is None else width

    # ------------------------------------------------------------------ inputs

    def check_inputs(
        self,
        prompt,
        num_frames,
        height,
        width,
        num_inference_steps,
        negative_prompt,
        prompt_embeds,
        negative_prompt_embeds,
        output_type,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs,
        guidance_scale: float = 1.0,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        decode_chunk_size: int = 16,
    ) -> None:
        """The checks every Lumiere pipeline makes; each error names the argument, its value
        and what is allowed."""
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of prompt and prompt_embeds")
        if prompt is not None:
            check_text("prompt", prompt)
        if negative_prompt is not None:
            check_text("negative_prompt", negative_prompt)
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass at most one of negative_prompt and negative_prompt_embeds")
        negative = negative_prompt is not None or negative_prompt_embeds is not None
        if negative and self.unet.guidance_embedding_dim is not None:
            raise ValueError(
                "negative_prompt and negative_prompt_embeds need classifier-free guidance, and this U-Net is "
                "guidance-distilled (it reads guidance_scale and has no unconditional branch); pass neither"
            )
        for name, embeds in (("prompt_embeds", prompt_embeds), ("negative_prompt_embeds", negative_prompt_embeds)):
            if embeds is not None:
                check_embeds(name, embeds, self.unet)
        if prompt_embeds is not None and negative_prompt_embeds is not None:
            if prompt_embeds.shape != negative_prompt_embeds.shape:
                raise ValueError(
                    f"prompt_embeds {tuple(prompt_embeds.shape)} and negative_prompt_embeds "
                    f"{tuple(negative_prompt_embeds.shape)} must have the same shape"
                )
        check_int("num_frames", num_frames, 1)
        self.unet.check_input_size(num_frames, self.unet.spatial_factor, self.unet.spatial_factor)
        pixel_factor = self.unet.spatial_factor * self.vae_scale_factor
        check_multiple("height", height, pixel_factor)
        check_multiple("width", width, pixel_factor)
        check_int("num_inference_steps", num_inference_steps, 1)
        check_int("num_videos_per_prompt", num_videos_per_prompt, 1)
        check_int("decode_chunk_size", decode_chunk_size, 1)
        check_finite("guidance_scale", guidance_scale)
        check_finite("eta", eta, low=0.0)
        generators = generator if isinstance(generator, list) else [generator]
        if not generators or not all(g is None or isinstance(g, torch.Generator) for g in generators):
            raise ValueError(
                f"generator must be a torch.Generator, a list of them (one per video) or None; got {generator!r}"
            )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type={output_type!r} is not one of {list(OUTPUT_TYPES)}")
        names = callback_names(callback_on_step_end, callback_on_step_end_tensor_inputs)
        unknown = set(names or ()) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs has {sorted(unknown)}; allowed: {self._callback_tensor_inputs}"
            )

    def check_memory(
        self,
        batch_size: int,
        num_frames: int,
        height: int,
        width: int,
        window_size: int | None = None,
        window_batch_size: int = 1,
    ) -> None:
        """Refuse up front a call that cannot fit in the memory of the execution device:
        ``InsufficientMemoryError`` (a ValueError) with the estimate and what is available.
        The estimate is the U-Net forward (both guidance branches in one batch, on the whole
        clip or on ``window_batch_size`` windows of ``window_size`` frames) plus the latents
        and the decoded frames; pipelines call this before allocating anything."""
        device = self._execution_device
        branches = 2 if self.do_classifier_free_guidance else 1
        latent_shape = (height // self.vae_scale_factor, width // self.vae_scale_factor)
        model_batch, model_frames = batch_size * branches, num_frames
        if window_size is not None:
            model_batch, model_frames = model_batch * window_batch_size, window_size
        forward = self.unet.estimate_forward_memory(model_batch, model_frames, *latent_shape)
        element = torch.finfo(self.unet.dtype).bits // 8
        latents = 6 * batch_size * self.num_channels_latents * num_frames * math.prod(latent_shape) * element
        frames = 3 * batch_size * 3 * num_frames * height * width * 4  # float32 video, its copies in post-processing
        what = f"{batch_size} video(s) of {num_frames} frames at {height}x{width}"
        check_fits(forward + latents + frames, device, what)

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        device: torch.device,
        num_videos_per_prompt: int = 1,
        do_classifier_free_guidance: bool = True,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text embeddings ``(B * num_videos_per_prompt, L, D)`` for the prompts and, with
        guidance, for the negative prompts (empty strings when not given)."""
        if prompt_embeds is None:
            prompt_embeds = encode_text(self.text_encoder, self.tokenizer, prompt, device)
        batch_size = prompt_embeds.shape[0]
        if do_classifier_free_guidance and negative_prompt_embeds is None:
            negative = [""] * batch_size if negative_prompt is None else negative_prompt
            negative = [negative] * batch_size if isinstance(negative, str) else list(negative)
            if len(negative) != batch_size:
                raise ValueError(
                    f"negative_prompt has {len(negative)} entries but there are {batch_size} prompts; "
                    "give one per prompt"
                )
            negative_prompt_embeds = encode_text(self.text_encoder, self.tokenizer, negative, device)
        dtype = self.text_encoder.dtype if self.text_encoder is not None else self.unet.dtype
        prompt_embeds = prompt_embeds.to(device=device, dtype=dtype).repeat_interleave(num_videos_per_prompt, dim=0)
        if negative_prompt_embeds is not None:
            negative_prompt_embeds = negative_prompt_embeds.to(device=device, dtype=dtype)
            negative_prompt_embeds = negative_prompt_embeds.repeat_interleave(num_videos_per_prompt, dim=0)
        return prompt_embeds, negative_prompt_embeds

    def prepare_latents(
        self,
        batch_size: int,
        num_channels: int,
        num_frames: int,
        height: int,
        width: int,
        dtype: torch.dtype,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial noise ``(B, C, F, H / s, W / s)``, its frames correlated as the config's
        ``noise_frame_correlation`` says, scaled by the scheduler's initial sigma."""
        shape = (batch_size, num_channels, num_frames, height // self.vae_scale_factor, width // self.vae_scale_factor)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"generator is a list of {len(generator)}; pass one per video ({batch_size}) or a single one"
            )
        if latents is None:
            latents = video_noise(shape, generator, self.config.noise_frame_correlation, device, dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents has shape {tuple(latents.shape)}; expected {shape}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    def encode_video(
        self, video: torch.Tensor, generator: torch.Generator | None = None, chunk_size: int = 16
    ) -> torch.Tensor:
        """Pixels ``(B, 3, F, H, W)`` in [-1, 1] -> what the U-Net denoises (VAE latents
        ``(B, C, F, H / s, W / s)``, or the pixels), ``chunk_size`` frames at a time."""
        dtype = self.vae.dtype if self.vae is not None else self.unet.dtype
        return encode_pixels(self.vae, video.to(device=self._execution_device, dtype=dtype), generator, chunk_size)

    def decode_latents(self, latents: torch.Tensor, decode_chunk_size: int = 16) -> torch.Tensor:
        """Latents ``(B, C, F, h, w)`` -> video ``(B, 3, F, H, W)`` in [-1, 1], float32,
        ``decode_chunk_size`` frames at a time."""
        return decode_latents(self.vae, latents, decode_chunk_size)

    # ------------------------------------------------------------------ one call

    def prepare(
        self,
        prompt: str | list[str] | None,
        num_frames: int,
        height: int,
        width: int,
        options: dict,
        strength: float = 1.0,
    ) -> Prepared:
        """The start of every call: check the inputs, set the guidance scale, encode the
        prompt, refuse work that cannot fit, and make the schedule and the initial noise.
        ``options``: :data:`SAMPLING_OPTIONS` by name (extra entries are ignored);
        ``strength`` < 1 keeps only the schedule's tail (see [`schedule`]). With
        ``window_size`` the model runs on temporal windows (:mod:`lumiere.pipelines.windows`):
        the windows, not ``num_frames``, must suit the U-Net."""
        o = options
        windows = self.check_windows(num_frames, o)
        model_frames = num_frames if windows is None else o["window_size"]
        self.check_inputs(
            prompt, model_frames, height, width, o["num_inference_steps"], o["negative_prompt"], o["prompt_embeds"],
            o["negative_prompt_embeds"], o["output_type"], o["callback_on_step_end"],
            o["callback_on_step_end_tensor_inputs"], o["guidance_scale"], o["num_videos_per_prompt"], o["eta"],
            o["generator"], o["decode_chunk_size"],
        )  # fmt: skip
        self._guidance_scale, self._interrupt = o["guidance_scale"], False
        device = self._execution_device
        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, device, o["num_videos_per_prompt"], self.do_classifier_free_guidance, o["negative_prompt"],
            o["prompt_embeds"], o["negative_prompt_embeds"],
        )  # fmt: skip
        batch = prompt_embeds.shape[0]
        if o["check_memory"]:
            self.check_memory(batch, num_frames, height, width, o["window_size"], o["window_batch_size"])
        timesteps = schedule(self.scheduler, o["num_inference_steps"], device, strength)
        latents = self.prepare_latents(
            batch, self.num_channels_latents, num_frames, height, width, self.unet.dtype, device, o["generator"],
            o["latents"],
        )  # fmt: skip
        if o["window_noise"] == "shuffled":
            latents = shuffle_window_noise(latents, windows, first_generator(o["generator"]))
        return Prepared(prompt_embeds, negative_prompt_embeds, timesteps, latents, windows)

    def check_windows(self, num_frames: int, options: dict) -> list[slice] | None:
        """The temporal windows the window options of ``options`` ask for over
        ``num_frames`` (None without ``window_size``); a ValueError names a bad option."""
        o = options
        if o["window_size"] is None:
            names = ("window_stride", "window_weighting", "window_noise", "window_batch_size", "distribute_windows")
            for name in names:
                if o[name] != SAMPLING_OPTIONS[name]:
                    raise ValueError(f"{name}={o[name]!r} needs window_size, which is None (no temporal windows)")
            return None
        windows = temporal_windows(num_frames, o["window_size"], o["window_stride"], self.unet.temporal_factor)
        window_weights(o["window_size"], o["window_weighting"])
        if o["window_noise"] not in NOISES:
            raise ValueError(f"window_noise={o['window_noise']!r} is not one of {list(NOISES)}")
        if o["window_noise"] == "shuffled" and o["latents"] is not None:
            raise ValueError(
                "window_noise='shuffled' draws the initial noise itself; pass latents=None or use 'independent'"
            )
        check_int("window_batch_size", o["window_batch_size"], 1)
        if not isinstance(o["distribute_windows"], bool):
            raise ValueError(f"distribute_windows must be a bool; got {o['distribute_windows']!r}")
        return windows

    def finish(
        self,
        guidance: Guidance,
        prepared: Prepared,
        options: dict,
        paste: tuple[torch.Tensor, torch.Tensor] | None = None,
        base: Callable[[], torch.Tensor] | None = None,
    ) -> LumierePipelineOutput | tuple:
        """The end of every call: [`sample`] from ``prepared`` with the model function
        ``guidance`` (averaged over ``prepared.windows`` when there are some), then
        [`output`] (``paste`` and ``base`` as there)."""
        o = options
        model_fn = None
        if prepared.windows is not None:
            # cpu=True lets a CPU-only launch take gloo; a state made before keeps its own.
            processes = PartialState(cpu=self._execution_device.type == "cpu") if o["distribute_windows"] else None
            model_fn = TemporalMultiDiffusion(
                guidance, prepared.windows, o["window_weighting"], o["window_batch_size"], processes
            )
        latents = self.sample(
            guidance, prepared.latents, prepared.timesteps, o["generator"], o["eta"], o["callback_on_step_end"],
            o["callback_on_step_end_tensor_inputs"], o["autocast"], model_fn,
        )  # fmt: skip
        return self.output(latents, o["output_type"], o["decode_chunk_size"], o["return_dict"], paste, base)

    # ------------------------------------------------------------------ sampling

    def guidance(
        self,
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        concat: torch.Tensor | None = None,
        uncond_concat: torch.Tensor | None = None,
        model_kwargs: dict[str, torch.Tensor] | None = None,
    ) -> Guidance:
        """The guided U-Net as a model function (see [`guide`]: classifier-free, or the scale
        as an input of a guidance-distilled U-Net).

        Args:
            prompt_embeds, negative_prompt_embeds: the text of the conditional and (with
                guidance on) the unconditional branch, from [`encode_prompt`].
            concat: channels appended to the noisy latents in the conditional branch,
                ``(B, C_extra, F, h, w)``; ``uncond_concat`` the unconditional branch's
                (default: the same, as inpainting keeps its mask in both).
            model_kwargs: more U-Net arguments by name, the same in both branches, batch ``B``.
        """
        model_kwargs = model_kwargs or {}
        cond = Branch(prompt_embeds, concat, model_kwargs)
        uncond = None
        if self.do_classifier_free_guidance:
            uncond = Branch(negative_prompt_embeds, concat if uncond_concat is None else uncond_concat, model_kwargs)
        return guide(self.unet, self.scheduler, self.guidance_scale, cond, uncond, cross_attention_kwargs)

    def sample(
        self,
        guidance: Guidance,
        latents: torch.Tensor,
        timesteps: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None,
        eta: float,
        callback_on_step_end: Callback | None,
        callback_on_step_end_tensor_inputs: list[str],
        autocast: bool,
        model_fn: ModelFn | None = None,
    ) -> torch.Tensor:
        """[`denoise`] with what every pipeline adds: progress bar, ``interrupt``,
        ``callback_on_step_end`` (whose returned prompt embeddings replace ``guidance``'s
        text) and autocast to the device's fast dtype. The model function is ``guidance``
        unless ``model_fn`` (a function around it, e.g. over temporal windows) is given."""
        callback_on_step_end_tensor_inputs = callback_names(callback_on_step_end, callback_on_step_end_tensor_inputs)
        self._num_timesteps = len(timesteps)
        device = self._execution_device
        dtype = compute_dtype(device, self.unet.dtype, autocast)

        with self.progress_bar(total=len(timesteps)) as progress, fast_autocast(device, self.unet.dtype, autocast):

            def on_step(i: int, t: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
                check_finite_latents(latents, i, t, dtype)
                if callback_on_step_end is not None:
                    latents = self._run_callback(
                        callback_on_step_end, callback_on_step_end_tensor_inputs, guidance, i, t, latents
                    )
                progress.update()
                return latents

            return denoise(
                model_fn or guidance, latents, self.scheduler, timesteps,
                step_kwargs=step_kwargs(self.scheduler, generator, eta), on_step=on_step, stop=lambda: self.interrupt,
            )  # fmt: skip

    def _run_callback(self, callback, names, guidance: Guidance, i, t, latents: torch.Tensor) -> torch.Tensor:
        uncond = guidance.uncond
        available = {
            "latents": latents,
            "prompt_embeds": guidance.cond.encoder_hidden_states,
            "negative_prompt_embeds": None if uncond is None else uncond.encoder_hidden_states,
        }
        updated = callback(self, i, t, {name: available[name] for name in names})
        check_callback_result(callback, updated, available)
        if "prompt_embeds" in updated:
            guidance.cond = replace(guidance.cond, encoder_hidden_states=updated["prompt_embeds"])
        if "negative_prompt_embeds" in updated and uncond is not None:
            guidance.uncond = replace(uncond, encoder_hidden_states=updated["negative_prompt_embeds"])
        return updated.get("latents", latents)

    # ------------------------------------------------------------------ output

    def output(
        self,
        latents: torch.Tensor,
        output_type: str,
        decode_chunk_size: int,
        return_dict: bool,
        paste: tuple[torch.Tensor, torch.Tensor] | None = None,
        base: Callable[[], torch.Tensor] | None = None,
    ) -> LumierePipelineOutput | tuple:
        """Decode and post-process the final latents as ``output_type`` asks, free the
        offload hooks, and wrap the frames.

        ``base``: makes a tensor shaped as the latents, added to them first, for a model
        that samples a residual over it (:mod:`lumiere.super_resolution`);
        ``output_type="latent"`` returns the sum. Made only here, after sampling, so it
        takes no memory while the model runs.

        ``paste``: ``(pixels, known)``, pixels ``(B, 3, F, H, W)`` in [-1, 1] and a mask
        ``(B, 1, F, H, W)`` in [0, 1], blended over the decoded video (``known * pixels +
        (1 - known) * video``) so that known pixels come back as given; not applied to
        ``output_type="latent"``, which returns what the U-Net made."""
        if base is not None:
            latents = latents + base().to(device=latents.device, dtype=latents.dtype)
        if output_type == "latent":
            frames = latents
        else:
            video = self.decode_latents(latents, decode_chunk_size)
            if paste is not None:
                pixels, known = (value.to(device=video.device, dtype=video.dtype) for value in paste)
                video = torch.lerp(video, pixels, known)
            frames = self.video_processor.postprocess_video(video, output_type=output_type)
        self.maybe_free_model_hooks()
        return LumierePipelineOutput(frames=frames) if return_dict else (frames,)
