"""Which fast settings this hardware can use; the pipelines and trainer apply them by default.

Measured on a 2-core AVX2 CPU without native bf16 kernels (docs/performance.md): bf16
matmuls ran hundreds of times slower than fp32 there, so low precision is only chosen
where the hardware runs it natively.
"""

from __future__ import annotations

import contextlib

import torch


def fast_autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The low-precision dtype worth autocasting to on ``device``, or None for none.

    CUDA: bf16 where supported, else fp16. CPU: bf16 only when oneDNN has native bf16
    kernels (AVX512-BF16 or AMX); elsewhere bf16 is emulated and far slower than fp32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    return None


def compute_dtype(device: torch.device | str, model_dtype: torch.dtype, autocast: bool) -> torch.dtype:
    """The dtype the model computes in under :func:`fast_autocast` with these arguments."""
    fast = fast_autocast_dtype(device) if autocast and model_dtype == torch.float32 else None
    return fast or model_dtype


def fast_autocast(device: torch.device | str, model_dtype: torch.dtype, enabled: bool = True):
    """A ``torch.autocast`` context to the fast dtype of ``device``, or a null context when
    disabled, when the device has none, or when the model already runs in low precision."""
    dtype = compute_dtype(device, model_dtype, enabled)
    if dtype == model_dtype:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
