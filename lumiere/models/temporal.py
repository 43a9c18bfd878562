"""Temporal layers that inflate a text-to-image U-Net into a Space-Time U-Net.

Every module here works on the layout the pretrained spatial layers use, frames folded
into the batch: ``(B * F, C, H, W)``, with ``num_frames = F`` passed alongside. Each one
is the identity at initialization (its residual branch ends in a zero-initialized
projection, resampling starts as nearest-neighbour), so an inflated model reproduces the
text-to-image model on a static clip until training moves the new weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import get_1d_sincos_pos_embed_from_grid
from einops import rearrange
from torch import nn


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` so the branch it closes starts at exactly zero."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


def temporal_conv(channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    """A 1D convolution over frames, as a ``(k, 1)`` Conv2d on ``(B, C, F, H * W)``.

    A 2D convolution rather than a ``(k, 1, 1)`` Conv3d: CPU backends run Conv3d on a slow
    path (docs/performance.md has the ratio). Replicate padding makes a constant clip look
    constant at its first and last frame too, so clip boundaries are not taken for motion.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"temporal kernel_size must be odd, got {kernel_size}")
    return nn.Conv2d(
        channels,
        channels,
        kernel_size=(kernel_size, 1),
        stride=(stride, 1),
        padding=(kernel_size // 2, 0),
        padding_mode="replicate",
    )


def over_frames(
    fn: Callable[[torch.Tensor], torch.Tensor], hidden_states: torch.Tensor, num_frames: int
) -> torch.Tensor:
    """Run ``fn`` on ``(B * F, C, H, W)`` seen as ``(B, C, F, H * W)``, the layout of
    :func:`temporal_conv`, and fold its result back; ``fn`` may change the frame count."""
    height = hidden_states.shape[-2]
    video = rearrange(hidden_states, "(b f) c h w -> b c f (h w)", f=num_frames)
    return rearrange(fn(video), "b c f (h w) -> (b f) c h w", h=height)


class TemporalConvBlock(nn.Module):
    """Convolution-based inflation block (Lumiere, every level but the coarsest).

    ``x + proj(act(norm(conv1d_t(act(norm(conv2d(x)))))))`` with ``proj`` zero-initialized.
    Group norms are taken per frame (over channel groups and H, W), like the pretrained
    layers around it, so statistics never mix frames.

    Input and output: ``(B * F, C, H, W)``.
    """

    def __init__(self, channels: int, norm_num_groups: int = 32, kernel_size: int = 3, eps: float = 1e-5):
        super().__init__()
        self.spatial_conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.spatial_norm = nn.GroupNorm(norm_num_groups, channels, eps=eps)
        self.temporal_conv = temporal_conv(channels, kernel_size)
        self.temporal_norm = nn.GroupNorm(norm_num_groups, channels, eps=eps)
        self.proj_out = zero_module(nn.Conv2d(channels, channels, kernel_size=1))

    def forward(
        self,
        hidden_states: torch.Tensor,
        num_frames: int,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # The text arguments only give every inflation block one call signature; a
        # convolution block does not read the text.
        h = F.silu(self.spatial_norm(self.spatial_conv(hidden_states)))
        h = F.silu(self.temporal_norm(over_frames(self.temporal_conv, h, num_frames)))
        return hidden_states + self.proj_out(h)


class TemporalTransformerLayer(nn.Module):
    """Pre-norm self-attention over frames, optionally cross-attention to the text, then a
    feed-forward, on ``(B * H * W, F, C)``."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, cross_attention_dim: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(query_dim=dim, heads=num_heads, dim_head=head_dim, bias=False)
        self.norm_cross = self.attn_cross = None
        if cross_attention_dim is not None:
            self.norm_cross = nn.LayerNorm(dim)
            self.attn_cross = Attention(
                query_dim=dim, cross_attention_dim=cross_attention_dim, heads=num_heads, dim_head=head_dim, bias=False
            )
        self.norm2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, activation_fn="geglu")

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``context`` ``(B * H * W, L, D)`` and its additive ``context_mask``
        ``(B * H * W, 1, L)`` are used only with cross-attention."""
        tokens = tokens + self.attn(self.norm1(tokens) + positions)
        if self.attn_cross is not None:
            tokens = tokens + self.attn_cross(
                self.norm_cross(tokens), encoder_hidden_states=context, attention_mask=context_mask
            )
        return tokens + self.ff(self.norm2(tokens))


def frame_positions(num_frames: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal embedding of frame indices ``0..F-1``: ``(F, dim)``.

    Computed for the frame count at hand rather than read from a fixed-size table, so the
    attention accepts any clip length.
    """
    positions = torch.arange(num_frames, device=device, dtype=torch.float32)
    return get_1d_sincos_pos_embed_from_grid(dim, positions, dtype=torch.float32).to(dtype)


def grid_positions(height: int, width: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal embedding of the ``(y, x)`` grid, row-major: ``(H * W, dim)``, the first half
    of the channels for x, the second for y (the layout of diffusers' 2D patch embeddings)."""
    y, x = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    axes = [get_1d_sincos_pos_embed_from_grid(dim // 2, axis.flatten(), output_type="pt") for axis in (x, y)]
    return torch.cat(axes, dim=1).to(dtype)


class TemporalAttentionBlock(nn.Module):
    """Attention-based inflation block (Lumiere, coarsest level): stacked 1D temporal
    self-attention layers between a per-frame group norm and a zero-initialized projection.

    Each spatial position attends over the frames of its own clip. With
    ``cross_attention_dim`` each layer also attends to the text, so motion described only
    in words (which frozen 2D layers trained on stills barely encode) reaches the frames.

    With ``spatial_positions`` every token also carries its frame index and its ``(y, x)``
    position from the start (added after ``proj_in``). At high noise the features at
    different positions look alike, so without it the block cannot tell where it is and
    cannot place a moving object along the direction the text names.

    Input and output: ``(B * F, C, H, W)``; ``encoder_hidden_states`` ``(B * F, L, D)`` and
    ``encoder_attention_mask`` ``(B * F, 1, L)`` (additive) as the 2D layers get them.
    """

    def __init__(
        self,
        channels: int,
        num_layers: int = 1,
        head_dim: int = 64,
        norm_num_groups: int = 32,
        eps: float = 1e-5,
        cross_attention_dim: int | None = None,
        spatial_positions: bool = False,
    ):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"temporal_attention_layers must be >= 1, got {num_layers}")
        if spatial_positions and channels % 4:
            raise ValueError(
                f"spatial_positions needs channels divisible by 4 (2 axes, sin and cos); got channels={channels}"
            )
        self.spatial_positions = spatial_positions
        num_heads = max(1, channels // head_dim)
        if channels % num_heads != 0:
            raise ValueError(f"channels={channels} cannot be split into {num_heads} heads of head_dim={head_dim}")
        self.norm = nn.GroupNorm(norm_num_groups, channels, eps=eps)
        self.proj_in = nn.Linear(channels, channels)
        self.layers = nn.ModuleList(
            TemporalTransformerLayer(channels, num_heads, channels // num_heads, cross_attention_dim)
            for _ in range(num_layers)
        )
        self.proj_out = zero_module(nn.Linear(channels, channels))

    def forward(
        self,
        hidden_states: torch.Tensor,
        num_frames: int,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        height, width = hidden_states.shape[-2:]
        tokens = rearrange(self.norm(hidden_states), "(b f) c h w -> b (h w) f c", f=num_frames)
        tokens = self.proj_in(tokens)
        positions = frame_positions(num_frames, tokens.shape[-1], tokens.device, tokens.dtype)
        if self.spatial_positions:
            grid = grid_positions(height, width, tokens.shape[-1], tokens.device, tokens.dtype)
            tokens = tokens + positions + rearrange(grid, "n c -> n 1 c")
        tokens = rearrange(tokens, "b n f c -> (b n) f c")
        context = mask = None
        if encoder_hidden_states is not None:
            # One text per clip (the rows repeat per frame), shared by its H * W positions.
            context = encoder_hidden_states[::num_frames].repeat_interleave(height * width, dim=0)
            if encoder_attention_mask is not None:
                mask = encoder_attention_mask[::num_frames].repeat_interleave(height * width, dim=0)
        for layer in self.layers:
            tokens = layer(tokens, positions, context, mask)
        tokens = self.proj_out(tokens)
        return hidden_states + rearrange(tokens, "(b h w) f c -> (b f) c h w", h=height, w=width)


class TemporalDownsample(nn.Module):
    """Halve the frame count: nearest-neighbour (keep even frames) plus a learned strided
    temporal convolution that starts at zero.

    The nearest-neighbour path is a fixed skip rather than the conv's initial value, so
    weight decay pulls the learned part towards nearest-neighbour, never towards zero.

    Input ``(B * F, C, H, W)`` -> output ``(B * F / 2, C, H, W)``.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = zero_module(temporal_conv(channels, kernel_size, stride=2))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        return over_frames(self._resample, hidden_states, num_frames)

    def _resample(self, video: torch.Tensor) -> torch.Tensor:
        return video[:, :, ::2] + self.conv(video)


class TemporalUpsample(nn.Module):
    """Double the frame count: nearest-neighbour (each frame twice) plus a learned temporal
    convolution that starts at zero.

    Input ``(B * F, C, H, W)`` -> output ``(B * 2F, C, H, W)``.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = zero_module(temporal_conv(channels, kernel_size))

    def forward(self, hidden_states: torch.Tensor, num_frames: int) -> torch.Tensor:
        return over_frames(self._resample, hidden_states, num_frames)

    def _resample(self, video: torch.Tensor) -> torch.Tensor:
        # F.interpolate rather than repeat_interleave or einops.repeat: inductor (torch 2.13)
        # fails on a replicate-padded conv of those (tests/test_compile.py).
        video = F.interpolate(video, scale_factor=(2, 1), mode="nearest")
        return video + self.conv(video)


class TemporalBlock(nn.Module):
    """The temporal modules that accompany one pretrained 2D block.

    ``layers[j]`` follows the block's j-th spatial layer (resnet, plus its attention when the
    block has one); ``resample`` (or None) follows the block's spatial down/upsampler.
    """

    def __init__(self, layers: list[nn.Module], resample: nn.Module | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.resample = resample
