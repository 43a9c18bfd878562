"""The denoising loop and the model calls it runs, as small pure pieces (in the manner of
k-diffusion's samplers): every Lumiere pipeline samples through [`denoise`].

The loop knows three things: a *model function* ``model_fn(latents, t) -> prediction``,
the scheduler with its timesteps, and a per-step hook. Everything a pipeline adds hides in
the model function or the hook, so the loop never changes:

* **Start part-way through the schedule** (video-to-video, SDEdit): pass the tail of the
  schedule, ``schedule(scheduler, steps, device, strength)``, and latents noised to its
  first timestep (``scheduler.add_noise(encoded, noise, timesteps[:1])``).
* **Extra model inputs** (the masked conditioning video C and mask M, a low-resolution
  clip and its noise level): give each [`Branch`] of a [`Guidance`] its own ``concat``
  channels (appended to the scaled noisy latents on the channel axis) and ``model_kwargs``
  (e.g. ``class_labels`` for a noise level). The two guidance branches carry their own
  inputs: image-to-video blanks the image in the unconditional branch, inpainting keeps
  the same C and M in both.
* **A model call that is itself an average over temporal windows** (MultiDiffusion for
  long clips and super-resolution): wrap the model function, e.g.

  ```py
  def windowed(latents, t):
      total, count = torch.zeros_like(latents), torch.zeros_like(latents[:, :1])
      for frames in windows:                      # slices of the frame axis
          window = guidance.windows([frames])     # each branch's tensors cut to the window
          total[:, :, frames] += window(latents[:, :, frames], t)
          count[:, :, frames] += 1
      return total / count
  ```

  One scheduler step then runs on the whole clip; for schedulers linear in the model
  output this equals averaging per-window steps, with no per-window scheduler state.
  [`lumiere.pipelines.windows.TemporalMultiDiffusion`] is this function, weighted, batched
  and shared across processes; the pipelines take it through their ``window_size`` option.
* **Callbacks, interrupt, progress, pasting known pixels**: the ``on_step`` hook, which
  may return new latents, and ``stop``, asked before every step.

Tensor layout throughout: latents ``(B, C, F, h, w)``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import torch
from diffusers.schedulers import SchedulerMixin


class ModelFn(Protocol):
    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """The prediction the scheduler steps with, for latents ``(B, C, F, h, w)``."""


StepHook = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


def denoise(
    model_fn: ModelFn,
    latents: torch.Tensor,
    scheduler: SchedulerMixin,
    timesteps: Sequence[torch.Tensor] | torch.Tensor,
    *,
    step_kwargs: dict[str, Any] | None = None,
    on_step: StepHook | None = None,
    stop: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Run ``scheduler`` over ``timesteps`` from ``latents`` and return the final latents.

    Args:
        model_fn: ``(latents, t) -> prediction`` (guidance, extra inputs and windows inside).
        latents: where sampling starts, ``(B, C, F, h, w)``, already scaled by the
            scheduler's initial sigma (or noised to ``timesteps[0]``).
        scheduler: a diffusers scheduler whose ``set_timesteps`` has been called.
        timesteps: the steps to run, in order (all of ``scheduler.timesteps``, or its tail).
        step_kwargs: extra arguments of ``scheduler.step`` (see [`step_kwargs`]).
        on_step: ``(i, t, latents) -> latents`` after each step.
        stop: asked before each step; True ends sampling with the latents reached so far.
    """
    step_kwargs = step_kwargs or {}
    for i, t in enumerate(timesteps):
        if stop is not None and stop():
            break
        # The prediction goes before the next model call, or it would be a clip's worth
        # of memory more at the peak.
        prediction = model_fn(latents, t).to(latents.dtype)
        latents = scheduler.step(prediction, t, latents, **step_kwargs, return_dict=False)[0]
        del prediction
        if on_step is not None:
            latents = on_step(i, t, latents)
    return latents


