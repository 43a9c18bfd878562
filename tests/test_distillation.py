"""Progressive distillation (lumiere.distillation): the DDIM algebra of the two-step target,
the guidance-conditioned U-Net, guidance through it in every pipeline, and the trainer's
distillation run."""

import pytest
import torch
from diffusers import DDIMScheduler

from lumiere import LumierePipeline
from lumiere.data.shapes import write_dataset
from lumiere.distillation import ddim_step, output_for, step_grid, two_step_target
from lumiere.pipelines.sampling import Branch, Guidance, denoise, guide, predicted_original
from lumiere.testing import make_pixel_lumiere_pipeline, make_scheduler
from lumiere.training import TrainConfig, train


@pytest.fixture
def pipe(tmp_path):
    pipe = make_pixel_lumiere_pipeline(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _clip(seed, shape=(2, 3, 4, 8, 8)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim_step_on_the_grid_is_the_schedulers_step(spacing):
    scheduler = DDIMScheduler.from_config(make_scheduler("v_prediction").config, timestep_spacing=spacing)
    grid = step_grid(scheduler, 4)
    assert grid[-1] == -1 and torch.equal(grid[:-1], scheduler.timesteps)
    noisy, output = _clip(0), _clip(1)
    for t, s in zip(grid[:-1], grid[1:]):
        expected = scheduler.step(output, t, noisy).prev_sample
        batch = torch.full((2,), int(t)), torch.full((2,), int(s))
        assert torch.allclose(ddim_step(scheduler, noisy, output, *batch), expected, atol=1e-5)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_output_for_inverts_predicted_original(prediction_type):
    scheduler = make_scheduler(prediction_type)
    noisy, original, t = _clip(0), _clip(1), torch.tensor([10, 700])
    output = output_for(scheduler, noisy, original, t)
    assert torch.allclose(predicted_original(scheduler, noisy, output, t), original, atol=1e-4)


@pytest.mark.parametrize("last", [False, True])
def test_one_student_step_with_the_target_lands_where_two_teacher_steps_do(last):
    scheduler = make_scheduler("v_prediction")
    grid = step_grid(scheduler, 6)
    first = len(grid) - 3 if last else 0  # the last pair ends at the clean end (-1)
    t, mid, s = (torch.full((2,), int(grid[first + k])) for k in range(3))

    def teacher(latents, timesteps):  # any function of the latents and the step
        return 0.3 * latents + 0.001 * timesteps.view(-1, 1, 1, 1, 1) - 0.2

    noisy = _clip(0)
    target = two_step_target(teacher, scheduler, noisy, t, mid, s)
    halfway = ddim_step(scheduler, noisy, teacher(noisy, t), t, mid)
    landed = ddim_step(scheduler, halfway, teacher(halfway, mid), mid, s)
    assert torch.allclose(ddim_step(scheduler, noisy, target, t, s), landed, atol=1e-4)


def test_a_guidance_conditioned_copy_starts_as_the_model_and_then_reads_the_scale(pipe):
    unet = pipe.unet
    student = unet.with_guidance_embedding(16)
    assert unet.guidance_embedding_dim is None and student.guidance_embedding_dim == 16
    noisy, context = _clip(0, (2, 3, 4, 16, 16)), torch.randn(2, 5, 32)
    scales = torch.tensor([1.0, 6.0])
    with torch.no_grad():
        before = unet(noisy, 500, context).sample
        same = student(noisy, 500, context, timestep_cond=student.guidance_condition(scales)).sample
        torch.nn.init.normal_(student.time_embedding.cond_proj.weight)
        moved = student(noisy, 500, context, timestep_cond=student.guidance_condition(scales)).sample
    assert torch.equal(same, before)
    assert not torch.allclose(moved, before, atol=1e-3)
    assert student.time_embedding.cond_proj.weight.requires_grad
    with pytest.raises(ValueError, match="already reads the guidance scale"):
        student.with_guidance_embedding(16)
    with pytest.raises(ValueError, match="does not read the guidance scale"):
        unet.guidance_condition(scales)


def test_guidance_with_a_scale_and_a_timestep_per_clip_is_each_clips_own_guidance(pipe):
    unet, scheduler = pipe.unet, pipe.scheduler
    noisy, context, empty = _clip(0, (2, 3, 4, 16, 16)), torch.randn(2, 5, 32), torch.randn(2, 5, 32)
    scales, timesteps = torch.tensor([2.0, 5.0]), torch.tensor([100, 800])
    with torch.no_grad():
        both = guide(unet, scheduler, scales, Branch(context), Branch(empty))(noisy, timesteps)
        for i in range(2):
            one = Guidance(unet, scheduler, float(scales[i]), Branch(context[i : i + 1]), Branch(empty[i : i + 1]))
            assert torch.allclose(both[i : i + 1], one(noisy[i : i + 1], timesteps[i]), atol=1e-5)


def test_a_guidance_distilled_pipeline_makes_one_pass_per_step_with_the_scale_as_input(pipe, tmp_path):
    pipe.unet = pipe.unet.with_guidance_embedding(16)
    torch.nn.init.normal_(pipe.unet.time_embedding.cond_proj.weight)
    batches = []
    pipe.unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    run = dict(prompt="a red circle", num_frames=4, height=16, width=16, num_inference_steps=2, output_type="latent")
    low = pipe(**run, guidance_scale=2.0, generator=torch.Generator().manual_seed(0)).frames
    high = pipe(**run, guidance_scale=6.0, generator=torch.Generator().manual_seed(0)).frames
    assert batches == [1] * 4  # no unconditional branch
    assert not torch.allclose(low, high, atol=1e-4)

    # The same as the loop on the U-Net given the scale's embedding directly.
    embeds, _ = pipe.encode_prompt("a red circle", torch.device("cpu"), do_classifier_free_guidance=False)
    pipe.scheduler.set_timesteps(2)
    start = pipe.prepare_latents(1, 3, 4, 16, 16, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(0))
    cond = Branch(embeds, model_kwargs={"timestep_cond": pipe.unet.guidance_condition(torch.tensor([6.0]))})
    with torch.no_grad():
        direct = denoise(
            Guidance(pipe.unet, pipe.scheduler, 1.0, cond), start, pipe.scheduler, pipe.scheduler.timesteps
        )
    assert torch.allclose(high, direct, atol=1e-5)

    with pytest.raises(ValueError, match="guidance-distilled"):
        pipe(**run, negative_prompt="blurry")
    pipe.save_pretrained(tmp_path / "student")
    assert LumierePipeline.from_pretrained(tmp_path / "student").unet.guidance_embedding_dim == 16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("distillation")
    make_pixel_lumiere_pipeline(root).save_pretrained(root / "teacher")
    write_dataset(root / "clips", 4, num_frames=8, size=16, seed=0)
    return root


def _config(files, output_dir, **overrides):
    values = dict(
        pretrained=str(files / "teacher"), distill_teacher=str(files / "teacher"), train_spatial=True,
        distill_teacher_steps=4, guidance_embedding_dim=16, train_data=str(files / "clips"),
        output_dir=str(output_dir), num_frames=4, resolution=16, max_train_steps=3, learning_rate=1e-3,
        lr_warmup_steps=0, checkpointing_steps=1000, report_to="none", seed=0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def test_distillation_trains_a_guidance_conditioned_student_toward_the_teachers_two_steps(files, tmp_path, monkeypatch):
    import lumiere.training.trainer as trainer

    calls = []
    original = trainer.two_step_target

    def recording(teacher, scheduler, noisy, t, mid, s):
        calls.append((teacher, t, mid, s))
        return original(teacher, scheduler, noisy, t, mid, s)

    monkeypatch.setattr(trainer, "two_step_target", recording)
    result = train(_config(files, tmp_path / "run"))
    assert len(result.losses) == 3 and all(loss == loss for loss in result.losses)
    grid = step_grid(LumierePipeline.from_pretrained(files / "teacher").scheduler, 4).tolist()
    for teacher, t, mid, s in calls:
        assert teacher.uncond is not None  # the first teacher is guided the classifier-free way
        for a, b, c in zip(t.tolist(), mid.tolist(), s.tolist()):
            assert grid.index(a) % 2 == 0 and grid.index(b) == grid.index(a) + 1 and grid.index(c) == grid.index(a) + 2
        assert 1 <= float(teacher.scale.min()) and float(teacher.scale.max()) <= 5
    student = LumierePipeline.from_pretrained(tmp_path / "run")
    assert student.unet.guidance_embedding_dim == 16
    assert student.unet.time_embedding.cond_proj.weight.abs().sum() > 0  # the scale input trained

    # The next round: the student is the teacher, guided through its scale input.
    calls.clear()
    train(_config(files, tmp_path / "next", pretrained=str(tmp_path / "run"), distill_teacher=str(tmp_path / "run"),
                  distill_teacher_steps=2, max_train_steps=1))  # fmt: skip
    assert calls and all(
        teacher.uncond is None and "timestep_cond" in teacher.cond.model_kwargs for teacher, *_ in calls
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(distill_teacher_steps=5), "distill_teacher_steps=5 is invalid; it must be even"),
        (dict(distill_teacher_steps=0), "distill_teacher_steps"),
        (dict(distill_guidance_scale_max=0.5), "distill_guidance_scale_max must be a finite number >= 1.0"),
        (dict(train_spatial=False), "needs mode='video' and train_spatial=True"),
        (dict(conditioning=True), "conditioning must be off"),
        (dict(guidance_embedding_dim=0), "guidance_embedding_dim"),
    ],
)
def test_bad_distillation_options_name_the_option(files, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(files, tmp_path / "run", **overrides)
