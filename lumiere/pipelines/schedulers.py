"""Samplers by name, for the command line and the evaluations: ``--scheduler NAME``.

Every pipeline samples with any diffusers scheduler (``pipe.scheduler =
DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)``, as in diffusers); this
names the ones worth choosing. Each is built from the model's own scheduler config, so
the noise schedule, prediction type and timestep spacing the model was trained with carry
over, and only the solver changes.

* ``ddim``: what the shipped models were evaluated with (25 steps).
* ``dpmsolver++``: DPM-Solver++ (2M), second-order multistep; meant for 10-25 steps.
* ``unipc``: UniPC (bh2), a predictor-corrector multistep solver for very few steps.
* ``euler``: Euler (Karras et al.), first order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers import SchedulerMixin

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "dpmsolver++": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
    "euler": EulerDiscreteScheduler,
}


def scheduler_from_name(name: str, config: dict) -> SchedulerMixin:
    """The scheduler called ``name`` (a key of :data:`SCHEDULERS`) on the schedule of
    ``config``, a scheduler config (``pipe.scheduler.config``)."""
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler={name!r} is not one of {', '.join(SCHEDULERS)}")
    return SCHEDULERS[name].from_config(config)


@contextlib.contextmanager
def using_scheduler(pipeline: DiffusionPipeline, name: str | None) -> Iterator[DiffusionPipeline]:
    """Within the block ``pipeline`` samples with the scheduler called ``name`` (None: its
    own); its own comes back after, as a pipeline may be shared (the web app's cache)."""
    own = pipeline.scheduler
    if name is not None:
        pipeline.scheduler = scheduler_from_name(name, own.config)
    try:
        yield pipeline
    finally:
        pipeline.scheduler = own
