"""The command line keeps its promises: one line and exit code 2 for bad input, 1 for a failed
write, nothing the user has replaced without --overwrite, clobbering training runs refused.
Each class runs once through a real subprocess; the table of cases runs in-process."""

import json
import os
import shutil

import pytest
import yaml

from lumiere.assets import default_model_dir
from lumiere.testing import make_inflated_pipeline

from .test_cli import run_cli, run_in_process


def one_line(result, code: int, message: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if not line.lstrip().startswith(("0%", "100%"))]
    assert len(lines) == 1, result.stderr  # the sampling progress bar aside
    assert message in lines[0], lines[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model") / "lumiere"
    make_inflated_pipeline("pixel").save_pretrained(folder)
    return folder


def test_an_existing_output_or_its_contact_sheet_is_not_replaced(tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"an unrelated picture")
    result = run_cli("generate", "a red circle", "--out", str(tmp_path / "notes.mp4"), "--steps", "1")
    one_line(result, 2, f"{str(notes)!r} exists; choose another name or pass overwrite (--overwrite)")
    assert notes.read_bytes() == b"an unrelated picture"
    assert not (tmp_path / "notes.mp4").exists()


def test_an_output_that_is_a_folder_is_bad_input(tmp_path, capsys):
    (tmp_path / "x.mp4").mkdir()
    one_line(run_in_process(capsys, "generate", "a", "--out", str(tmp_path / "x.mp4")), 2, "is a folder; give a file")


def test_a_failed_write_is_an_error_not_wrote(tmp_path):
    """/proc takes no new files, even from root: exit 1 after sampling, no "wrote"."""
    result = run_cli("generate", "a red circle", "--frames", "4", "--steps", "1", "--out", "/proc/lumiere-clip.mp4")
    one_line(result, 1, "lumiere generate: error: [Errno")
    assert "wrote" not in result.stdout


def test_an_output_inside_a_file_is_bad_input(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    result = run_in_process(capsys, "generate", "a", "--out", str(tmp_path / "file" / "c.mp4"))
    one_line(result, 2, "which is a file, not a folder")


def test_generate_overwrite_replaces_both_outputs(model, tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    args = ["generate", "a", "--model", str(model), "--frames", "4", "--steps", "1", "--out", str(out)]
    assert run_in_process(capsys, *args).returncode == 0
    first = out.with_suffix(".png").read_bytes()
    one_line(run_in_process(capsys, *args), 2, "exists")
    assert run_in_process(capsys, *args, "--seed", "3", "--overwrite").returncode == 0
    assert out.with_suffix(".png").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.png"]


def test_unbounded_work_is_refused_with_the_estimate():
    result = run_cli("generate", "a red circle", "--frames", "1000000")
    one_line(result, 2, "1 video(s) of 1000000 frames at 32x32 needs about")
    assert "available; use fewer frames" in result.stderr and "--no-check-memory" in result.stderr


def test_a_text_to_image_folder_gets_the_inflate_command(sd_folder):
    one_line(run_cli("generate", "a", "--model", str(sd_folder)), 2, f"inflate it first: lumiere inflate {sd_folder}")


def test_invalid_utf8_in_the_prompt_is_bad_input():
    result = run_cli(os.fsdecode(b"generate"), os.fsdecode(b"a \xff\xfe circle"), "--steps", "1")
    one_line(result, 2, "prompt is not valid UTF-8 text")


def test_a_device_this_machine_lacks_is_bad_input(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_in_process(capsys, "generate", "a", "--device", "cuda")
    one_line(result, 2, "CUDA is not available on this machine; use --device cpu")


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "a", "--guidance", "nan"], "argument --guidance: 'nan' is not a finite number"),
        (["generate", "a", "--guidance", "inf"], "argument --guidance: 'inf' is not a finite number"),
        (["generate", "a", "--fps=-inf"], "argument --fps: '-inf' is not a finite number"),
        (["generate", "a", "--fps", "0"], "fps must be a positive finite number; got 0.0"),
        (["generate", "a", "--seed", "-1"], "argument --seed: -1 is out of range; seeds are integers in [0, 2**64)"),
        (["generate", "a", "--seed", str(2**64)], "argument --seed: 18446744073709551616 is out of range"),
        (["generate", "a", "--device", "tpu9"], "--device 'tpu9' is not a torch device"),
        (["generate", "a", "--device", "meta"], "lumiere runs on cpu, cuda or mps"),
        (["generate", "a", "--model", "{empty}"], "is an empty folder, not a saved pipeline"),
        (["generate", "a", "--model", "{corrupt}"], "model_index.json' is not valid JSON"),
        (["generate", "a", "--model", "{truncated}"], "could not load the pipeline in"),
        (["inflate", "{empty}", "{tmp}/out"], "is an empty folder, not a saved pipeline"),
        (["inflate", "{model}", "{tmp}/out"], "is already a Lumiere pipeline"),
        (["train", "--pretrained", "{empty}", "--train-data", "{tmp}", "--output-dir", "{tmp}/run"], "pretrained="),
        (["train", "--pretrained", "x", "--train-data", "y", "--learning-rate", "nan"], "'nan' is not a finite number"),
        (["train", "--pretrained", "x", "--train-data", "y", "--seed", "-3"], "-3 is out of range"),
        (["eval", "--model", "{model}", "--guidance", "inf"], "'inf' is not a finite number"),
        (["make-dataset", "shapes", "{tmp}/d", "--clips", "1", "--fps", "nan"], "'nan' is not a finite number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, model, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "model_index.json").write_text("{")
    shutil.copytree(model, tmp_path / "truncated")
    weights = tmp_path / "truncated" / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    names = {"{empty}": tmp_path / "empty", "{corrupt}": tmp_path / "corrupt", "{truncated}": tmp_path / "truncated",
             "{model}": model, "{tmp}": tmp_path}  # fmt: skip
    for key, value in names.items():
        args = [arg.replace(key, str(value)) for arg in args]
    one_line(run_in_process(capsys, *args), 2, message)


def test_config_files_are_checked_like_flags(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"pretrained": "x", "train_data": "y", "learning_rate": ".nan"}))
    one_line(run_in_process(capsys, "train", "--config", str(config)), 2, "learning_rate must be a finite number")
    config.write_text(yaml.safe_dump({"pretrained": "x", "train_data": "y", "max_train_steps": "ten"}))
    one_line(run_in_process(capsys, "train", "--config", str(config)), 2, "max_train_steps must be an integer")


# ---------------------------------------------------------------- training runs


def _finished_run(folder):
    (folder / "checkpoint-1000").mkdir(parents=True)
    (folder / "checkpoint-1000" / "trainer_state.json").write_text(json.dumps({"global_step": 1000}))
    (folder / "config.yaml").write_text("max_train_steps: 1000\n")
    (folder / "model_index.json").write_text("{}")


def test_training_into_an_earlier_run_is_refused_and_leaves_it_untouched(tmp_path):
    run = tmp_path / "run"
    _finished_run(run)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    result = run_cli("train", "--pretrained", str(default_model_dir()), "--train-data", str(tmp_path),
                     "--output-dir", str(run))  # fmt: skip
    one_line(result, 2, "already holds an earlier run (newest checkpoint checkpoint-1000); continue it with --resume")
    assert "--overwrite" in result.stderr
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_resume_and_overwrite_rules(tmp_path):
    from lumiere.training.checkpoints import check_output_dir, clear

    run = tmp_path / "run"
    check_output_dir(run, None, False)  # new
    run.mkdir()
    check_output_dir(run, None, False)  # empty
    (run / "notes.txt").write_text("")
    with pytest.raises(ValueError, match="already holds files"):
        check_output_dir(run, "latest", False)  # not a run: nothing to resume
    _finished_run(run)
    check_output_dir(run, "latest", False)
    (run / "checkpoint-500").mkdir()
    (run / "checkpoint-500" / "trainer_state.json").write_text(json.dumps({"global_step": 500}))
    with pytest.raises(ValueError, match=r"is older than \['checkpoint-1000'\]"):
        check_output_dir(run, str(run / "checkpoint-500"), False)
    with pytest.raises(ValueError, match="not both"):
        check_output_dir(run, "latest", True)
    check_output_dir(run, None, True)
    clear(run)
    assert list(run.iterdir()) == []
