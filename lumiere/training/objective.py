"""The denoising objective: timesteps, noising, targets and loss weights, for images
``(B, C, H, W)`` and videos ``(B, C, F, H, W)`` alike."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from ..noise import video_noise
from .config import TIMESTEP_BIAS


def resolve_prediction_type(requested: str, pretrained: str, from_scratch: bool) -> str:
    """``'auto'`` keeps the pretrained model's type: frozen 2D layers trained for epsilon
    cannot be taught v-prediction by the temporal layers alone. A model made from scratch
    uses v-prediction, which stays well-conditioned at the high-noise end that sets a
    clip's layout and motion."""
    if requested != "auto":
        return requested
    return "v_prediction" if from_scratch else pretrained


def sample_timesteps(
    batch_size: int,
    num_train_timesteps: int,
    generator: torch.Generator,
    bias_strategy: str = "none",
    bias_portion: float = 0.25,
    bias_multiplier: float = 1.0,
) -> torch.Tensor:
    """Training timesteps, shaped ``(B,)``: uniform, or with the ``bias_portion`` of
    noisiest (``'later'``) or cleanest (``'earlier'``) timesteps drawn ``bias_multiplier``
    times as often as the others. A video's layout and motion are decided in the first
    few sampling steps, where the noise is nearly total; ``'later'`` trains there more."""
    if bias_strategy == "none":
        return torch.randint(0, num_train_timesteps, (batch_size,), generator=generator)
    if bias_strategy not in TIMESTEP_BIAS:
        raise ValueError(f"bias_strategy={bias_strategy!r} is invalid; choose one of {', '.join(TIMESTEP_BIAS)}")
    weights = torch.ones(num_train_timesteps)
    biased = max(1, round(bias_portion * num_train_timesteps))
    weights[-biased:] = bias_multiplier
    if bias_strategy == "earlier":
        weights = weights.flip(0)
    return torch.multinomial(weights, batch_size, replacement=True, generator=generator)


def sample_noise(
    shape: tuple[int, ...],
    offset: float,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
    frame_correlation: float = 0.0,
) -> torch.Tensor:
    """Gaussian noise (frames correlated as :func:`lumiere.noise.video_noise` says) plus
    ``offset`` times a per-sample, per-channel constant, shaped ``(B, C, 1, ...)`` so that
    on video the offset is shared by every frame and pixel."""
    noise = video_noise(shape, generator, frame_correlation)
    if offset:
        noise = noise + offset * torch.randn(shape[:2] + (1,) * (len(shape) - 2), generator=generator)
    return noise.to(device=device, dtype=dtype)


def diffusion_loss(
    model_output: torch.Tensor,
    clean: torch.Tensor,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    scheduler: DDPMScheduler,
    snr_gamma: float | None = None,
    pixel_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error against the scheduler's ``prediction_type`` target, in float32.

    A U-Net that also predicts its variance (twice the channels) is scored on the
    prediction channels. ``snr_gamma`` applies Min-SNR weighting (Hang et al., 2023):
    per-sample weight ``min(SNR, gamma) / SNR`` for epsilon, ``/ (SNR + 1)`` for v.
    ``pixel_weight`` (broadcastable to ``clean``, e.g. ``(B, 1, F, H, W)``) weighs each
    sample's squared errors, normalised per sample so the loss keeps its scale."""
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = scheduler.get_velocity(clean, noise, timesteps)
    else:
        raise ValueError(f"prediction_type={prediction_type!r} is not supported; use epsilon or v_prediction")
    prediction = model_output[:, : clean.shape[1]].float()
    squared = F.mse_loss(prediction, target.float(), reduction="none")
    if pixel_weight is None:
        per_sample = squared.flatten(1).mean(1)
    else:
        weight = pixel_weight.float().expand_as(squared).flatten(1)
        per_sample = (squared.flatten(1) * weight).sum(1) / weight.sum(1)
    if snr_gamma is None:
        return per_sample.mean()
    snr = compute_snr(scheduler, timesteps).float()
    weight = snr.clamp(max=snr_gamma) / (snr + 1 if prediction_type == "v_prediction" else snr)
    return (per_sample * weight).mean()
