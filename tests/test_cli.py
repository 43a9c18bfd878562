import re
import shutil
import subprocess
import sys
from pathlib import Path

import decord
import numpy as np
import PIL.Image
import pytest
import torch

from lumiere.cli import main
from lumiere.testing import make_inflated_pipeline, read_metadata, subprocess_env


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed `lumiere` entry point when present, else the module."""
    script = shutil.which("lumiere", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "lumiere.cli"]
    return subprocess.run(command + list(args), capture_output=True, text=True, env=subprocess_env(), timeout=300)


def run_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``main(args)`` in this process, reported like :func:`run_cli`."""
    try:
        returncode = main(list(args))
    except SystemExit as exit_info:
        returncode = exit_info.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), returncode, captured.out, captured.err)


@pytest.mark.parametrize(
    "runner",
    [
        "in_process",
        # Two fresh interpreters: the entry point is also run, fast, by the bad-input test below.
        pytest.param("entry_point", marks=pytest.mark.slow),
    ],
)
def test_inflate_then_generate_writes_mp4_and_contact_sheet(runner, sd_folder, tmp_path, capsys):
    run = run_cli if runner == "entry_point" else lambda *args: run_in_process(capsys, *args)
    model_dir = tmp_path / "lumiere-tiny"
    inflated = run("inflate", str(sd_folder), str(model_dir), "--temporal-downsample", "1,0")
    assert inflated.returncode == 0, inflated.stderr
    assert "frames must be a multiple of 2" in inflated.stdout
    assert (model_dir / "model_index.json").is_file() and (model_dir / "unet" / "config.json").is_file()

    out = tmp_path / "clips" / "clip.mp4"
    generated = run(
        "generate", "a red circle moving right", "--model", str(model_dir), "--frames", "6", "--height", "32",
        "--width", "32", "--steps", "2", "--seed", "1", "--out", str(out),
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr
    reader = decord.VideoReader(str(out))
    assert len(reader) == 6
    assert reader[0].shape == (32, 32, 3)
    sheet = PIL.Image.open(out.with_suffix(".png"))
    assert sheet.size[0] > 32 and sheet.size[1] > 32
    # The clip is the inflated pipeline's for that prompt and seed: the lossless sheet
    # exactly; the mp4 (noise-like frames from random weights compress poorly) nearer to it
    # than to another seed's clip.
    from lumiere import LumierePipeline
    from lumiere.video import make_contact_sheet

    pipe = LumierePipeline.from_pretrained(model_dir)
    assert list(pipe.unet.config.temporal_downsample) == [True, False]
    kwargs = dict(num_frames=6, height=32, width=32, num_inference_steps=2, guidance_scale=7.5)
    expected = pipe("a red circle moving right", generator=torch.Generator().manual_seed(1), **kwargs).frames[0]
    np.testing.assert_array_equal(np.asarray(sheet), np.asarray(make_contact_sheet(expected)))
    other = pipe("a red circle moving right", generator=torch.Generator().manual_seed(2), **kwargs).frames[0]
    decoded = reader.get_batch(list(range(6))).asnumpy() / 255.0
    assert np.abs(decoded - expected).mean() < 0.5 * np.abs(decoded - other).mean()


def test_the_installed_entry_point_reports_bad_input_in_one_line():
    result = run_cli("generate", "x", "--model", "/nonexistent/model")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lumiere generate: error: argument --model: '/nonexistent/model' is not a directory"
    ]


