"""Few-step sampling by progressive distillation of a guided model (Salimans & Ho, 2022;
Meng et al., 2023, "On distillation of guided diffusion models").

A *student* learns to do in one DDIM step what its *teacher* does in two: from a noisy
clip ``z_t`` on the teacher's grid of ``N`` steps, the teacher takes two guided DDIM steps
to ``z_s``, and the student is trained toward the prediction whose single DDIM step from
``z_t`` lands on that same ``z_s`` (:func:`two_step_target`). The student then samples
with ``N / 2`` steps and becomes the teacher of the next round.

The student is *guidance-conditioned*: it reads the guidance scale ``w`` as an embedding
(through the U-Net's ``timestep_cond``, [`SpaceTimeUNet.with_guidance_embedding`]) and
makes the guided prediction in one pass, so a step costs half a classifier-free one. The
first teacher is the guided model itself (two passes per step, conditional and
unconditional); later teachers are guidance-conditioned students.

Tensors ``(B, C, F, H, W)``; timesteps ``(B,)`` index the training noise schedule, with -1
the clean end of the schedule (where DDIM's last step lands).
"""

from __future__ import annotations

import torch
from diffusers.schedulers import SchedulerMixin

from .pipelines.sampling import ModelFn, predicted_original


def step_grid(scheduler: SchedulerMixin, num_steps: int, device: torch.device | None = None) -> torch.Tensor:
    """The timesteps ``(num_steps + 1,)`` that DDIM with ``num_steps`` steps visits on
    ``scheduler``'s spacing, then -1: the state after its last step."""
    scheduler.set_timesteps(num_steps, device=device)
    timesteps = scheduler.timesteps
    return torch.cat([timesteps, timesteps.new_full((1,), -1)])


def _alpha_sigma(scheduler: SchedulerMixin, timesteps: torch.Tensor, like: torch.Tensor):
    """``sqrt(alpha_bar)`` and ``sqrt(1 - alpha_bar)`` at ``timesteps`` ``(B,)``, shaped to
    broadcast over ``like``; -1 is the clean end (DDIM's ``final_alpha_cumprod``)."""
    alphas = scheduler.alphas_cumprod.to(like.device)
    final = torch.as_tensor(getattr(scheduler, "final_alpha_cumprod", 1.0), device=like.device)
    alpha_bar = torch.where(timesteps >= 0, alphas[timesteps.clamp(min=0)], final.to(alphas.dtype))
    alpha_bar = alpha_bar.view(-1, *([1] * (like.ndim - 1))).to(like.dtype)
    return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()


def ddim_step(
    scheduler: SchedulerMixin, noisy: torch.Tensor, output: torch.Tensor, t: torch.Tensor, s: torch.Tensor
) -> torch.Tensor:
    """Deterministic DDIM from ``noisy`` at ``t`` to ``s`` (per clip, ``(B,)``) with the model
    ``output`` (of the scheduler's ``prediction_type``)."""
    original = predicted_original(scheduler, noisy, output, t.clamp(min=0))
    alpha_t, sigma_t = _alpha_sigma(scheduler, t, noisy)
    alpha_s, sigma_s = _alpha_sigma(scheduler, s, noisy)
    noise = (noisy - alpha_t * original) / sigma_t
    return alpha_s * original + sigma_s * noise


def output_for(scheduler: SchedulerMixin, noisy: torch.Tensor, original: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The model output (of the scheduler's ``prediction_type``) that predicts ``original``
    for ``noisy`` at ``t``: the inverse of :func:`lumiere.pipelines.sampling.predicted_original`."""
    alpha, sigma = _alpha_sigma(scheduler, t, noisy)
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "v_prediction":
        return (alpha * noisy - original) / sigma
    if prediction_type == "epsilon":
        return (noisy - alpha * original) / sigma
    if prediction_type == "sample":
        return original
    raise ValueError(f"prediction_type={prediction_type!r} is not supported; use v_prediction, epsilon or sample")


@torch.no_grad()
def two_step_target(
    teacher: ModelFn, scheduler: SchedulerMixin, noisy: torch.Tensor, t: torch.Tensor, mid: torch.Tensor,
    s: torch.Tensor,
) -> torch.Tensor:  # fmt: skip
    """The student's training target at ``(noisy, t)``: the model output whose one DDIM step
    to ``s`` lands where the ``teacher``'s two steps, ``t -> mid -> s``, do. ``teacher``
    is a model function ``(latents, timesteps (B,)) -> output`` with its guidance inside."""
    halfway = ddim_step(scheduler, noisy, teacher(noisy, t), t, mid)
    landed = ddim_step(scheduler, halfway, teacher(halfway, mid), mid, s)
    alpha_t, sigma_t = _alpha_sigma(scheduler, t, noisy)
    alpha_s, sigma_s = _alpha_sigma(scheduler, s, noisy)
    # z_s = alpha_s x + sigma_s (z_t - alpha_t x) / sigma_t, solved for x.
    ratio = sigma_s / sigma_t
    original = (landed - ratio * noisy) / (alpha_s - ratio * alpha_t)
    return output_for(scheduler, noisy, original, t)
