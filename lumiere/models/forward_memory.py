"""The memory one no-grad forward of a ``SpaceTimeUNet`` needs, worked out layer by layer
from the model's modules without running it; ``SpaceTimeUNet.estimate_forward_memory`` is
the entry point, and its docstring says what is counted and how it was calibrated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffusers.models.attention_processor import (
    Attention,
    AttnAddedKVProcessor,
    AttnProcessor,
    SlicedAttnAddedKVProcessor,
    SlicedAttnProcessor,
)
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from .temporal import TemporalConvBlock

if TYPE_CHECKING:
    from .space_time_unet import SpaceTimeUNet

# Text tokens the estimate assumes (its signature has no text): CLIP's and DeepFloyd IF's
# T5 context length.
ESTIMATE_TEXT_TOKENS = 77


def block_attentions(block: nn.Module) -> list[nn.Module | None]:
    """The attention after each resnet of a 2D block (None where it has none)."""
    attentions = getattr(block, "attentions", None)
    return list(attentions) if attentions is not None else [None] * len(block.resnets)


class MemoryWalk:
    """The bytes alive through one no-grad forward of a ``SpaceTimeUNet``, layer by layer,
    without running it (see ``SpaceTimeUNet.estimate_forward_memory``).

    ``frames``, ``height`` and ``width`` follow the level the walk is at; ``held`` is what stays
    allocated from layer to layer (the sample, the conditioning, the stored skips) and
    ``peak`` the most alive at any moment. Each module's working set, in bytes beyond its
    input, is counted in activations of its width at the current level (measured on CPU).
    """

    def __init__(
        self, batch: int, frames: int, height: int, width: int, itemsize: int, text_width: int,
        frame_chunk_size: int | None = None,
    ):  # fmt: skip
        self.batch, self.frames, self.height, self.width = batch, frames, height, width
        self.itemsize, self.text_width = itemsize, text_width
        self.frame_chunk_size = frame_chunk_size
        self.held = self.peak = 0

    def per_frame(self, work: int, out: int) -> int:
        """A per-frame layer's bytes beyond its input: ``work`` on all rows at once, or under
        frame chunking a chunk's share of it while the chunks' outputs and their
        concatenation (``out`` each) are alive."""
        rows = self.batch * self.frames
        if self.frame_chunk_size is None or rows <= self.frame_chunk_size:
            return work
        return 2 * out + work * self.frame_chunk_size // rows

    def act(self, channels: int) -> int:
        """Bytes of a ``(B * F_k, channels, H_k, W_k)`` activation at the current level."""
        return self.batch * self.frames * self.height * self.width * channels * self.itemsize

    def moment(self, live: int) -> None:
        """Note a moment at which ``live`` bytes are alive besides the held ones."""
        self.peak = max(self.peak, self.held + live)

    def run(self, model: SpaceTimeUNet) -> None:
        """Walk the layers in the order of ``SpaceTimeUNet.forward``."""
        folded = self.act(model.conv_in.in_channels)  # the sample with its frames in the batch
        skips = [self.act(model.conv_in.out_channels)]
        self.moment(folded + _conv(folded, skips[-1]))
        self.held += skips[-1]
        for block, temporal in zip(model.down_blocks, model.temporal_down_blocks):
            for resnet, attention, inflation in zip(block.resnets, block_attentions(block), temporal.layers):
                self.moment(self._layer(resnet, attention, inflation))  # its input is the last skip
                skips.append(self.act(resnet.out_channels))
                self.held += skips[-1]
            if block.downsamplers is not None:
                skips.append(self._resample(block.downsamplers, temporal.resample, 0, up=False))
                self.held += skips[-1]

        hidden = 0 if model.mid_block is None else self._mid(model.mid_block, model.temporal_mid_block)
        for block, temporal in zip(model.up_blocks, model.temporal_up_blocks):
            for resnet, attention, inflation in zip(block.resnets, block_attentions(block), temporal.layers):
                joined = self.act(resnet.in_channels)
                self.moment(hidden + joined)
                self.held -= skips.pop()
                # forward() keeps the concatenation until the whole layer returns.
                self.moment(joined + self._layer(resnet, attention, inflation))
                hidden = self.act(resnet.out_channels)
            if block.upsamplers is not None:
                hidden = self._resample(block.upsamplers, temporal.resample, hidden, up=True)

        if model.conv_norm_out is not None:
            self.moment(3 * hidden)  # the input, its norm and its activation
        self.moment(hidden + _conv(hidden, self.act(model.conv_out.out_channels)))

    def _layer(self, resnet: ResnetBlock2D, attention: nn.Module | None, inflation: nn.Module) -> int:
        """One spatial layer and its inflation block, beyond the layer's input."""
        out = self.act(resnet.out_channels)
        spatial = self._resnet(resnet, self.act(1))
        if attention is not None:
            spatial = max(spatial, out + self._attention(attention))
        return max(self.per_frame(spatial, out), out + self._inflation(inflation))

    def _mid(self, mid: nn.Module, inflation: nn.Module) -> int:
        """The mid block and its temporal attention (input held); returns the output's bytes."""
        out = self.act(mid.resnets[0].out_channels)
        live = [self._resnet(mid.resnets[0], self.act(1)), out + self._inflation(inflation)]
        for attention, resnet in zip(block_attentions(mid), mid.resnets[1:]):
            live += [out + self._resnet(resnet, self.act(1))]
            if attention is not None:
                live += [out + self._attention(attention)]
        self.moment(max(live))
        return out

    def _resample(self, resamplers: nn.ModuleList, temporal: nn.Module | None, hidden: int, up: bool) -> int:
        """A block's spatial resamplers, then its temporal one; ``hidden`` is the input's bytes
        (0 when it is a held skip). Moves the walk to the new level; returns the output's bytes."""
        for resampler in resamplers:
            per_channel = self.act(1)
            size = (self.height * 2, self.width * 2) if up else (self.height // 2, self.width // 2)
            self.height, self.width = size
            out = self.act(resampler.out_channels)
            if isinstance(resampler, ResnetBlock2D):
                work = self._resnet(resampler, per_channel)
            elif up:
                work = 3 * out  # the interpolated input, the convolution's layout copy and output
            else:
                work = _conv(per_channel * resampler.channels, out)
            self.moment(hidden + self.per_frame(work, out))
            hidden = out
        if temporal is not None:
            self.frames = self.frames * 2 if up else self.frames // 2
            out = hidden * 2 if up else hidden // 2
            # Frame-major and replicate-padded copies, the nearest-neighbour frames, the
            # convolution's output, their sum, and the sum folded back.
            work = hidden + 4 * out if up else 2 * hidden + 3 * out
            self.moment(hidden + work)
            hidden = out
        return hidden

    def _resnet(self, resnet: ResnetBlock2D, per_channel_in: int) -> int:
        """A ``ResnetBlock2D`` beyond its input (``per_channel_in`` bytes per input channel); the
        walk is at its output level (different for DeepFloyd IF's resampling resnets)."""
        inputs, out = resnet.in_channels * per_channel_in, self.act(resnet.out_channels)
        normed = 2 * inputs + out  # the norm and activation of the input, the first conv's output
        resampled = inputs + 2 * self.act(resnet.in_channels) + 2 * out if resnet.up or resnet.down else 0
        summed = (3 + (resnet.conv_shortcut is not None)) * out  # output, shortcut, sum, scaled sum
        return max(normed, resampled, summed)

    def _attention(self, attention: nn.Module) -> int:
        """A 2D block's attention (``Transformer2DModel`` or a lone ``Attention``) beyond its input."""
        rows, tokens = self.batch * self.frames, self.height * self.width
        if isinstance(attention, Transformer2DModel):
            return max(
                self._transformer(block.attn1, block.attn2, block.ff, attention.inner_dim, rows, tokens)
                for block in attention.transformer_blocks
            )
        # Norm, query, key, value, output, projection, residual; added-KV layers (DeepFloyd
        # IF) attend over the text and the image tokens together.
        keys = tokens + (ESTIMATE_TEXT_TOKENS if attention.is_cross_attention else 0)
        return 7 * self.act(attention.inner_dim) + self._scores(attention, rows, tokens, keys)

    def _inflation(self, block: nn.Module) -> int:
        """A temporal inflation block beyond its input."""
        if isinstance(block, TemporalConvBlock):
            # h, its frame-major and replicate-padded copies, the convolution's output, and
            # one more for the padding frames (4.1 measured).
            return 5 * self.act(block.spatial_norm.num_channels)
        rows, width = self.batch * self.height * self.width, block.norm.num_channels
        work = max(
            self._transformer(layer.attn, layer.attn_cross, layer.ff, width, rows, self.frames)
            for layer in block.layers
        )
        if block.layers[0].attn_cross is not None:  # the text repeated to every position
            work += rows * ESTIMATE_TEXT_TOKENS * self.text_width * self.itemsize
        return work

    def _transformer(
        self, attn: Attention, cross: Attention | None, ff: nn.Module | None, width: int, rows: int, tokens: int
    ) -> int:
        """One transformer layer over ``rows`` sequences of ``tokens`` tokens of ``width``: its
        attention (residual stream, norm, query, key, value, output, projection, and the
        scores), or its feed-forward (stream, norm, projection to ``2 * hidden`` for GEGLU,
        the gate's activation and the product: twice the projection)."""
        per_channel = self.act(1)
        scores = self._scores(attn, rows, tokens, tokens)
        if cross is not None:
            scores = max(scores, self._scores(cross, rows, tokens, ESTIMATE_TEXT_TOKENS))
        projection = 0 if ff is None else ff.net[0].proj.out_features
        return max(6 * width * per_channel + scores, (4 * width + 2 * projection) * per_channel)

    def _scores(self, attention: Attention, rows: int, queries: int, keys: int) -> int:
        """Bytes of the score matrices ``attention`` holds at once: scores and probabilities
        for every (row x head) under the classic processors, for a slice of them under the
        sliced ones, none under the fused ones (SDPA, xFormers)."""
        processor = attention.processor
        count = rows * attention.heads
        if isinstance(processor, (SlicedAttnProcessor, SlicedAttnAddedKVProcessor)):
            count = min(count, processor.slice_size)
        elif not isinstance(processor, (AttnProcessor, AttnAddedKVProcessor)):
            return 0
        return 2 * count * queries * keys * self.itemsize


def _conv(inputs: int, outputs: int) -> int:
    """Bytes a convolution allocates: its output, and a copy of the larger side in the
    blocked layout oneDNN computes in."""
    return max(inputs, outputs) + outputs