@pytest.fixture
def model_dir(sd_folder, tmp_path):
    assert main(["inflate", str(sd_folder), str(tmp_path / "model")]) == 0
    return tmp_path / "model"


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate", "x", "--frames", "6"], "num_frames=6 must be a positive multiple of 4; nearest valid: 4 or 8"),
        (["generate", "x", "--height", "20"], "height=20 must be a positive multiple of 8; nearest valid: 16 or 24"),
        (["generate", "x", "--bogus"], "unrecognized arguments: --bogus"),
        (["generate", "x", "--out", "clip.avi"], "--out 'clip.avi' must end in .mp4 or .gif"),
        (["generate", "x", "--frames", "many"], "argument --frames: invalid int value: 'many'"),
        (["inflate", "/nonexistent/t2i", "out"], "argument t2i_dir: '/nonexistent/t2i' is not a directory"),
        (["inflate", "{sd}", "out", "--temporal-downsample", "yes"], "expected comma-separated 1/0 flags"),
        (["inflate", "{sd}", "out", "--temporal-downsample", "1"], "temporal_downsample needs one flag per spatial"),
        (["render"], "invalid choice: 'render'"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, model_dir, sd_folder, tmp_path, capsys):
    args = [arg.replace("{sd}", str(sd_folder)) for arg in args]
    if args[0] == "generate":
        args += ["--model", str(model_dir)] if "--model" not in args else []
    args = [str(tmp_path / arg) if arg == "out" else arg for arg in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert message in error


def test_make_dataset_writes_clips_or_stills_with_metadata(tmp_path, capsys):
    clips = tmp_path / "shapes"
    assert main(["make-dataset", "shapes", str(clips), "--clips", "3", "--frames", "8", "--size", "32"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 3 32x32 8-frame clips and metadata.jsonl to {clips}"
    assert sorted(path.name for path in clips.iterdir()) == ["00000.mp4", "00001.mp4", "00002.mp4", "metadata.jsonl"]
    assert len((clips / "metadata.jsonl").read_text().splitlines()) == 3
    assert len(decord.VideoReader(str(clips / "00002.mp4"))) == 8

    stills = tmp_path / "stills"
    args = ["make-dataset", "shapes", str(stills), "--clips", "2", "--images", "--include-held-out", "--seed", "4"]
    assert main(args + ["--backgrounds", "gray", "checker"]) == 0
    assert len(list(stills.glob("*.png"))) == 2 and len((stills / "metadata.jsonl").read_text().splitlines()) == 2

    with pytest.raises(SystemExit) as exit_info:
        main(["make-dataset", "shapes", str(clips), "--clips", "1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"lumiere make-dataset: error: output folder {str(clips)!r} is not empty; choose a new folder or pass "
        "overwrite (--overwrite) to replace it"
    ]


def test_make_dataset_motions_keeps_only_those_motions(tmp_path, capsys):
    out = tmp_path / "axis"
    args = [
        "make-dataset",
        "shapes",
        str(out),
        "--clips",
        "6",
        "--frames",
        "4",
        "--motions",
        "moving left",
        "moving up",
    ]
    assert main(args) == 0
    records = read_metadata(out)
    assert len(records) == 6 and {record["motion"] for record in records} <= {"moving left", "moving up"}

    with pytest.raises(SystemExit):
        main(["make-dataset", "shapes", str(tmp_path / "bad"), "--clips", "1", "--motions", "jumping"])
    assert "argument --motions: invalid choice: 'jumping'" in capsys.readouterr().err


def test_eval_prints_seen_unseen_and_baseline_rows(tmp_path, capsys):
    make_inflated_pipeline("pixel").save_pretrained(tmp_path / "model")
    args = ["eval", "--model", str(tmp_path / "model"), "--prompts", "2", "--frames", "4", "--steps", "1"]
    assert main([*args, "--out", str(tmp_path / "eval")]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [row.split(" | ")[:2] for row in rows[2:6]] == [
        ["| lumiere", "seen"], ["| lumiere", "unseen"], ["| per_frame_baseline", "seen"],
        ["| per_frame_baseline", "unseen"],
    ]  # fmt: skip
    assert rows[6].startswith("| chance |")
    assert (tmp_path / "eval" / "eval.json").is_file()
    with pytest.raises(SystemExit):
        main([*args[:3], "--prompts", "1"])
    assert "--prompts 1 is too few" in capsys.readouterr().err


@pytest.fixture(scope="module")
def edit_inputs(tmp_path_factory):
    """A shapes-world image, clip, inpainting mask and cinemagraph region as files."""
    from lumiere.eval.editing import cinemagraph_region, edit_case, inpainting_mask
    from lumiere.eval.shapes import prompt_set
    from lumiere.video import save_video

    root = tmp_path_factory.mktemp("edit-inputs")
    case = edit_case(prompt_set(2)[0])
    PIL.Image.fromarray(case.clip[0]).save(root / "image.png")
    save_video(case.clip, root / "clip.gif")  # lossless, unlike mp4
    PIL.Image.fromarray((inpainting_mask(case).max(0) * 255).astype(np.uint8)).save(root / "mask.png")
    PIL.Image.fromarray((cinemagraph_region(case) * 255).astype(np.uint8)).save(root / "region.png")
    return root


@pytest.mark.parametrize(
    "command, inputs",
    [
        ("animate", ["image.png"]),
        ("inpaint", ["clip.gif", "mask.png"]),
        ("cinemagraph", ["image.png", "region.png"]),
        ("edit", ["clip.gif"]),
    ],
)
def test_editing_commands_on_the_shipped_model(capsys, edit_inputs, tmp_path, command, inputs):
    out = tmp_path / f"{command}.mp4"
    args = [command, *(str(edit_inputs / name) for name in inputs), "a red circle moving right", "--steps", "2"]
    result = run_in_process(capsys, *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and out.with_suffix(".png").is_file()
    frames = np.stack([frame.asnumpy() for frame in decord.VideoReader(str(out))])
    assert frames.shape == (16, 32, 32, 3)
    again = run_in_process(capsys, *args, "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "args, match",
    [
        (["animate", "missing.png", "a"], "cannot be read as an image"),
        (["inpaint", "image.png", "mask.png", "a"], "num_frames=1"),  # an image read as a 1-frame video
        (["inpaint", "missing.mp4", "mask.png", "a"], "cannot be read as a video"),
        (["inpaint", "clip.gif", "missing.png", "a"], "mask"),
        (["cinemagraph", "image.png", "region.png", "a", "--frames", "5"], "num_frames"),
        (["cinemagraph", "image.png", "image.png", "a"], "mask marks nothing"),
        (["animate", "image.png", "a", "--model", "MODEL"], "conditioning_channels=0"),
        (["animate", "image.png", "a", "--conditioning-noise", "nan"], "conditioning"),
        (["edit", "clip.gif", "a", "--strength", "1.5"], r"strength=1.5 is invalid"),
        (["edit", "image.png", "a"], r"len\(video\)=1 must be a positive multiple of 2"),
    ],
)
def test_editing_commands_refuse_bad_input_in_one_line(capsys, edit_inputs, tmp_path, args, match):
    from lumiere.assets import DEFAULT_MODEL_DIR

    args = [str(edit_inputs / a) if (edit_inputs / a).exists() or a.startswith("missing") else a for a in args]
    args = [str(DEFAULT_MODEL_DIR) if a == "MODEL" else a for a in args]
    result = run_in_process(capsys, *args, "--steps", "1", "--out", str(tmp_path / "x.mp4"))
    assert result.returncode == 2, result
    assert re.search(match, result.stderr) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_generate_with_a_style_interpolates_towards_it(capsys, tmp_path):
    """The shipped model stylized towards a 2D U-Net: at --style-scale 0 the clip is the
    plain one, at 1 (a different U-Net's spatial weights) it is not; bad styles exit 2."""
    from lumiere.assets import DEFAULT_MODEL_DIR
    from lumiere.pipelines import LumierePipeline

    style = LumierePipeline.from_pretrained(DEFAULT_MODEL_DIR).unet.to_unet2d().float()
    with torch.no_grad():
        style.conv_out.weight.mul_(-1)  # a 'style' whose pixels differ
    style.save_pretrained(tmp_path / "style")
    clips = {}
    for scale in ("0", "1"):
        out = tmp_path / f"styled-{scale}.mp4"
        args = ["generate", "a red circle moving right", "--steps", "2", "--out", str(out)]
        result = run_in_process(capsys, *args, "--style", str(tmp_path / "style"), "--style-scale", scale)
        assert result.returncode == 0, result.stderr
        clips[scale] = np.stack([frame.asnumpy() for frame in decord.VideoReader(str(out))]).astype(float)
    plain = tmp_path / "plain.mp4"
    assert (
        run_in_process(capsys, "generate", "a red circle moving right", "--steps", "2", "--out", str(plain)).returncode
        == 0
    )
    plain_frames = np.stack([frame.asnumpy() for frame in decord.VideoReader(str(plain))]).astype(float)
    assert np.array_equal(clips["0"], plain_frames) and np.abs(clips["1"] - plain_frames).mean() > 5
    for extra, match in ((["--style", str(tmp_path / "missing")], "does not exist"),
                         (["--style", str(tmp_path / "style"), "--style-scale", "2"], "style_scale=2.0 is invalid")):  # fmt: skip
        result = run_in_process(capsys, "generate", "a", "--steps", "1", "--out", str(tmp_path / "x.mp4"), *extra)
        assert result.returncode == 2 and match in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_steps_and_guidance_default_to_the_shipped_models_evaluated_settings():
    from lumiere.cli import model_kind, parse_command, steps_and_guidance
    from lumiere.recipes import shapes_fast, shapes_ssr, shapes_tiny

    def settings(*argv: str) -> tuple[str, dict]:
        args = parse_command(argv)
        return model_kind(args), steps_and_guidance(args, args.model, model_kind(args))

    def expected(sampling: dict) -> dict:
        return dict(num_inference_steps=sampling["steps"], guidance_scale=sampling["guidance"])

    assert settings("generate", "a") == ("text-to-video", expected(shapes_tiny.SAMPLING))
    assert settings("generate", "a", "--fast") == ("fast", expected(shapes_fast.SAMPLING))
    assert settings("upscale", "clip.mp4", "a") == ("super-resolution", expected(shapes_ssr.SAMPLING))
    assert settings("animate", "image.png", "a")[0] == "edit"
    # A --model folder gets diffusers' usual settings; given values always win.
    model = str(Path(__file__).parent)
    assert settings("generate", "a", "--model", model)[1] == dict(num_inference_steps=25, guidance_scale=7.5)
    assert settings("generate", "a", "--fast", "--steps", "3", "--guidance", "1.5")[1] == dict(
        num_inference_steps=3, guidance_scale=1.5
    )


def test_fast_with_a_model_folder_is_one_line_and_exit_2(capsys, tmp_path):
    result = run_in_process(
        capsys, "generate", "a", "--fast", "--model", str(tmp_path), "--out", str(tmp_path / "x.mp4")
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"lumiere generate: error: --fast is the shipped shapes-tiny-fast; leave it out "
                                                  f"to use --model {str(tmp_path)!r}"]  # fmt: skip
    assert not list(tmp_path.iterdir())


def test_generate_fast_samples_the_shipped_distilled_model_one_pass_a_step(capsys, tmp_path, monkeypatch):
    from lumiere.models.space_time_unet import SpaceTimeUNet
    from lumiere.recipes.shapes_fast import SAMPLING

    batches, forward = [], SpaceTimeUNet.forward

    def counted(self, sample, *args, **kwargs):
        batches.append(len(sample))
        return forward(self, sample, *args, **kwargs)

    monkeypatch.setattr(SpaceTimeUNet, "forward", counted)
    out = tmp_path / "fast.mp4"
    result = run_in_process(capsys, "generate", "a red circle moving right", "--fast", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert batches == [1] * SAMPLING["steps"]  # no unconditional branch: guidance is the U-Net's input
    assert len(decord.VideoReader(str(out))) == 16
