"""Space-Time U-Net (STUNet): a pretrained text-to-image U-Net inflated to video.

The pretrained ``UNet2DConditionModel`` layers keep their module names (``conv_in``,
``down_blocks.i.resnets.j``, ``down_blocks.i.attentions.j``, ``mid_block``, ...), so a
text-to-image state dict or LoRA maps onto them unchanged. New modules all live under
``temporal_*`` names:

* ``temporal_down_blocks.i`` / ``temporal_up_blocks.i``: one inflation block after each
  spatial layer of 2D block ``i`` (convolution-based, or attention-based at the coarsest
  level), and a temporal down/upsampler right after the block's spatial down/upsampler;
* ``temporal_mid_block``: attention-based inflation after the mid block;

and, in a conditional model (``conditioning_channels > 0``), ``conditioning_conv_in``: the
input convolution of the conditioning channels (Lumiere's masked video C and mask M),
zero at init, whose output is added to ``conv_in``'s (which equals widening ``conv_in``);
optionally also ``conditioning_conv_decoder``, a second one (zero at init too) whose output
is added to the input of the last, full-resolution decoder block.

Because time is resampled together with space, a level at spatial scale ``1/2^k`` also
runs at temporal scale ``1/2^k`` (when every resize resamples time), which is what makes
one pass over a long clip affordable.

Tensor layouts: the model takes and returns ``(B, C, F, H, W)``; a conditional model takes
``(B, C + conditioning_channels, F, H, W)``, the noisy clip first. Inside, frames are folded
into the batch, ``(B * F_k, C, H, W)`` with ``F_k`` the frame count of the current level,
because that is what the pretrained 2D layers accept. Text conditioning comes in once per
clip, ``(B, L, D)``, and is broadcast to ``B * F_k`` at each level.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import numbers
import os
import re
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, FrozenDict, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import AttentionMixin
from diffusers.models.attention_processor import (
    Attention,
    AttnAddedKVProcessor2_0,
)
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.utils import BaseOutput
from einops import rearrange
from torch import nn

from ..validation import check_int, check_multiple
from .forward_memory import ESTIMATE_TEXT_TOKENS, MemoryWalk, block_attentions
from .temporal import (
    TemporalAttentionBlock,
    TemporalBlock,
    TemporalConvBlock,
    TemporalDownsample,
    TemporalUpsample,
)

SUPPORTED_DOWN_BLOCKS = ("DownBlock2D", "CrossAttnDownBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D")
SUPPORTED_UP_BLOCKS = ("UpBlock2D", "CrossAttnUpBlock2D", "ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D")
SUPPORTED_MID_BLOCKS = (None, "UNetMidBlock2DCrossAttn", "UNetMidBlock2DSimpleCrossAttn", "UNetMidBlock2D")
UNSUPPORTED_ADDITION_EMBEDS = ("image_hint",)  # it concatenates a hint image to the sample
# Modules the 2D U-Net does not have; everything else is a pretrained 2D weight.
ADDED_PREFIXES = ("temporal_", "conditioning_")
# Frames per chunk of the spatial layers in inference (enable_frame_chunking): on by default,
# as it cost no time on CPU (0.96x, 0.91x, 1.01x a whole-clip forward at 16, 64, 80 frames).
DEFAULT_FRAME_CHUNK_SIZE = 8
CONDITIONING_INITS = ("zero", "copy")  # see SpaceTimeUNet.with_conditioning


@dataclass
class SpaceTimeUNetOutput(BaseOutput):
    """``sample``: the model prediction, ``(B, C, F, H, W)``."""

    sample: torch.Tensor


class _UNet2DView:
    """Lets ``UNet2DConditionModel``'s embedding helpers run on a ``SpaceTimeUNet``.

    Those helpers (time, class, addition embeddings, encoder projection) read the 2D
    config through ``self.config``; the space-time model keeps that config under
    ``config.unet2d_config`` and holds the very modules they use under the same names.
    Reusing them keeps every conditioning type the 2D U-Net supports, with no copy.
    """

    def __init__(self, model: SpaceTimeUNet):
        self._model = model
        self.config = FrozenDict(model.config.unet2d_config)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@dataclass
class _Conditioning:
    """Per-clip conditioning, broadcast to the frame count of each level on demand.

    ``emb`` ``(B, D_t)``, ``context`` ``(B, L, D)``, ``mask`` ``(B, 1, L)`` additive bias or None.
    """

    emb: torch.Tensor
    context: torch.Tensor | None
    mask: torch.Tensor | None
    cross_attention_kwargs: dict[str, Any]
    _per_frames: dict[int, tuple] = field(default_factory=dict)

    def at(self, num_frames: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(emb, context, mask)`` repeated to batch ``B * num_frames``, in ``(b f)`` order."""
        if num_frames not in self._per_frames:
            self._per_frames[num_frames] = tuple(
                None if t is None else t.repeat_interleave(num_frames, dim=0)
                for t in (self.emb, self.context, self.mask)
            )
        return self._per_frames[num_frames]


