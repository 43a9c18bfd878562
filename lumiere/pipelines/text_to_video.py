"""Text-to-video with a Space-Time U-Net: the whole clip is denoised in one pass.

Works in pixel space (``vae=None``, like Lumiere and Imagen) or in the latent space of a
Stable-Diffusion-style VAE.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.schedulers import KarrasDiffusionSchedulers, SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.video_processor import VideoProcessor
from einops import rearrange
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..models.space_time_unet import SpaceTimeUNet, check_multiple
from ..noise import check_frame_correlation, video_noise
from ..performance import fast_autocast

OUTPUT_TYPES = ("np", "pt", "pil", "latent")


def encode_text(
    text_encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str | list[str], device: torch.device
) -> torch.Tensor:
    """Token hidden states ``(B, L, D)`` of ``text``, padded to the tokenizer's max length:
    the cross-attention context, for sampling and for training alike."""
    inputs = tokenizer(
        [text] if isinstance(text, str) else list(text),
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    # CLIP-conditioned U-Nets (Stable Diffusion) were trained on unmasked encoder
    # outputs; bidirectional encoders (T5, BERT) need the mask to ignore padding.
    is_clip = text_encoder.config.model_type.startswith("clip")
    mask = None if is_clip else inputs.attention_mask.to(device)
    return text_encoder(inputs.input_ids.to(device), attention_mask=mask)[0]


@dataclass
class LumierePipelineOutput(BaseOutput):
    """``frames``: per ``output_type``, ``np`` ``(B, F, H, W, C)`` floats in [0, 1], ``pt``
    ``(B, F, C, H, W)`` in [0, 1], ``pil`` a list (per video) of lists of images, ``latent``
    the final latents ``(B, C, F, h, w)`` (pixels in [-1, 1] for a pixel-space model)."""

    frames: np.ndarray | torch.Tensor | list[list[PIL.Image.Image]]


class LumierePipeline(DiffusionPipeline):
    r"""Text-to-video generation with a [`SpaceTimeUNet`].

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
    def from_text_to_image(
        cls,
        path_or_pipeline: str | os.PathLike | DiffusionPipeline,
        load_weights: bool = True,
        dtype: torch.dtype | None = None,
        **inflation_kwargs: Any,
    ) -> "LumierePipeline":
        """Inflate a diffusers text-to-image pipeline (a loaded one, or a local folder in the
        Stable Diffusion layout: ``unet``, ``text_encoder``, ``tokenizer``, ``scheduler`` and
        optionally ``vae``) into a video pipeline. ``inflation_kwargs`` go to
        [`SpaceTimeUNet.from_unet2d`]; ``dtype`` applies when loading from a folder."""
        if isinstance(path_or_pipeline, DiffusionPipeline):
            source = path_or_pipeline
        else:
            if not os.path.isdir(path_or_pipeline):
                raise ValueError(f"path_or_pipeline={str(path_or_pipeline)!r} is not a pipeline folder")
            source = DiffusionPipeline.from_pretrained(path_or_pipeline, dtype=dtype)
        components = source.components
        missing = [name for name in ("unet", "text_encoder", "tokenizer", "scheduler") if components.get(name) is None]
        if missing:
            raise ValueError(f"the text-to-image pipeline has no {missing}; it needs unet, text_encoder, tokenizer, scheduler")
        unet = SpaceTimeUNet.from_unet2d(components["unet"], load_weights=load_weights, **inflation_kwargs)
        return cls(
            unet=unet,
            scheduler=components["scheduler"],
            text_encoder=components["text_encoder"],
            tokenizer=components["tokenizer"],
            vae=components.get("vae"),
        )

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
        return self._guidance_scale > 1

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    # ------------------------------------------------------------------ steps

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
                    f"negative_prompt has {len(negative)} entries but there are {batch_size} prompts; give one per prompt"
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
            raise ValueError(f"generator is a list of {len(generator)}; pass one per video ({batch_size}) or a single one")
        if latents is None:
            latents = video_noise(shape, generator, self.config.noise_frame_correlation, device, dtype)
        elif tuple(latents.shape) != shape:
            raise ValueError(f"latents has shape {tuple(latents.shape)}; expected {shape}")
        else:
            latents = latents.to(device=device, dtype=dtype)
        return latents * self.scheduler.init_noise_sigma

    def guidance_context(
        self, prompt_embeds: torch.Tensor, negative_prompt_embeds: torch.Tensor | None
    ) -> torch.Tensor:
        """The cross-attention context of one U-Net pass: ``(2B, L, D)`` (negative branch
        first) with classifier-free guidance, else ``(B, L, D)``."""
        if self.do_classifier_free_guidance:
            return torch.cat([negative_prompt_embeds, prompt_embeds])
        return prompt_embeds

    def predict(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        cross_attention_kwargs: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """The guided model output for ``latents`` ``(B, C, F, h, w)`` at one step, given
        ``context`` from [`guidance_context`].

        One call is one U-Net pass (both guidance branches batched); samplers over several
        windows of a clip call it once per window.
        """
        model_input = self.scheduler.scale_model_input(latents, timestep)
        if self.do_classifier_free_guidance:
            model_input = torch.cat([model_input] * 2)
        output = self.unet(
            model_input, timestep, encoder_hidden_states=context, cross_attention_kwargs=cross_attention_kwargs,
            return_dict=False,
        )[0]  # fmt: skip
        if not self.do_classifier_free_guidance:
            return output
        uncond, cond = output.chunk(2)
        # A U-Net that also predicts its variance (learned_range schedulers) is guided on
        # the prediction channels only; the variance comes from the conditional branch.
        channels = latents.shape[1]
        guided = uncond[:, :channels] + self.guidance_scale * (cond[:, :channels] - uncond[:, :channels])
        return torch.cat([guided, cond[:, channels:]], dim=1)

    def decode_latents(self, latents: torch.Tensor, decode_chunk_size: int = 16) -> torch.Tensor:
        """Latents ``(B, C, F, h, w)`` -> video ``(B, 3, F, H, W)`` in [-1, 1], float32.

        The VAE decodes ``decode_chunk_size`` frames at a time to bound memory."""
        if self.vae is None:
            return latents.float().clamp(-1, 1)
        batch = latents.shape[0]
        frames = rearrange(latents, "b c f h w -> (b f) c h w") / self.vae.config.scaling_factor
        decoded = [
            self.vae.decode(chunk.to(self.vae.dtype)).sample for chunk in frames.split(decode_chunk_size)
        ]
        return rearrange(torch.cat(decoded), "(b f) c h w -> b c f h w", b=batch).float().clamp(-1, 1)

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
        callback_on_step_end_tensor_inputs,
    ) -> None:
        if (prompt is None) == (prompt_embeds is None):
            raise ValueError("pass exactly one of prompt and prompt_embeds")
        if prompt is not None and not isinstance(prompt, (str, list)):
            raise ValueError(f"prompt must be a str or a list of str, got {type(prompt).__name__}")
        if negative_prompt is not None and negative_prompt_embeds is not None:
            raise ValueError("pass at most one of negative_prompt and negative_prompt_embeds")
        if prompt_embeds is not None and negative_prompt_embeds is not None:
            if prompt_embeds.shape != negative_prompt_embeds.shape:
                raise ValueError(
                    f"prompt_embeds {tuple(prompt_embeds.shape)} and negative_prompt_embeds "
                    f"{tuple(negative_prompt_embeds.shape)} must have the same shape"
                )
        self.unet.check_input_size(num_frames, self.unet.spatial_factor, self.unet.spatial_factor)
        pixel_factor = self.unet.spatial_factor * self.vae_scale_factor
        check_multiple("height", height, pixel_factor)
        check_multiple("width", width, pixel_factor)
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps={num_inference_steps} must be >= 1")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type={output_type!r} is not one of {list(OUTPUT_TYPES)}")
        unknown = set(callback_on_step_end_tensor_inputs or ()) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"callback_on_step_end_tensor_inputs has {sorted(unknown)}; allowed: {self._callback_tensor_inputs}"
            )

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        num_frames: int = 16,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        negative_prompt: str | list[str] | None = None,
        num_videos_per_prompt: int = 1,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        cross_attention_kwargs: dict[str, Any] | None = None,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict]
        | PipelineCallback
        | MultiPipelineCallbacks
        | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("latents",),
        decode_chunk_size: int = 16,
        autocast: bool = True,
    ) -> LumierePipelineOutput | tuple:
        r"""Generate videos from text.

        Args:
            prompt: the text, or one per video. Or pass ``prompt_embeds`` ``(B, L, D)``.
            num_frames: clip length; a multiple of ``unet.temporal_factor``.
            height, width: in pixels, multiples of ``unet.spatial_factor * vae_scale_factor``;
                default the U-Net's ``sample_size`` times the VAE factor.
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance weight; ``<= 1`` turns guidance off.
            negative_prompt: what to steer away from (the unconditional branch).
            num_videos_per_prompt: videos per prompt.
            eta: DDIM's eta (ignored by schedulers that do not take it).
            generator: a ``torch.Generator`` (or one per video) for reproducible noise.
            latents: initial noise ``(B, C, F, h, w)`` instead of sampling it.
            prompt_embeds, negative_prompt_embeds: precomputed text embeddings.
            output_type: ``"np"``, ``"pt"``, ``"pil"`` or ``"latent"``.
            return_dict: return a [`LumierePipelineOutput`] rather than a tuple.
            cross_attention_kwargs: passed to the attention processors.
            callback_on_step_end: ``fn(pipe, step, timestep, tensors) -> dict`` called after
                each step with the tensors named in ``callback_on_step_end_tensor_inputs``;
                tensors it returns replace the pipeline's.
            decode_chunk_size: frames decoded by the VAE at a time.
            autocast: run the U-Net under autocast to the device's fast low-precision dtype
                when the hardware has native kernels for it (see
                [`lumiere.performance.fast_autocast_dtype`]); False keeps the model's dtype.

        Returns:
            [`LumierePipelineOutput`] or ``(frames,)``.
        """
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        sample_size = self.unet.config.unet2d_config.get("sample_size") or 32
        sample_size = sample_size if isinstance(sample_size, int) else sample_size[0]
        height = height or sample_size * self.vae_scale_factor
        width = width or sample_size * self.vae_scale_factor
        self.check_inputs(
            prompt, num_frames, height, width, num_inference_steps, negative_prompt, prompt_embeds,
            negative_prompt_embeds, output_type, callback_on_step_end_tensor_inputs,
        )  # fmt: skip
        self._guidance_scale = guidance_scale
        self._interrupt = False
        device = self._execution_device

        prompt_embeds, negative_prompt_embeds = self.encode_prompt(
            prompt, device, num_videos_per_prompt, self.do_classifier_free_guidance, negative_prompt,
            prompt_embeds, negative_prompt_embeds,
        )  # fmt: skip
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        latents = self.prepare_latents(
            prompt_embeds.shape[0], self.num_channels_latents, num_frames, height, width, self.unet.dtype, device,
            generator, latents,
        )  # fmt: skip
        step_kwargs = self._step_kwargs(generator, eta)
        context = self.guidance_context(prompt_embeds, negative_prompt_embeds)

        with self.progress_bar(total=len(timesteps)) as progress, fast_autocast(device, self.unet.dtype, autocast):
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                model_output = self.predict(latents, t, context, cross_attention_kwargs).to(latents.dtype)
                latents = self.scheduler.step(model_output, t, latents, **step_kwargs, return_dict=False)[0]
                if callback_on_step_end is not None:
                    available = {
                        "latents": latents,
                        "prompt_embeds": prompt_embeds,
                        "negative_prompt_embeds": negative_prompt_embeds,
                    }
                    tensors = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                    updated = callback_on_step_end(self, i, t, tensors)
                    latents = updated.pop("latents", latents)
                    if "prompt_embeds" in updated or "negative_prompt_embeds" in updated:
                        prompt_embeds = updated.pop("prompt_embeds", prompt_embeds)
                        negative_prompt_embeds = updated.pop("negative_prompt_embeds", negative_prompt_embeds)
                        context = self.guidance_context(prompt_embeds, negative_prompt_embeds)
                progress.update()

        if output_type == "latent":
            frames = latents
        else:
            video = self.decode_latents(latents, decode_chunk_size)
            frames = self.video_processor.postprocess_video(video, output_type=output_type)
        self.maybe_free_model_hooks()
        return LumierePipelineOutput(frames=frames) if return_dict else (frames,)

    def _step_kwargs(self, generator, eta: float) -> dict[str, Any]:
        """The optional arguments this scheduler's ``step`` accepts (eta, generator)."""
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        return {k: v for k, v in (("eta", eta), ("generator", generator)) if k in accepted}
