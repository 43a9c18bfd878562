"""The machine's measured peak: large matmuls and a 3x3 convolution, per dtype and layout.

    python -m benchmarks.bench_peak        # writes benchmarks/results/peak.json

The model benchmarks report their achieved FLOP/s as a fraction of these numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .common import device, measure, median, save, synchronize

REPEATS = 5


def gflops(fn, flops: int, dev: torch.device) -> float:
    fn()  # warm-up: kernel selection, allocations
    synchronize(dev)
    return flops / median([measure(fn, dev)[0] for _ in range(REPEATS)]) / 1e9


def _native_bf16(dev: torch.device) -> bool:
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def main() -> dict:
    dev = device()
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        # 2048 is large enough for a peak where bf16 is native; where it is emulated a
        # 2048 matmul takes about a minute, so the emulated case is measured at 512.
        n = 2048 if dtype == torch.float32 or _native_bf16(dev) else 512
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        results[f"matmul_{str(dtype)[6:]}"] = gflops(lambda: a @ b, 2 * n**3, dev)
        results[f"matmul_{str(dtype)[6:]}_size"] = n

    for dtype, layout in (
        (torch.float32, torch.contiguous_format),
        (torch.float32, torch.channels_last),
        (torch.bfloat16, torch.channels_last),
    ):
        batch, channels, size = (8, 128, 64) if dtype == torch.float32 or _native_bf16(dev) else (1, 64, 32)
        conv_flops = 2 * batch * channels * channels * 9 * size * size
        x = torch.randn(batch, channels, size, size, device=dev, dtype=dtype).to(memory_format=layout)
        w = torch.randn(channels, channels, 3, 3, device=dev, dtype=dtype).to(memory_format=layout)
        name = "nchw" if layout == torch.contiguous_format else "channels_last"
        results[f"conv3x3_{str(dtype)[6:]}_{name}"] = gflops(lambda: F.conv2d(x, w, padding=1), conv_flops, dev)

    results["native_bf16"] = _native_bf16(dev)
    print(save("peak", {"gflops": results}))
    for name, value in results.items():
        print(f"{name:32s} {value:.2f}" if isinstance(value, float) else f"{name:32s} {value}")
    return results


if __name__ == "__main__":
    main()