class SpaceTimeUNet(ModelMixin, AttentionMixin, ConfigMixin, PeftAdapterMixin):
    r"""A Lumiere Space-Time U-Net built around the layers of a ``UNet2DConditionModel``.

    Build one from a pretrained text-to-image U-Net with [`SpaceTimeUNet.from_unet2d`].

    Args:
        unet2d_config (`dict`): The config of the ``UNet2DConditionModel`` whose layers form
            the spatial path (its ``__init__`` arguments).
        temporal_downsample (`Sequence[bool]` or `bool`, *optional*): Which spatial
            downsamplers also halve the frame count (and the matching upsamplers double it):
            one flag per downsampler (``len(down_block_types) - 1``), or True (all, the
            default, as in Lumiere) or False (none: every level sees every frame). The frame
            count must be divisible by ``2 ** (number of True flags)``.
        temporal_attention_layers (`int`, defaults to 1): Self-attention layers stacked in
            each attention-based inflation block (coarsest level).
        temporal_attention_head_dim (`int`, defaults to 64): Channels per temporal attention head.
        temporal_kernel_size (`int`, defaults to 3): Kernel size of the temporal convolutions.
        temporal_cross_attention (`bool`, defaults to False): Whether the temporal attention
            layers also attend to the text. Lumiere's do not; turn it on when motion is
            described only in words that frozen 2D layers, trained on stills, barely encode.
        temporal_attention_spatial_positions (`bool`, defaults to False): Whether the
            temporal attention tokens also carry their ``(y, x)`` position (and frame index)
            from the start. Lumiere's do not; with it the coarsest level can place an object
            along a direction the text names even where the noisy input does not show it.
        conditioning_channels (`int`, defaults to 0): Channels of a conditioning input
            appended to the noisy sample (``in_channels + 1`` for Lumiere's masked video C
            and its mask M); 0 is the unconditional model. Its input convolution starts at
            zero, so a new conditional model predicts what the unconditional one does.
            Without them (a sample of ``in_channels`` only) the conditioning is zero:
            nothing known. Add them to a trained model with [`with_conditioning`].
        conditioning_decoder_input (`bool`, defaults to False): Whether the conditioning
            also enters the last (full-resolution) decoder block, through a convolution of
            its own (zero at init). Through ``conv_in`` alone it shares the first level's
            channels with the noisy sample, and a small model then copies the known pixels
            poorly (docs/editing.md); this gives the decoder, which knows the timestep, a
            path of its own to them. Needs ``conditioning_channels``.

    The ``temporal_*`` arguments are the *temporal options*: [`TemporalOptions`], the
    trainer's config and the command-line flags are all read off this signature and
    docstring, so an option is added here and nowhere else.
    """

    _supports_gradient_checkpointing = True
    _skip_layerwise_casting_patterns = ["norm"]
    set_default_attn_processor = UNet2DConditionModel.set_default_attn_processor

    @register_to_config
    def __init__(
        self,
        unet2d_config: dict,
        temporal_downsample: Sequence[bool] | bool | None = None,
        temporal_attention_layers: int = 1,
        temporal_attention_head_dim: int = 64,
        temporal_kernel_size: int = 3,
        temporal_cross_attention: bool = False,
        temporal_attention_spatial_positions: bool = False,
        conditioning_channels: int = 0,
        conditioning_decoder_input: bool = False,
    ):
        super().__init__()
        check_int("conditioning_channels", conditioning_channels, 0)
        if conditioning_decoder_input and not conditioning_channels:
            raise ValueError("conditioning_decoder_input=True needs conditioning_channels > 0")
        _check_unet2d_config(unet2d_config)
        # The spatial path is the 2D U-Net's own modules, adopted under their own names
        # (including the optional ones it sets to None, which its helpers test for).
        unet2d = UNet2DConditionModel(**unet2d_config)
        for name, value in {**vars(unet2d), **unet2d._modules}.items():
            if not name.startswith("_") and (value is None or isinstance(value, nn.Module)):
                setattr(self, name, value)

        num_levels = len(self.down_blocks)
        if temporal_downsample is None or isinstance(temporal_downsample, bool):
            temporal_downsample = [temporal_downsample is not False] * (num_levels - 1)
        if len(temporal_downsample) != num_levels - 1:
            raise ValueError(
                f"temporal_downsample needs one flag per spatial downsampler ({num_levels - 1}), "
                f"got {list(temporal_downsample)}"
            )
        self.time_resampling = [bool(flag) for flag in temporal_downsample]
        self.spatial_factor = 2 ** (num_levels - 1)
        self.temporal_factor = 2 ** sum(self.time_resampling)
        self.gradient_checkpointing = False
        self.frame_chunk_size: int | None = DEFAULT_FRAME_CHUNK_SIZE  # see enable_frame_chunking

        groups = unet2d_config.get("norm_num_groups") or 32
        eps = unet2d_config.get("norm_eps", 1e-5)
        coarsest = num_levels - 1
        text_dim = unet2d.config.cross_attention_dim
        text_dim = text_dim[-1] if isinstance(text_dim, (list, tuple)) else text_dim
        self._text_dim = text_dim  # the width of the text the cross-attention layers read

        def inflation(channels: int, level: int) -> nn.Module:
            if level == coarsest:
                return TemporalAttentionBlock(
                    channels, temporal_attention_layers, temporal_attention_head_dim, groups, eps,
                    cross_attention_dim=text_dim if temporal_cross_attention else None,
                    spatial_positions=temporal_attention_spatial_positions,
                )  # fmt: skip
            return TemporalConvBlock(channels, groups, temporal_kernel_size, eps)

        self.temporal_down_blocks = nn.ModuleList()
        for level, block in enumerate(self.down_blocks):
            resample = None
            if level < coarsest and self.time_resampling[level]:
                resample = TemporalDownsample(block.resnets[-1].out_channels, temporal_kernel_size)
            layers = [inflation(resnet.out_channels, level) for resnet in block.resnets]
            self.temporal_down_blocks.append(TemporalBlock(layers, resample))

        self.temporal_mid_block = None
        if self.mid_block is not None:
            self.temporal_mid_block = inflation(self.mid_block.resnets[-1].out_channels, coarsest)

        self.conditioning_conv_in = None
        if conditioning_channels:
            conv_in = self.conv_in
            self.conditioning_conv_in = nn.Conv2d(
                conditioning_channels, conv_in.out_channels, conv_in.kernel_size, padding=conv_in.padding, bias=False
            )
            nn.init.zeros_(self.conditioning_conv_in.weight)
        self.conditioning_conv_decoder = None
        if conditioning_decoder_input:
            # The channels the last decoder block receives: the next level's (or the mid
            # block's, with one level).
            widths = unet2d_config["block_out_channels"]
            self.conditioning_conv_decoder = nn.Conv2d(
                conditioning_channels, widths[min(1, len(widths) - 1)], 3, padding=1, bias=False
            )
            nn.init.zeros_(self.conditioning_conv_decoder.weight)

        self.temporal_up_blocks = nn.ModuleList()
        for index, block in enumerate(self.up_blocks):
            level = coarsest - index
            resample = None
            if level > 0 and self.time_resampling[level - 1]:
                resample = TemporalUpsample(block.resnets[-1].out_channels, temporal_kernel_size)
            layers = [inflation(resnet.out_channels, level) for resnet in block.resnets]
            self.temporal_up_blocks.append(TemporalBlock(layers, resample))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_unet2d(
        cls, unet: UNet2DConditionModel, *, load_weights: bool = True, **temporal_options: Any
    ) -> SpaceTimeUNet:
        """Inflate a text-to-image U-Net; ``temporal_options`` are the class's ``temporal_*``
        arguments ([`TemporalOptions`]).

        With ``load_weights`` every pretrained weight is copied under its own name and frozen;
        only the new temporal parameters require grad. The result has ``unet``'s dtype and
        device.
        """
        if not isinstance(unet, UNet2DConditionModel):
            raise ValueError(_not_a_unet2d(unet))
        unknown = sorted(set(temporal_options) - set(TEMPORAL_OPTIONS))
        if unknown:
            raise ValueError(
                f"from_unet2d got unknown options {unknown}; the temporal options are {list(TEMPORAL_OPTIONS)}"
            )
        init_keys = inspect.signature(UNet2DConditionModel.__init__).parameters
        unet2d_config = {key: value for key, value in unet.config.items() if key in init_keys}
        model = cls(unet2d_config=unet2d_config, **temporal_options)
        if load_weights:
            model.load_unet2d_state_dict(unet.state_dict())
            model.freeze_spatial_layers()
        model.to(unet.device)
        return model if model.dtype == unet.dtype else model.to(unet.dtype)

    def with_conditioning(
        self, conditioning_channels: int | None = None, init: str = "zero", decoder_input: bool = False
    ) -> SpaceTimeUNet:
        """A conditional copy of this model: the same config and weights (each keeping its
        ``requires_grad``) plus a conditioning input of ``conditioning_channels`` (default
        ``in_channels + 1``: a masked video and its mask), trainable, initialized by ``init``:

        * ``"zero"``: it predicts exactly what this model does until that input trains;
        * ``"copy"``: the masked video's channels start as ``conv_in``'s weights (the mask's at
          zero), so the model reads the known pixels as if added to its noisy sample. It no
          longer starts as this model, but it learns to follow the known pixels far sooner,
          as a zero input's gradients hardly agree from clip to clip (docs/editing.md).

        ``decoder_input`` also adds the conditioning's decoder input (``conditioning_decoder_input``,
        zero at init). A model that already has a conditioning input gets only that, its
        other weights kept, so a trained conditional model can be given one and train on."""
        if init not in CONDITIONING_INITS:
            raise ValueError(f"init={init!r} is not a conditioning init; choose one of {', '.join(CONDITIONING_INITS)}")
        existing = self.config.conditioning_channels
        if existing and (self.config.conditioning_decoder_input or not decoder_input):
            raise ValueError(f"this SpaceTimeUNet already has conditioning_channels={existing}")
        if existing and conditioning_channels not in (None, existing):
            raise ValueError(
                f"conditioning_channels={conditioning_channels}: this SpaceTimeUNet already has {existing}"
            )
        channels = existing or (
            self.conv_in.in_channels + 1 if conditioning_channels is None else conditioning_channels
        )
        check_int("conditioning_channels", channels, 1)
        model = type(self).from_config(
            self.config, conditioning_channels=channels, conditioning_decoder_input=decoder_input
        )
        model = self._grown(model)
        if init == "copy" and not existing:
            copied = min(channels, self.conv_in.in_channels)
            with torch.no_grad():
                model.conditioning_conv_in.weight[:, :copied] = self.conv_in.weight[:, :copied]
        return model

    @property
    def guidance_embedding_dim(self) -> int | None:
        """The width of the guidance-scale input of a guidance-distilled model (the 2D
        config's ``time_cond_proj_dim``, diffusers' LCM convention), None for a model
        guided the classifier-free way."""
        return self.config.unet2d_config.get("time_cond_proj_dim")

    def with_guidance_embedding(self, dim: int = 256) -> SpaceTimeUNet:
        """A copy of this model that also reads the guidance scale, as ``dim`` features
        ([`guidance_condition`]) passed as ``timestep_cond`` and projected into the
        timestep embedding: the student of guidance distillation, which makes the guided
        prediction in one pass (:mod:`lumiere.distillation`). The projection starts at
        zero, so the copy predicts what this model does until it trains; every weight keeps
        its ``requires_grad``, the projection's trainable."""
        check_int("dim", dim, 1)
        if self.guidance_embedding_dim is not None:
            raise ValueError(
                f"this SpaceTimeUNet already reads the guidance scale (width {self.guidance_embedding_dim})"
            )
        model = type(self).from_config(
            self.config, unet2d_config={**self.config.unet2d_config, "time_cond_proj_dim": dim}
        )
        model = self._grown(model)
        nn.init.zeros_(model.time_embedding.cond_proj.weight)
        return model

    def _grown(self, model: SpaceTimeUNet) -> SpaceTimeUNet:
        """``model``, built from this one's config with weights added, holding this one's
        weights (each keeping its ``requires_grad``; the added ones trainable), on this
        one's device and dtype."""
        model.load_state_dict(self.state_dict(), strict=False)
        trainable = {name: p.requires_grad for name, p in self.named_parameters()}
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(trainable.get(name, True))
        return model.to(device=self.device, dtype=self.dtype)

    def guidance_condition(self, guidance_scale: torch.Tensor) -> torch.Tensor:
        """The ``timestep_cond`` input ``(B, guidance_embedding_dim)`` of a guidance-distilled
        model for guidance scales ``(B,)``: their sinusoidal features, scaled by 1000 as
        timesteps are (the embedding of diffusers' latent consistency models)."""
        if self.guidance_embedding_dim is None:
            raise ValueError("this SpaceTimeUNet does not read the guidance scale; see with_guidance_embedding")
        features = get_timestep_embedding(
            guidance_scale.float() * 1000, self.guidance_embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1
        )
        return features.to(device=self.device, dtype=self.dtype)

    def load_unet2d_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a ``UNet2DConditionModel`` state dict into the spatial layers (strictly:
        every 2D key must be used, and only temporal keys may be left unset)."""
        missing, unexpected = self.load_state_dict(state_dict, strict=False)
        missing = [key for key in missing if not key.startswith(ADDED_PREFIXES)]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match the spatial layers: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )

    def to_unet2d(self) -> UNet2DConditionModel:
        """A standalone ``UNet2DConditionModel`` holding a copy of the spatial weights: the
        text-to-image model this one was inflated from (or its fine-tuned spatial layers)."""
        unet = UNet2DConditionModel(**self.config.unet2d_config)
        unet.load_state_dict({name: p for name, p in self.state_dict().items() if not name.startswith(ADDED_PREFIXES)})
        return unet.to(device=self.device, dtype=self.dtype)

    # ------------------------------------------------------------------ parameter groups

    def named_temporal_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if n.startswith("temporal_"))

    def temporal_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters added by inflation (what trains by default)."""
        return (p for _, p in self.named_temporal_parameters())

    def conditioning_parameters(self) -> Iterator[nn.Parameter]:
        """The conditioning input's parameters (none in an unconditional model)."""
        return (p for n, p in self.named_parameters() if n.startswith("conditioning_"))

    def spatial_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the pretrained 2D U-Net."""
        return (p for n, p in self.named_parameters() if not n.startswith(ADDED_PREFIXES))

    def freeze_spatial_layers(self) -> None:
        for parameter in self.spatial_parameters():
            parameter.requires_grad_(False)

    # ------------------------------------------------------------------ shapes

    def frames_per_level(self, num_frames: int) -> list[int]:
        """Frame count at each resolution level, finest first, e.g. 80 -> [80, 40, 20, 10]."""
        frames = [num_frames]
        for flag in self.time_resampling:
            frames.append(frames[-1] // 2 if flag else frames[-1])
        return frames

    def check_input_size(self, num_frames: int, height: int, width: int) -> None:
        """Raise ``ValueError`` unless ``(num_frames, height, width)`` fits the resampling
        factors; the message names the value and the nearest valid ones."""
        check_multiple("num_frames", num_frames, self.temporal_factor)
        check_multiple("height", height, self.spatial_factor)
        check_multiple("width", width, self.spatial_factor)

    def estimate_forward_memory(
        self, batch_size: int, num_frames: int, height: int, width: int, dtype: torch.dtype | None = None
    ) -> int:
        """Bytes that one no-grad forward of a ``(batch_size, C, num_frames, height, width)``
        sample needs at its peak, weights included: an estimate meant to err high.

        Analytic (from the config, ``frames_per_level`` and the attention processors in use;
        nothing runs), and its cost does not depend on the sizes. It follows the forward
        layer by layer and takes the largest total of:

        * what is held throughout: the weights and the sample, the conditioning repeated to
          each level's frame count (text of ``ESTIMATE_TEXT_TOKENS`` tokens), and the skip
          connections the down path has stored and the up path not yet consumed;
        * the input of the running layer and its working set: per-layer counts of
          ``(B * F_k, C, H_k, W_k)``-sized tensors alive at once (GEGLU feed-forwards hold
          four times their hidden width, convolutions a layout copy, the temporal resamplers
          their frame-major and padded copies);
        * attention score matrices where the processor materializes them, twice (scores and
          probabilities): all ``(B * F_k * heads, H_k * W_k, H_k * W_k)`` (spatial) or
          ``(B * H_k * W_k * heads, F_k, F_k)`` (temporal) under the classic processors, a
          slice of those rows after ``set_attention_slice``, none under SDPA (the default),
          whose fused kernels do not hold them (measured on CPU for both shapes; CUDA's
          flash and memory-efficient kernels do not either).

        Calibrated on CPU against the peak resident memory of a warm forward (one thread,
        glibc returning frees to the OS at once) of the tiny latent U-Net of
        ``lumiere.testing``, batch 1, fp32: at 8, 32 and 64 frames of 32x32 and 48x48 the
        estimate is 1.1 to 1.8 times the peak above the memory in use before the call
        (``tests/test_model_memory.py`` keeps it within 0.9x to 3x). Not counted: CUDA's
        convolution workspaces and allocator rounding, the autograd graph of a forward with
        grad, and a first call's one-off kernel caches.

        Args:
            batch_size, num_frames, height, width: the sample's ``B``, ``F``, ``H``, ``W``
                (``num_frames``, ``height``, ``width`` as ``check_input_size`` accepts).
            dtype: the dtype the forward runs in, weights and activations; the model's by
                default.
        """
        check_int("batch_size", batch_size, 1)
        self.check_input_size(num_frames, height, width)
        itemsize = (dtype or self.dtype).itemsize
        walk = MemoryWalk(batch_size, num_frames, height, width, itemsize, self._text_dim, self.frame_chunk_size)
        time_width = self.time_embedding.linear_2.out_features
        per_frame = walk.batch * (ESTIMATE_TEXT_TOKENS * self._text_dim + time_width) * itemsize
        sample_channels = self.conv_in.in_channels + self.config.conditioning_channels
        walk.held = walk.act(sample_channels) + per_frame * sum(set(self.frames_per_level(num_frames)))
        walk.run(self)
        weights = sum(t.numel() for t in itertools.chain(self.parameters(), self.buffers())) * itemsize
        return weights + walk.peak

    # ------------------------------------------------------------------ frame chunking

    def enable_frame_chunking(self, chunk_size: int = DEFAULT_FRAME_CHUNK_SIZE) -> None:
        """Run the spatial layers (resnets, 2D attention, spatial resamplers) over
        ``chunk_size`` frames at a time in no-grad forwards; the temporal layers still see
        every frame at once.

        The spatial layers treat each frame on its own, so the output is the same (up to
        float rounding, within 1e-5 in fp32) while their working set, the largest part of an
        inference forward's peak memory at the finest levels, shrinks to a chunk's. Rows of
        the folded ``(B * F_k, C, H, W)`` batch are chunked, so a guided call's two branches
        count twice. Forwards with grad (training) are not chunked: backward keeps every
        activation anyway. ``chunk_size`` >= 1; a level with no more rows than it runs whole.

        On by default with :data:`DEFAULT_FRAME_CHUNK_SIZE` frames: on CPU it lowered the
        peak of a ``mid`` forward at 80 frames to under half and took 0.91-1.01x the time
        (docs/performance.md); not yet timed on CUDA, where large batches suit the GPU
        better, so measure there and ``disable_frame_chunking()`` if it costs time.
        """
        check_int("chunk_size", chunk_size, 1)
        self.frame_chunk_size = chunk_size

    def disable_frame_chunking(self) -> None:
        """Run the spatial layers over all frames at once again."""
        self.frame_chunk_size = None

    # ------------------------------------------------------------------ attention

    def set_attention_slice(self, slice_size: str | int | None = "auto") -> None:
        """Compute the spatial attention in slices, which holds fewer score matrices at once
        at some cost in speed; ``DiffusionPipeline.enable_attention_slicing`` calls this.

        ``slice_size`` means what it does for ``UNet2DConditionModel.set_attention_slice``,
        in each attention layer of the 2D U-Net: how many (batch x head) rows have their
        ``(H * W, H * W)`` scores computed at a time. ``"auto"``: half the layer's heads;
        ``"max"``: 1, the least memory; an int, at most the fewest heads of a layer; None:
        back to the default processors (SDPA), which is what ``disable_attention_slicing``
        passes.

        The temporal attention keeps its processor, SDPA by default: its fused kernels never
        hold the ``(B * H * W, heads, F, F)`` scores, so slicing would only trade them for
        a slower loop over rows that does hold a slice of them.
        """
        attentions = [m for n, m in self.named_modules() if isinstance(m, Attention) and not n.startswith("temporal_")]
        if slice_size is None:
            for attention in attentions:
                # Attention.set_attention_slice(None) would give the added-KV layers (DeepFloyd
                # IF) the classic processor, not the SDPA one their 2D blocks build.
                if attention.added_kv_proj_dim is not None:
                    attention.set_processor(AttnAddedKVProcessor2_0())
                else:
                    attention.set_attention_slice(None)
            return
        fewest = min((attention.sliceable_head_dim for attention in attentions), default=None)
        is_int = isinstance(slice_size, numbers.Integral) and not isinstance(slice_size, bool)
        if isinstance(slice_size, str) and slice_size == "auto":
            sizes = [max(1, attention.sliceable_head_dim // 2) for attention in attentions]
        elif isinstance(slice_size, str) and slice_size == "max":
            sizes = [1] * len(attentions)
        elif is_int and 1 <= slice_size <= (fewest or slice_size):
            sizes = [slice_size] * len(attentions)
        else:
            ints = "an int >= 1" if fewest is None else f"an int in [1, {fewest}] (the fewest heads of a layer)"
            raise ValueError(f"slice_size must be 'auto', 'max', None or {ints}; got {slice_size!r}")
        for attention, size in zip(attentions, sizes):
            attention.set_attention_slice(size)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        timestep_cond: torch.Tensor | None = None,
        added_cond_kwargs: dict[str, torch.Tensor] | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> SpaceTimeUNetOutput | tuple[torch.Tensor]:
        r"""Predict noise (or v, or x0: whatever the 2D U-Net was trained for) for a whole clip.

        Args:
            sample: noisy clip ``(B, C, F, H, W)``; for a conditional model optionally followed
                on the channel axis by the conditioning, ``(B, C + conditioning_channels, F,
                H, W)`` (absent: zero, nothing known).
            timestep: one diffusion step for all clips, or one per clip ``(B,)``.
            encoder_hidden_states: text conditioning ``(B, L, D)``, once per clip.
            class_labels, timestep_cond, added_cond_kwargs: as for ``UNet2DConditionModel``,
                per clip (batch ``B``).
            encoder_attention_mask: ``(B, L)``, 1 keeps a token and 0 drops it.
            cross_attention_kwargs: passed to the spatial attention processors.

        Returns:
            [`SpaceTimeUNetOutput`] or a tuple whose first element is the prediction
            ``(B, C_out, F, H, W)``.
        """
        self._check_inputs(sample, timestep, encoder_hidden_states, encoder_attention_mask)
        batch, _, num_frames, height, width = sample.shape
        if self.config.unet2d_config.get("center_input_sample"):
            sample = 2 * sample - 1.0
        cond = self._conditioning(
            sample, timestep, encoder_hidden_states, class_labels, timestep_cond, added_cond_kwargs,
            cross_attention_kwargs, encoder_attention_mask,
        )  # fmt: skip

        frames = num_frames
        folded = rearrange(sample, "b c f h w -> (b f) c h w")
        channels = self.conv_in.in_channels
        hidden = self.conv_in(folded[:, :channels])
        conditioned = folded.shape[1] > channels
        if conditioned:
            hidden = hidden + self.conditioning_conv_in(folded[:, channels:])
        skips = [hidden]
        for block, temporal in zip(self.down_blocks, self.temporal_down_blocks):
            for resnet, attention, inflation in zip(block.resnets, block_attentions(block), temporal.layers):
                hidden = self._layer(hidden, frames, cond, resnet, attention, inflation)
                skips.append(hidden)
            if block.downsamplers is not None:
                for downsampler in block.downsamplers:
                    hidden = self._per_frame(partial(_resample, downsampler), hidden, cond.at(frames)[0])
                if temporal.resample is not None:
                    hidden = temporal.resample(hidden, frames)
                    frames //= 2
                skips.append(hidden)

        if self.mid_block is not None:
            hidden = self._mid(hidden, frames, cond)

        for block, temporal in zip(self.up_blocks, self.temporal_up_blocks):
            if block is self.up_blocks[-1] and conditioned and self.conditioning_conv_decoder is not None:
                hidden = hidden + self.conditioning_conv_decoder(folded[:, channels:])
            for resnet, attention, inflation in zip(block.resnets, block_attentions(block), temporal.layers):
                hidden = torch.cat([hidden, skips.pop()], dim=1)
                hidden = self._layer(hidden, frames, cond, resnet, attention, inflation)
            if block.upsamplers is not None:
                for upsampler in block.upsamplers:
                    hidden = self._per_frame(partial(_resample, upsampler), hidden, cond.at(frames)[0])
                if temporal.resample is not None:
                    hidden = temporal.resample(hidden, frames)
                    frames *= 2

        if self.conv_norm_out is not None:
            hidden = self.conv_act(self.conv_norm_out(hidden))
        hidden = self.conv_out(hidden)
        out = rearrange(hidden, "(b f) c h w -> b c f h w", b=batch)
        return SpaceTimeUNetOutput(sample=out) if return_dict else (out,)

    def _check_inputs(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
    ) -> None:
        """Raise ValueError, naming the argument, its shape and the expected one, for inputs
        that would otherwise fail deep inside a layer with a message about something else.

        Shape and dtype comparisons only: nothing reads tensor data, so no device sync.
        """
        shape = tuple(sample.shape)
        channels = self.conv_in.in_channels
        extra = self.config.conditioning_channels
        allowed = (channels, channels + extra) if extra else (channels,)
        if sample.ndim != 5 or shape[1] not in allowed:
            expected = f"(B, {channels}, F, H, W) (in_channels={channels})"
            if extra:
                expected += f" or (B, {channels + extra}, F, H, W) with conditioning_channels={extra}"
            raise ValueError(f"sample must be {expected}; got shape {shape}")
        if not sample.is_floating_point():
            raise ValueError(f"sample must be a floating-point tensor; got dtype {sample.dtype}")
        batch, _, num_frames, height, width = shape
        self.check_input_size(num_frames, height, width)
        if torch.is_tensor(timestep):
            # (1,) broadcasts like a scalar in UNet2DConditionModel's time embedding.
            if timestep.ndim > 1 or (timestep.ndim == 1 and len(timestep) not in (1, batch)):
                got = tuple(timestep.shape)
                raise ValueError(f"timestep must be a scalar or of shape ({batch},) (one per clip); got shape {got}")
        elif not isinstance(timestep, numbers.Real):
            raise ValueError(f"timestep must be a number or a tensor; got {type(timestep).__name__}")
        if encoder_hidden_states is None:
            return
        width = self._context_width()
        context = tuple(encoder_hidden_states.shape)
        if len(context) != 3 or context[0] != batch or width not in (None, context[2]):
            expected = f"({batch}, L, {width or 'D'})"
            raise ValueError(f"encoder_hidden_states must be {expected} (one text per clip); got shape {context}")
        if encoder_attention_mask is not None and tuple(encoder_attention_mask.shape) != context[:2]:
            raise ValueError(
                f"encoder_attention_mask must be {context[:2]} (one flag per text token); "
                f"got shape {tuple(encoder_attention_mask.shape)}"
            )

    def _context_width(self) -> int | None:
        """The width ``D`` ``encoder_hidden_states`` must have: what the cross-attention reads,
        or what the 2D config's text projection takes; None behind its image projections,
        whose inputs come in ``added_cond_kwargs``."""
        if self.encoder_hid_proj is None:
            return self._text_dim
        return self.encoder_hid_proj.in_features if isinstance(self.encoder_hid_proj, nn.Linear) else None

    def _conditioning(
        self, sample, timestep, encoder_hidden_states, class_labels, timestep_cond, added_cond_kwargs,
        cross_attention_kwargs, encoder_attention_mask,
    ) -> _Conditioning:  # fmt: skip
        """Embeddings per clip, exactly as ``UNet2DConditionModel.forward`` computes them."""
        unet2d = _UNet2DView(self)
        emb = self.time_embedding(UNet2DConditionModel.get_time_embed(unet2d, sample, timestep), timestep_cond)
        class_emb = UNet2DConditionModel.get_class_embed(unet2d, sample, class_labels)
        if class_emb is not None:
            concat = unet2d.config.get("class_embeddings_concat")
            emb = torch.cat([emb, class_emb], dim=-1) if concat else emb + class_emb
        aug_emb = UNet2DConditionModel.get_aug_embed(unet2d, emb, encoder_hidden_states, added_cond_kwargs)
        if aug_emb is not None:
            emb = emb + aug_emb
        if self.time_embed_act is not None:
            emb = self.time_embed_act(emb)
        context = UNet2DConditionModel.process_encoder_hidden_states(unet2d, encoder_hidden_states, added_cond_kwargs)
        mask = None
        if encoder_attention_mask is not None:
            mask = ((1 - encoder_attention_mask.to(emb.dtype)) * -10000.0).unsqueeze(1)
        return _Conditioning(emb, context, mask, cross_attention_kwargs or {})

    def _checkpointed(self, run, hidden: torch.Tensor) -> torch.Tensor:
        """``run(hidden)``, recomputed in backward when gradient checkpointing is on."""
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(run, hidden)
        return run(hidden)

    def _per_frame(self, fn, hidden: torch.Tensor, *per_row: torch.Tensor | None) -> torch.Tensor:
        """``fn(hidden, *per_row)`` for a layer that treats every row of ``(B * F_k, ...)``
        on its own, over chunks of ``frame_chunk_size`` rows when frame chunking is on and
        no gradient is recorded (see [`enable_frame_chunking`])."""
        size = self.frame_chunk_size
        if size is None or torch.is_grad_enabled() or hidden.shape[0] <= size:
            return fn(hidden, *per_row)
        rows = range(0, hidden.shape[0], size)
        return torch.cat(
            [fn(hidden[i : i + size], *(None if t is None else t[i : i + size] for t in per_row)) for i in rows]
        )

    def _layer(self, hidden, frames, cond, resnet, attention, inflation) -> torch.Tensor:
        """One spatial layer (resnet, then its attention if any) and its inflation block."""

        def spatial(hidden, emb, context, mask):
            hidden = resnet(hidden, emb)
            if attention is not None:
                hidden = _attend(attention, hidden, emb, context, mask, cond.cross_attention_kwargs)
            return hidden

        def run(hidden):
            emb, context, mask = cond.at(frames)
            hidden = self._per_frame(spatial, hidden, emb, context, mask)
            return inflation(hidden, frames, context, mask)

        return self._checkpointed(run, hidden)

    def _mid(self, hidden, frames, cond) -> torch.Tensor:
        """The 2D mid block (resnet, then attention + resnet pairs), then temporal attention."""

        def run(hidden):
            emb, context, mask = cond.at(frames)
            hidden = self.mid_block.resnets[0](hidden, emb)
            for attention, resnet in zip(block_attentions(self.mid_block), self.mid_block.resnets[1:]):
                if attention is not None:
                    hidden = _attend(attention, hidden, emb, context, mask, cond.cross_attention_kwargs)
                hidden = resnet(hidden, emb)
            return self.temporal_mid_block(hidden, frames, context, mask)

        return self._checkpointed(run, hidden)


# ---------------------------------------------------------------------- temporal options


def _documented_args(docstring: str) -> dict[str, str]:
    """``name -> description`` of the entries under ``Args:`` in a diffusers-style
    docstring (``name (`type`): text`` and its indented continuation lines)."""
    entries: dict[str, str] = {}
    name = None
    for line in inspect.cleandoc(docstring).split("Args:", 1)[1].splitlines():
        entry = re.match(r" {4}(\w+) \(.*?\):\s*(.*)", line)
        if entry:
            name = entry[1]
            entries[name] = entry[2]
        elif name and line.startswith(" " * 8):
            entries[name] += " " + line.strip()
        else:
            name = None
    return {key: text.replace("``", "").replace("`", "") for key, text in entries.items()}


def _temporal_options() -> tuple[dict[str, Any], type]:
    """The ``temporal_*`` arguments of ``SpaceTimeUNet.__init__`` (name -> default), and a
    dataclass of them whose fields carry their docstring entries as ``help``."""
    parameters = inspect.signature(SpaceTimeUNet.__init__).parameters
    hints = typing.get_type_hints(SpaceTimeUNet.__init__)
    help = _documented_args(SpaceTimeUNet.__doc__)
    names = [name for name in parameters if name.startswith("temporal_")]
    fields = [
        (
            name,
            hints[name],
            dataclasses.field(default=parameters[name].default, metadata={"help": help[name], "choices": None}),
        )
        for name in names
    ]
    options = dataclasses.make_dataclass("TemporalOptions", fields)
    options.__module__ = __name__
    options.__doc__ = "How a text-to-image U-Net is inflated: the temporal options of [`SpaceTimeUNet`]."
    return {name: parameters[name].default for name in names}, options


TEMPORAL_OPTIONS, TemporalOptions = _temporal_options()


# ---------------------------------------------------------------------- helpers


def _not_a_unet2d(value: object) -> str:
    """Why ``from_unet2d`` refuses ``value``, and what it takes instead."""
    accepted = "from_unet2d takes a UNet2DConditionModel (a text-to-image U-Net)"
    if isinstance(value, SpaceTimeUNet):
        return f"{accepted}; got a SpaceTimeUNet, which is already inflated: use it as it is"
    if isinstance(value, (str, os.PathLike)):
        return (
            f"{accepted}, not a path; got {str(value)!r}. "
            "Load it first: UNet2DConditionModel.from_pretrained(path, subfolder='unet')"
        )
    return f"{accepted}; got a {type(value).__qualname__}"


def _check_unet2d_config(config: dict) -> None:
    for key, allowed in (
        ("down_block_types", SUPPORTED_DOWN_BLOCKS),
        ("up_block_types", SUPPORTED_UP_BLOCKS),
    ):
        for block_type in config.get(key, ()):
            if block_type not in allowed:
                raise ValueError(f"{key} contains {block_type!r}; SpaceTimeUNet supports {list(allowed)}")
    mid = config.get("mid_block_type", "UNetMidBlock2DCrossAttn")
    if mid not in SUPPORTED_MID_BLOCKS:
        raise ValueError(
            f"mid_block_type={mid!r} is not supported; SpaceTimeUNet supports {list(SUPPORTED_MID_BLOCKS)}"
        )
    if config.get("addition_embed_type") in UNSUPPORTED_ADDITION_EMBEDS:
        raise ValueError(f"addition_embed_type={config['addition_embed_type']!r} is not supported")


def _attend(attention, hidden, emb, context, mask, cross_attention_kwargs) -> torch.Tensor:
    """Call a 2D block's attention the way that block type does."""
    if isinstance(attention, Transformer2DModel):
        return attention(
            hidden,
            encoder_hidden_states=context,
            cross_attention_kwargs=cross_attention_kwargs,
            encoder_attention_mask=mask,
            return_dict=False,
        )[0]
    if isinstance(attention, Attention) and attention.is_cross_attention:
        return attention(hidden, encoder_hidden_states=context, attention_mask=mask, **cross_attention_kwargs)
    return attention(hidden, temb=emb)  # spatial self-attention (UNetMidBlock2D)


def _resample(resampler: nn.Module, hidden: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Apply a 2D block's spatial down/upsampler (a resnet in DeepFloyd-IF-style blocks)."""
    if isinstance(resampler, ResnetBlock2D):
        return resampler(hidden, emb)
    return resampler(hidden)
