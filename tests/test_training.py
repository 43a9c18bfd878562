"""The trainer on real shapes-world files: learning, what trains, checkpoints that survive
SIGKILL, two processes under accelerate, image pretraining, validation and outputs."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from diffusers import DiffusionPipeline
from einops import rearrange

from lumiere import LumierePipeline
from lumiere.data.shapes import write_dataset
from lumiere.testing import make_pixel_t2i_pipeline, read_metadata, subprocess_env
from lumiere.training import TrainConfig, checkpoints, train

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "train_runner.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny pixel-space text-to-image folder and shapes-world clips and stills."""
    root = tmp_path_factory.mktemp("training")
    make_pixel_t2i_pipeline().save_pretrained(root / "t2i")
    write_dataset(root / "clips", 8, num_frames=8, size=32, seed=0)
    write_dataset(root / "stills", 8, size=32, seed=0, images=True)
    return root


def _config(files, output_dir, **overrides):
    values = dict(
        pretrained=str(files / "t2i"), train_data=str(files / "clips"), output_dir=str(output_dir),
        num_frames=8, resolution=16, max_train_steps=4, learning_rate=1e-3, lr_warmup_steps=0,
        checkpointing_steps=1000, report_to="none", seed=0,
    )  # fmt: skip
    return TrainConfig(**{**values, **overrides})


# For tests of what flows into a step (captions, draws, counts), not of what is learned:
# the smallest clips the tiny U-Net takes (its temporal factor is 4, its spatial one 4).
SMALL = dict(num_frames=4, resolution=8)


def _record_calls(monkeypatch, module, name):
    """Wrap ``module.name`` so each call is appended to the returned list as
    ``(args, result)``; the call itself goes through unchanged."""
    calls, original = [], getattr(module, name)

    def recording(*args):
        calls.append((args, original(*args)))
        return calls[-1][1]

    monkeypatch.setattr(module, name, recording)
    return calls


def _record_captions(monkeypatch) -> list:
    """Record the trainer's text encoding; :func:`_batches` reads the captions back."""
    import lumiere.training.trainer as trainer

    return _record_calls(monkeypatch, trainer, "encode_text")


def _batches(calls) -> list[list[str]]:
    """The captions of each recorded ``encode_text(encoder, tokenizer, text, device)`` call."""
    return [list(args[2]) for args, _ in calls]


def _options(config: TrainConfig) -> list[str]:
    """The command-line form of ``config`` (what a user would type)."""
    path = Path(config.output_dir).with_suffix(".yaml")
    config.to_yaml(path, overwrite=True)  # the resumed run passes it again
    return ["--config", str(path)]


@pytest.mark.parametrize(
    "steps, num_frames, learning_rate, window, ratio",
    [
        (12, 4, 3e-3, 4, 0.6),  # measured 0.46
        pytest.param(40, 8, 2e-3, 8, 0.5, marks=pytest.mark.slow),  # measured 0.23; ~50 s on 2 cores
    ],
    ids=["short", "long"],
)
def test_loss_goes_down(files, tmp_path, steps, num_frames, learning_rate, window, ratio):
    config = _config(
        files, tmp_path / "run", max_train_steps=steps, num_frames=num_frames, train_spatial=True,
        learning_rate=learning_rate, prediction_type="epsilon",
    )  # fmt: skip
    losses = train(config).losses
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    assert last < ratio * first, f"mean loss of the first {window} steps {first:.3f}, of the last {window} {last:.3f}"


