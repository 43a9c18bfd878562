"""What the U-Net reads and writes, and how it maps to text and pixels: one place for the
pipelines, the trainer, the evaluation and the benchmarks.

* text -> cross-attention context: [`encode_text`];
* pixels in [-1, 1] <-> what the U-Net denoises (the pixels themselves for a pixel-space
  model, VAE latents otherwise): [`encode_pixels`], [`decode_latents`];
* uint8 frames -> pixels: [`pixels_from_frames`].
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from transformers import PreTrainedModel, PreTrainedTokenizerBase


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


@torch.no_grad()
def encode_pixels(
    vae: torch.nn.Module | None,
    pixels: torch.Tensor,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Pixels in [-1, 1] -> what the U-Net denoises: the pixels themselves (``vae=None``),
    or scaled VAE latents sampled with ``generator``.

    Takes clips ``(B, C, F, H, W)`` or images ``(B, C, H, W)`` and returns the same layout.
    The VAE encodes ``chunk_size`` frames at a time (None: all at once) to bound memory.
    """
    if vae is None:
        return pixels
    video = pixels.ndim == 5
    frames = rearrange(pixels, "b c f h w -> (b f) c h w") if video else pixels
    chunks = frames.split(chunk_size) if chunk_size else [frames]
    latents = torch.cat([vae.encode(chunk.to(vae.dtype)).latent_dist.sample(generator=generator) for chunk in chunks])
    latents = latents * vae.config.scaling_factor
    return rearrange(latents, "(b f) c h w -> b c f h w", b=pixels.shape[0]) if video else latents


@torch.no_grad()
def decode_latents(vae: torch.nn.Module | None, latents: torch.Tensor, chunk_size: int = 16) -> torch.Tensor:
    """What the U-Net denoised ``(B, C, F, h, w)`` -> video ``(B, 3, F, H, W)`` in [-1, 1],
    float32. The VAE decodes ``chunk_size`` frames at a time to bound memory."""
    if vae is None:
        return latents.float().clamp(-1, 1)
    batch = latents.shape[0]
    frames = rearrange(latents, "b c f h w -> (b f) c h w") / vae.config.scaling_factor
    decoded = [vae.decode(chunk.to(vae.dtype)).sample for chunk in frames.split(chunk_size)]
    return rearrange(torch.cat(decoded), "(b f) c h w -> b c f h w", b=batch).float().clamp(-1, 1)


def pixels_from_frames(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 clips ``(B, F, H, W, C)`` (as rendered or read from a file) -> float32 pixels
    ``(B, C, F, H, W)`` in [-1, 1], the model's layout."""
    frames = torch.as_tensor(frames)
    return rearrange(frames.float().div(127.5).sub(1), "b f h w c -> b c f h w")