def schedule(
    scheduler: SchedulerMixin, num_inference_steps: int, device: torch.device, strength: float = 1.0
) -> torch.Tensor:
    """Set ``scheduler`` for ``num_inference_steps`` and return the timesteps to run: all of
    them at ``strength`` 1, else the last ``int(num_inference_steps * strength)`` steps
    (diffusers' image-to-image meaning; 0 runs none)."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength={strength} is invalid; it must be in [0, 1]")
    scheduler.set_timesteps(num_inference_steps, device=device)
    start = num_inference_steps - min(int(num_inference_steps * strength), num_inference_steps)
    if start and hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start * scheduler.order)
    return scheduler.timesteps[start * scheduler.order :]


def step_kwargs(scheduler: SchedulerMixin, generator: Any, eta: float) -> dict[str, Any]:
    """The optional arguments this scheduler's ``step`` accepts (DDIM's eta, a generator)."""
    accepted = set(inspect.signature(scheduler.step).parameters)
    return {name: value for name, value in (("eta", eta), ("generator", generator)) if name in accepted}


@dataclass(frozen=True)
class Branch:
    """What one guidance branch gives the model besides the noisy latents, batch ``B``.

    Attributes:
        encoder_hidden_states: the text context ``(B, L, D)``.
        concat: channels appended to the scaled noisy latents, ``(B, C_extra, F, h, w)``
            (a conditioning video and its mask, an upsampled low-resolution clip), or None.
        model_kwargs: more model arguments by name, each batched ``(B, ...)`` (e.g.
            ``class_labels`` holding a noise level).
    """

    encoder_hidden_states: torch.Tensor
    concat: torch.Tensor | None = None
    model_kwargs: dict[str, torch.Tensor] = field(default_factory=dict)


class Guidance:
    """Classifier-free guidance as a model function: one model pass over both branches
    batched (unconditional first), ``uncond + scale * (cond - uncond)``.

    With ``uncond=None`` (guidance off) it is the conditional model alone. A model that
    also predicts its variance (twice the channels, for learned-range schedulers) is guided
    on the prediction channels; the variance comes from the conditional branch.

    ``cond`` and ``uncond`` may be replaced between steps (a callback that changes the
    prompt embeddings); the next call uses the new ones.

    ``scale`` is one number, or one per clip ``(B,)`` (with a timestep per clip, ``(B,)``,
    as a student's training draws them); see [`guide`] for guidance-distilled models.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        scheduler: SchedulerMixin,
        scale: float | torch.Tensor,
        cond: Branch,
        uncond: Branch | None = None,
        cross_attention_kwargs: dict[str, Any] | None = None,
    ):
        self.model, self.scheduler, self.scale = model, scheduler, scale
        self.cond, self.uncond = cond, uncond
        self.cross_attention_kwargs = cross_attention_kwargs

    def windows(self, windows: Sequence[slice]) -> Guidance:
        """The model function of temporal windows batched window-major: its latents are the
        windows' ``(B, C, f, h, w)`` concatenated on the batch axis, ``(len(windows) * B,
        C, f, h, w)``; each branch's per-frame tensors (``concat``) are cut to the windows
        the same way, its text and ``model_kwargs`` repeated."""

        def cut(branch: Branch | None) -> Branch | None:
            if branch is None:
                return None
            repeat = len(windows)
            concat = None if branch.concat is None else torch.cat([branch.concat[:, :, w] for w in windows])
            return Branch(
                torch.cat([branch.encoder_hidden_states] * repeat),
                concat,
                {name: torch.cat([value] * repeat) for name, value in branch.model_kwargs.items()},
            )

        return Guidance(
            self.model, self.scheduler, self.scale, cut(self.cond), cut(self.uncond), self.cross_attention_kwargs
        )

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        model_input = self.scheduler.scale_model_input(latents, timestep)
        branches = [self.cond] if self.uncond is None else [self.uncond, self.cond]
        if len(branches) == 2:
            model_input = torch.cat([model_input] * 2)
            if torch.is_tensor(timestep) and timestep.ndim:  # one per clip (training a student)
                timestep = torch.cat([timestep] * 2)
        if self.cond.concat is not None:
            model_input = torch.cat([model_input, _batched([b.concat for b in branches])], dim=1)
        model_kwargs = {name: _batched([b.model_kwargs[name] for b in branches]) for name in self.cond.model_kwargs}
        output = self.model(
            model_input,
            timestep,
            encoder_hidden_states=_batched([b.encoder_hidden_states for b in branches]),
            cross_attention_kwargs=self.cross_attention_kwargs,
            return_dict=False,
            **model_kwargs,
        )[0]
        if self.uncond is None:
            return output
        uncond, cond = output.chunk(2)
        channels = latents.shape[1]
        scale = self.scale
        if isinstance(scale, torch.Tensor):  # one per clip
            scale = scale.to(device=latents.device, dtype=latents.dtype).view(-1, *[1] * (latents.ndim - 1))
        guided = uncond[:, :channels] + scale * (cond[:, :channels] - uncond[:, :channels])
        return torch.cat([guided, cond[:, channels:]], dim=1)


def guide(
    model: torch.nn.Module,
    scheduler: SchedulerMixin,
    scale: float | torch.Tensor,
    cond: Branch,
    uncond: Branch | None = None,
    cross_attention_kwargs: dict[str, Any] | None = None,
) -> Guidance:
    """``model`` guided at ``scale`` (one number, or one per clip ``(B,)``): classifier-free
    over ``cond`` and ``uncond`` ([`Guidance`]); or, for a guidance-distilled model (one
    that reads the scale, ``guidance_embedding_dim`` set, see
    [`SpaceTimeUNet.with_guidance_embedding`]), the conditional branch alone, the scale
    passed as its ``timestep_cond``: one pass where classifier-free guidance takes two."""
    dim = getattr(model, "guidance_embedding_dim", None)
    if dim is None:
        return Guidance(model, scheduler, scale, cond, uncond, cross_attention_kwargs)
    batch = cond.encoder_hidden_states.shape[0]
    scales = torch.as_tensor(scale, dtype=torch.float32).expand(batch)
    model_kwargs = {**cond.model_kwargs, "timestep_cond": model.guidance_condition(scales)}
    return Guidance(model, scheduler, 1.0, replace(cond, model_kwargs=model_kwargs), None, cross_attention_kwargs)


def _batched(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The branches' tensors on one batch axis (unconditional first); one alone, as is."""
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors)


def predicted_original(
    scheduler: SchedulerMixin, noisy: torch.Tensor, output: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """The clean sample implied by a model ``output`` for ``noisy`` at ``timesteps``
    ``(B,)``, for the scheduler's ``prediction_type`` (epsilon, v or sample); tensors
    ``(B, C, F, H, W)``."""
    alpha_bar = scheduler.alphas_cumprod.to(noisy.device)[timesteps].view(-1, 1, 1, 1, 1).to(noisy.dtype)
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "v_prediction":
        return a * noisy - s * output
    if prediction_type == "epsilon":
        return (noisy - s * output) / a
    if prediction_type == "sample":
        return output
    raise ValueError(f"prediction_type={prediction_type!r} is not supported; use v_prediction, epsilon or sample")