def test_default_trains_only_temporal_weights_and_saves_a_pipeline(files, tmp_path):
    before = DiffusionPipeline.from_pretrained(files / "t2i").unet.state_dict()
    config = _config(files, tmp_path / "run", validation_prompts=["a red circle moving right"],
                     validation_num_inference_steps=2, validation_steps=4, use_ema=True, report_to="tensorboard")  # fmt: skip
    unet = train(config).unet
    for name, value in before.items():
        assert torch.equal(unet.state_dict()[name], value), f"spatial weight {name} changed"
    temporal = dict(unet.named_temporal_parameters())
    assert any(value.abs().sum() > 0 for name, value in temporal.items() if "proj_out" in name or "conv_out" in name)

    saved = LumierePipeline.from_pretrained(tmp_path / "run")
    assert saved.scheduler.config.prediction_type == "epsilon"  # 'auto' kept the pretrained model's
    video = saved("a red circle", num_frames=8, height=16, width=16, num_inference_steps=1, output_type="np").frames
    assert video.shape == (1, 8, 16, 16, 3)
    validation = sorted(p.name for p in (tmp_path / "run" / "validation" / "step-000004").iterdir())
    assert validation == ["00-a-red-circle-moving-right.mp4", "00-a-red-circle-moving-right.png"]
    assert TrainConfig.from_yaml(tmp_path / "run" / "config.yaml") == config
    assert list((tmp_path / "run" / "logs" / "lumiere").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "checkpoint-4" / "unet_ema" / "config.json").is_file()

    # A saved Lumiere pipeline is a valid starting point too.
    again = train(_config(files, tmp_path / "again", pretrained=str(tmp_path / "run"), max_train_steps=1))
    assert again.global_step == 1

    # Into a finished run: refused, then replaced with overwrite, whose config.yaml can be
    # passed back with resume.
    with pytest.raises(ValueError, match="already holds an earlier run"):
        train(_config(files, tmp_path / "again", max_train_steps=2))
    (tmp_path / "again" / "stale.txt").write_text("")
    replaced = _config(files, tmp_path / "again", max_train_steps=2, overwrite=True)
    assert train(replaced).global_step == 2
    assert not (tmp_path / "again" / "stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "again").glob("checkpoint-*")) == ["checkpoint-2"]
    saved_config = TrainConfig.from_yaml(tmp_path / "again" / "config.yaml")
    assert not saved_config.overwrite
    checkpoints.check_output_dir(tmp_path / "again", "latest", saved_config.overwrite)


def test_text_dropout_replaces_captions_with_the_empty_prompt(files, tmp_path, monkeypatch):
    calls = _record_captions(monkeypatch)
    train(_config(files, tmp_path / "run", text_dropout=0.5, max_train_steps=16, train_batch_size=2, **SMALL))
    captions = [text for batch in _batches(calls) for text in batch]
    assert len(captions) == 32
    assert 6 <= captions.count("") <= 26  # Binomial(32, 0.5), seeded
    # The rest are the clips' own captions, unchanged.
    assert set(captions) - {""} <= {record["text"] for record in read_metadata(files / "clips")}


def test_several_train_data_folders_are_one_dataset(files, tmp_path, monkeypatch):
    extra = write_dataset(
        tmp_path / "extra", 4, num_frames=8, size=32, seed=1, include_only=[("white", "star", "still")]
    )
    calls = _record_captions(monkeypatch)
    # 12 clips in batches of 4: three steps are exactly one epoch over both folders.
    folders = f"{files / 'clips'},{extra}"
    settings = dict(train_data=folders, max_train_steps=3, train_batch_size=4, text_dropout=0.0, **SMALL)
    train(_config(files, tmp_path / "run", **settings))
    expected = [record["text"] for folder in (files / "clips", extra) for record in read_metadata(folder)]
    captions = [text for batch in _batches(calls) for text in batch]
    assert sorted(captions) == sorted(expected)
    assert captions.count("a white star still") == 4


def test_timestep_bias_reaches_the_training_draw(files, tmp_path, monkeypatch):
    import lumiere.training.trainer as trainer

    calls = _record_calls(monkeypatch, trainer, "sample_timesteps")
    train(_config(files, tmp_path / "run", max_train_steps=4, train_batch_size=2, timestep_bias_strategy="later",
                  timestep_bias_portion=0.05, timestep_bias_multiplier=1e6, **SMALL))  # fmt: skip
    drawn = [t for _, t in calls]
    assert len(drawn) == 4 and all((t >= 950).all() for t in drawn)


def test_noise_frame_correlation_trains_and_is_saved_for_sampling(files, tmp_path, monkeypatch):
    import lumiere.training.trainer as trainer

    calls = _record_calls(monkeypatch, trainer, "sample_noise")
    train(_config(files, tmp_path / "run", max_train_steps=2, train_batch_size=2, noise_frame_correlation=0.9))
    frames = rearrange(torch.cat([noise for _, noise in calls]), "b c f h w -> f (b c h w)")
    assert torch.corrcoef(frames)[0, 1:].min() > 0.8
    assert LumierePipeline.from_pretrained(tmp_path / "run").config.noise_frame_correlation == 0.9


def test_gradient_accumulation_counts_optimizer_steps(files, tmp_path, monkeypatch):
    calls = _record_captions(monkeypatch)
    settings = dict(gradient_accumulation_steps=2, max_train_steps=3, train_batch_size=2, **SMALL)
    result = train(_config(files, tmp_path / "run", **settings))
    assert result.global_step == 3 and len(result.losses) == 3
    assert [len(batch) for batch in _batches(calls)] == [2] * 6  # two micro-batches of two clips per optimizer step


def test_bf16_mixed_precision_runs(files, tmp_path):
    """bf16 autocast through accelerate (emulated and slow on CPUs without bf16: 'auto' avoids it there)."""
    result = train(_config(files, tmp_path / "run", mixed_precision="bf16", max_train_steps=1))
    assert result.global_step == 1 and torch.isfinite(torch.tensor(result.losses)).all()
    assert next(result.unet.temporal_parameters()).dtype == torch.float32  # master weights stay fp32
    # The same step in fp32 (same clip, noise and timestep) has nearly the same loss: bf16
    # keeps 8 significant bits, so the two agree to a few per cent, not exactly.
    full = train(_config(files, tmp_path / "fp32", mixed_precision="no", max_train_steps=1))
    assert result.losses[0] == pytest.approx(full.losses[0], rel=0.05)
    assert result.losses[0] != full.losses[0]


def test_gradient_checkpointing_changes_memory_not_results(files, tmp_path):
    plain = train(_config(files, tmp_path / "a", max_train_steps=2))
    checkpointed = train(_config(files, tmp_path / "b", max_train_steps=2, gradient_checkpointing=True))
    assert plain.losses == pytest.approx(checkpointed.losses, rel=1e-5)
    for (name, a), b in zip(plain.unet.named_temporal_parameters(), checkpointed.unet.temporal_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)


def test_train_spatial_changes_the_2d_weights(files, tmp_path):
    before = DiffusionPipeline.from_pretrained(files / "t2i").unet.state_dict()
    unet = train(_config(files, tmp_path / "run", train_spatial=True, max_train_steps=2)).unet
    changed = [name for name, value in before.items() if not torch.equal(unet.state_dict()[name], value)]
    assert len(changed) > len(before) // 2


def test_image_pretraining_from_scratch(files, tmp_path):
    config = _config(files, tmp_path / "t2i", mode="image", from_scratch=True, train_data=str(files / "stills"),
                     max_train_steps=3, validation_prompts=["a red circle"], validation_num_inference_steps=2,
                     validation_steps=3)  # fmt: skip
    result = train(config)
    saved = DiffusionPipeline.from_pretrained(tmp_path / "t2i")
    assert type(saved).__name__ == "IFPipeline" and saved.scheduler.config.prediction_type == "v_prediction"
    assert torch.equal(saved.unet.state_dict()["conv_in.weight"], result.unet.state_dict()["conv_in.weight"])
    assert (tmp_path / "t2i" / "validation" / "step-000003" / "00-a-red-circle.png").is_file()
    # ... and it inflates like any text-to-image folder.
    assert isinstance(LumierePipeline.from_text_to_image(tmp_path / "t2i"), LumierePipeline)


def test_image_lora_trains_only_the_lora_resumes_exactly_and_saves_a_style(files, tmp_path):
    """A LoRA run: the base weights stay, only the attention projections get a LoRA, a
    resumed run ends where the uninterrupted one does, and the saved LoRA is a style."""
    from safetensors.torch import load_file

    from lumiere.stylize import LORA_FILE, stylize

    settings = dict(mode="image", train_data=str(files / "stills"), max_train_steps=4, checkpointing_steps=2,
                    use_ema=True, resume="latest", lora_rank=2, lora_alpha=4.0, learning_rate=1e-2,
                    validation_prompts=["a red circle"], validation_num_inference_steps=2, validation_steps=4)  # fmt: skip
    reference = train(_config(files, tmp_path / "ref", **settings))
    saved = load_file(tmp_path / "ref" / LORA_FILE)
    assert saved and all(".lora_A." in key or ".lora_B." in key for key in saved)
    assert {key.split(".lora_")[0].rsplit(".", 1)[-1] for key in saved} == {"to_q", "to_k", "to_v", "0"}
    assert not (tmp_path / "ref" / "model_index.json").exists()  # the LoRA, not a copy of the base
    assert (tmp_path / "ref" / "validation" / "step-000004" / "00-a-red-circle.png").is_file()
    base = DiffusionPipeline.from_pretrained(files / "t2i").unet.state_dict()
    trained = {k.replace(".base_layer", ""): v for k, v in reference.unet.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(trained[name], value) for name, value in base.items())

    out = tmp_path / "out"
    train(_config(files, out, **settings))
    (out / "checkpoint-4").rename(out / "checkpoint-4.tmp")
    resumed = train(_config(files, out, **settings))
    assert resumed.losses == reference.losses[2:]
    assert all(torch.equal(value, load_file(out / LORA_FILE)[key]) for key, value in saved.items())

    video = LumierePipeline.from_text_to_image(files / "t2i")
    with stylize(video, tmp_path / "ref", 1.0) as stylized:
        assert stylized.originals and all(".to_" in name for name in stylized.originals)


def _start(command, log):
    """A training process in the background; its output goes to ``log`` (a pipe could fill and stall it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=subprocess_env(), stdout=out, stderr=out)
    process.log = log
    return process


def _run(report_dir, config, *extra, background=False, launcher=(sys.executable,), env=None):
    command = [*launcher, str(RUNNER), str(report_dir), *extra, "--", *_options(config)]
    if background:
        return _start(command, Path(report_dir) / "log.txt")
    done = subprocess.run(command, env=subprocess_env(**(env or {})), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [
        json.loads((Path(report_dir) / f"rank{i}.json").read_text())
        for i in range(2)
        if (Path(report_dir) / f"rank{i}.json").exists()
    ]


def _wait_for(condition, process, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"training ended before {what}: {process.log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_resume_from_the_last_complete_checkpoint_matches_an_uninterrupted_run(files, tmp_path):
    """In process, the fast form of the SIGKILL test below: a checkpoint caught mid-write
    (its ``.tmp`` folder, never published) is deleted, the run continues from the one
    before and ends with the weights and losses of the run never interrupted."""
    settings = dict(max_train_steps=4, checkpointing_steps=2, use_ema=True, resume="latest")
    reference = train(_config(files, tmp_path / "ref", **settings))

    out = tmp_path / "out"
    train(_config(files, out, **settings))
    (out / "checkpoint-4").rename(out / "checkpoint-4.tmp")  # as a kill before the rename leaves it
    assert checkpoints.resolve_resume("latest", out).name == "checkpoint-2"
    resumed = train(_config(files, out, **settings))
    assert resumed.global_step == 4
    assert resumed.losses == reference.losses[2:]  # steps 3 and 4, drawn identically
    for (name, a), b in zip(reference.unet.state_dict().items(), resumed.unet.state_dict().values()):
        assert torch.equal(a, b), name
    assert not (out / "checkpoint-4.tmp").exists()
    assert [p.name for p in checkpoints.complete_checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]


@pytest.mark.slow  # five training processes; the resume itself is covered in process above
def test_sigkill_then_resume_matches_an_uninterrupted_run(files, tmp_path):
    """Killed right after a checkpoint is published, and killed while one is being written
    (after its files, before the rename that publishes it): ``--resume latest`` continues
    from the last complete checkpoint and ends bit-identical to a run never killed."""
    settings = dict(max_train_steps=6, checkpointing_steps=2, use_ema=True, resume="latest")
    [reference] = _run(tmp_path / "ref", _config(files, tmp_path / "ref-out", **settings))

    killed = _config(files, tmp_path / "out", **settings)
    # The user's command, python -m lumiere.train --config FILE, killed after its first checkpoint.
    process = _start([sys.executable, "-m", "lumiere.train", *_options(killed)], tmp_path / "kill1.txt")
    _wait_for(lambda: checkpoints.complete_checkpoints(tmp_path / "out"), process, "the first checkpoint")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoints.complete_checkpoints(tmp_path / "out")[0].name == "checkpoint-2"

    process = _run(tmp_path / "kill2", killed, "--hang-before-publishing", "4", background=True)
    _wait_for((tmp_path / "kill2" / "hanging").exists, process, "the checkpoint of step 4")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (tmp_path / "out" / "checkpoint-4.tmp").is_dir()
    assert checkpoints.resolve_resume("latest", tmp_path / "out").name == "checkpoint-2"

    [resumed] = _run(tmp_path / "resume", killed)
    assert resumed["global_step"] == 6
    assert resumed["losses"] == reference["losses"][2:]  # steps 3..6, drawn identically
    assert resumed["digest"] == reference["digest"]
    assert not (tmp_path / "out" / "checkpoint-4.tmp").exists()
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path / "out")] == [
        "checkpoint-2", "checkpoint-4", "checkpoint-6"
    ]  # fmt: skip


@pytest.mark.slow  # two processes under accelerate launch (startup dominates); the only DDP test
def test_two_processes_with_accelerate_launch(files, tmp_path):
    """DDP over gloo. ``accelerate launch --cpu --num_processes 2`` starts a single
    process in accelerate 1.15 unless given an MPI hostfile, so the CPU launch is its
    torchrun path with ``ACCELERATE_USE_CPU`` (docs/training.md)."""
    launcher = (
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
    )  # fmt: skip
    config = _config(files, tmp_path / "out", max_train_steps=3, checkpointing_steps=3)
    ranks = _run(tmp_path / "report", config, launcher=launcher, env={"ACCELERATE_USE_CPU": "1"})
    assert [rank["global_step"] for rank in ranks] == [3, 3]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["losses"] == ranks[1]["losses"]  # gathered over both ranks
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path / "out")] == ["checkpoint-3"]
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoint-3").glob("random_states_*")) == [
        "random_states_0.pkl", "random_states_1.pkl"
    ]  # fmt: skip
