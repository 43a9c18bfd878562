"""The temporal modules compile as single graphs (no graph breaks) and match eager mode."""

import pytest
import torch

from lumiere.models.temporal import TemporalAttentionBlock, TemporalConvBlock, TemporalDownsample, TemporalUpsample


@pytest.mark.parametrize(
    "module, channels, size",
    [
        (lambda c: TemporalConvBlock(c, norm_num_groups=8), 16, 8),
        (lambda c: TemporalAttentionBlock(c, num_layers=2, head_dim=8, norm_num_groups=8), 16, 4),
        (lambda c: TemporalDownsample(c), 16, 8),
        (lambda c: TemporalUpsample(c), 16, 8),
    ],
    ids=["conv", "attention", "downsample", "upsample"],
)
def test_temporal_module_compiles_with_fullgraph(module, channels, size):
    torch.manual_seed(0)
    block = module(channels).eval()
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.normal_(0, 0.05)  # away from the identity init, so every op matters
    frames = 6
    hidden = torch.randn(2 * frames, channels, size, size)
    compiled = torch.compile(block, fullgraph=True, dynamic=False)
    with torch.no_grad():
        assert torch.allclose(compiled(hidden, frames), block(hidden, frames), atol=1e-5)
