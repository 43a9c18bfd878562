"""``SpaceTimeUNet.estimate_forward_memory``: within bounds of measured peaks, affine in the
batch and the frames, and cheap for any size."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.common import MALLOC_ENV
from lumiere import SpaceTimeUNet
from lumiere.models.forward_memory import ESTIMATE_TEXT_TOKENS
from lumiere.testing import make_unet2d, subprocess_env

# (frames, size) of the batch-1 samples measured; the docstring of estimate_forward_memory
# reports the ratios.
CALIBRATION = [(frames, size) for size in (32, 48) for frames in (8, 32, 64)]

# Run in a child whose allocator returns large frees to the OS at once (MALLOC_ENV), so that
# the peak resident memory is what the forward needed. One thread: what the estimate was
# calibrated with, and the machine is shared.
MEASURE = f"""
import json, sys
import torch
from benchmarks.common import measure
from lumiere import SpaceTimeUNet
from lumiere.testing import TEXT_DIM, make_unet2d

torch.set_num_threads(1)
model = SpaceTimeUNet.from_unet2d(make_unet2d("latent")).eval()
context = torch.randn(1, {ESTIMATE_TEXT_TOKENS}, TEXT_DIM)
peaks = []
with torch.no_grad():
    for frames, size in json.loads(sys.argv[1]):
        sample = torch.randn(1, model.conv_in.in_channels, frames, size, size)
        model(sample, 10, context)  # a first call at a shape also fills one-off kernel caches
        peaks.append(measure(lambda: model(sample, 10, context), torch.device("cpu"))[1] * 2**20)
print(json.dumps(peaks))
"""


@pytest.fixture(scope="module")
def model():
    return SpaceTimeUNet.from_unet2d(make_unet2d("latent")).eval()


@pytest.mark.skipif(
    not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS (/proc/self/clear_refs)"
)
def test_estimate_bounds_the_measured_peak(model):
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(CALIBRATION)],
        cwd=root, env=subprocess_env(**MALLOC_ENV), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    peaks = json.loads(result.stdout.splitlines()[-1])
    ratios = {
        (frames, size): model.estimate_forward_memory(1, frames, size, size) / peak
        for (frames, size), peak in zip(CALIBRATION, peaks)
    }
    report = ", ".join(f"{f} frames at {s}x{s}: {r:.2f}" for (f, s), r in ratios.items())
    assert all(0.9 <= ratio <= 3 for ratio in ratios.values()), report


def test_estimate_is_affine_in_batch_and_frames_with_the_weights_as_offset(model):
    estimate = model.estimate_forward_memory
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    per_clip_frame = estimate(1, 16, 32, 32) - estimate(1, 8, 32, 32)
    assert per_clip_frame > 0
    for batch, frames in ((1, 8), (1, 24), (3, 8), (2, 64)):
        assert estimate(batch, frames, 32, 32) == weights + batch * frames // 8 * per_clip_frame
    # Half the bytes per element, half the estimate.
    assert 2 * estimate(2, 16, 32, 32, torch.float16) == estimate(2, 16, 32, 32)


def test_estimate_is_cheap_for_a_million_frames(model):
    small = model.estimate_forward_memory(1, 8, 64, 64)
    start = time.perf_counter()
    for _ in range(20):
        huge = model.estimate_forward_memory(1, 1_000_000, 64, 64)
    seconds = (time.perf_counter() - start) / 20
    assert seconds < 0.05  # no forward, no loop over frames: about a millisecond, the weights' sum
    assert huge > 1000 * small


def test_estimate_counts_the_scores_that_the_processor_materializes(model):
    model.disable_frame_chunking()  # every row's scores at once
    sdpa = model.estimate_forward_memory(2, 16, 32, 32)
    model.set_attention_slice("max")
    sliced = model.estimate_forward_memory(2, 16, 32, 32)
    model.set_default_attn_processor()  # classic processors: every score matrix at once
    classic = model.estimate_forward_memory(2, 16, 32, 32)
    model.set_attention_slice(None)
    assert model.estimate_forward_memory(2, 16, 32, 32) == sdpa
    # The scores and probabilities of the finest spatial self-attention, 2 * (B * F_1 * heads, HW, HW)
    # in fp32, are more than all that the SDPA forward needs.
    heads = model.down_blocks[1].attentions[0].transformer_blocks[0].attn1.heads
    assert classic > 2 * (2 * 8 * heads) * (16 * 16) ** 2 * 4 > sdpa
    assert sdpa <= sliced < classic
    # Frame chunking holds a chunk's scores at a time.
    model.set_default_attn_processor()
    model.enable_frame_chunking(4)
    assert model.estimate_forward_memory(2, 16, 32, 32) < classic
    model.set_attention_slice(None)
    model.enable_frame_chunking()


def test_estimate_rejects_sizes_the_forward_rejects(model):
    with pytest.raises(ValueError, match="num_frames=6 must be a positive multiple of 4"):
        model.estimate_forward_memory(1, 6, 32, 32)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1; got 0"):
        model.estimate_forward_memory(0, 8, 32, 32)
