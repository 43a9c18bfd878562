"""Samplers by name (lumiere.pipelines.schedulers): the model's schedule kept, the
pipeline's own scheduler restored, multistep solvers through the core, and the CLI flag."""

import pytest
import torch
from diffusers import DDIMScheduler

from lumiere import LumierePipeline, LumiereVideoToVideoPipeline
from lumiere.assets import default_model_dir
from lumiere.cli import SCHEDULERS as CLI_SCHEDULERS
from lumiere.cli import main
from lumiere.pipelines.schedulers import SCHEDULERS, scheduler_from_name, using_scheduler
from lumiere.testing import make_pixel_lumiere_pipeline

RUN = dict(num_frames=4, num_inference_steps=4, guidance_scale=2.0, output_type="pt")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory) -> LumierePipeline:
    pipe = make_pixel_lumiere_pipeline(tmp_path_factory.mktemp("vocab"))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_the_command_lines_names_are_the_modules():
    assert CLI_SCHEDULERS == tuple(SCHEDULERS)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_named_scheduler_keeps_the_shipped_models_schedule(name):
    own = DDIMScheduler.from_pretrained(default_model_dir(), subfolder="scheduler")
    scheduler = scheduler_from_name(name, own.config)
    assert type(scheduler) is SCHEDULERS[name]
    for key in ("num_train_timesteps", "beta_schedule", "prediction_type", "timestep_spacing"):
        assert scheduler.config[key] == own.config[key]


def test_an_unknown_name_is_a_value_error_listing_the_names(pipe):
    with pytest.raises(ValueError, match=r"scheduler='lms' is not one of ddim, dpmsolver\+\+, unipc, euler"):
        scheduler_from_name("lms", pipe.scheduler.config)


def test_using_scheduler_swaps_for_the_block_and_restores_even_on_error(pipe):
    own = pipe.scheduler
    with pytest.raises(RuntimeError), using_scheduler(pipe, "unipc"):
        assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"
        raise RuntimeError
    assert pipe.scheduler is own
    with using_scheduler(pipe, None):
        assert pipe.scheduler is own


@pytest.mark.parametrize("name", ["dpmsolver++", "unipc", "euler"])
def test_multistep_solvers_sample_through_the_core_reproducibly(pipe, name):
    with using_scheduler(pipe, name):
        steps = []
        record = lambda p, i, t, tensors: steps.append(int(t)) or {}  # noqa: E731
        first = pipe("a circle", generator=torch.Generator().manual_seed(0), callback_on_step_end=record, **RUN)
        again = pipe("a circle", generator=torch.Generator().manual_seed(0), **RUN)
        expected = [int(t) for t in pipe.scheduler.timesteps]
    assert steps == expected and len(steps) == RUN["num_inference_steps"]
    assert torch.isfinite(first.frames).all()
    assert torch.equal(first.frames, again.frames)
    ddim = pipe("a circle", generator=torch.Generator().manual_seed(0), **RUN).frames
    assert not torch.equal(first.frames, ddim)  # the solver did change


def test_a_multistep_solver_runs_the_strength_tail_in_video_to_video(pipe):
    v2v = LumiereVideoToVideoPipeline.from_pipe(pipe)
    video = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    steps = []
    with using_scheduler(v2v, "dpmsolver++"):
        v2v(video, "a circle", strength=0.5, num_inference_steps=4, output_type="pt",
            callback_on_step_end=lambda p, i, t, tensors: steps.append(int(t)) or {})  # fmt: skip
        v2v.scheduler.set_timesteps(4)
        assert steps == [int(t) for t in v2v.scheduler.timesteps[2:]]


def test_the_cli_refuses_an_unknown_scheduler_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "a red circle", "--scheduler", "lms"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "--scheduler" in error[0] and "dpmsolver++" in error[0]
