"""The web app (lumiere.app): its engine and argv builders called directly, then the Gradio
server through gradio_client (generation, bad input, the queue, cancelling)."""

from __future__ import annotations

import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from lumiere.app import (
    Cancelled,
    Studio,
    cinemagraph_argv,
    inpaint_argv,
    keyframe_masks,
    painted_mask,
    text_to_video_argv,
)
from lumiere.cli import _read_mask, main
from lumiere.video import read_image, read_video, save_video

FAST = ["--steps", "2"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    return Studio(tmp_path_factory.mktemp("app"))


def _editor(size=32, box=(8, 20)):
    """An ImageEditor value: a grey background with a white stroke painted on its layer."""
    background = np.full((size, size, 4), 90, dtype=np.uint8)
    layer = np.zeros((size, size, 4), dtype=np.uint8)
    layer[box[0] : box[1], box[0] : box[1]] = 255
    return {"background": background, "layers": [layer], "composite": background}


def test_a_run_writes_the_clip_and_shows_code_that_makes_the_same_clip(studio, tmp_path, monkeypatch):
    result = studio.run([*text_to_video_argv(studio, "a red circle moving right", 16), *FAST, "--seed", "3"])
    frames = read_video(result.video)
    assert frames.shape == (16, 32, 32, 3) and read_image(result.sheet).ndim == 3
    assert result.seed == 3
    assert result.command == "lumiere generate 'a red circle moving right' --frames 16 --steps 2 --seed 3"

    monkeypatch.chdir(tmp_path)
    exec(compile(result.python, "snippet", "exec"), {})
    assert np.array_equal(read_video(tmp_path / "clip.mp4"), frames)
    assert main([*shlex.split(result.command)[1:], "--out", "cli.mp4"]) == 0  # the command line makes it too
    assert np.array_equal(read_video(tmp_path / "cli.mp4"), frames)


def test_painted_masks_become_white_regions_and_the_code_reads_them(studio, tmp_path, monkeypatch):
    image, mask = painted_mask(_editor())
    assert image.shape == (32, 32, 3) and (image == 90).all()
    assert mask.dtype == np.uint8 and mask.sum() == 12 * 12 * 255 and mask[8:20, 8:20].min() == 255
    argv = cinemagraph_argv(studio, _editor(), "a red square moving left", 16)
    assert argv[0] == "cinemagraph" and (read_image(argv[2], grey=True) == mask).all()
    result = studio.run([*argv, *FAST])
    monkeypatch.chdir(tmp_path)
    exec(compile(result.python, "snippet", "exec"), {})
    assert np.array_equal(read_video(tmp_path / "clip.mp4"), read_video(result.video))

    with pytest.raises(ValueError, match="mask: upload an image"):
        painted_mask(None, "mask")
    save_video(np.zeros((16, 32, 32, 3), np.uint8), tmp_path / "in.mp4")
    argv = inpaint_argv(studio, str(tmp_path / "in.mp4"), _editor(), "a red square moving left")
    assert (read_image(argv[2], grey=True) == mask).all()


def test_keyframe_masks_hold_until_the_next_keyframe_and_reach_the_pipeline(studio, tmp_path):
    first, later = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint8)
    first[:8], later[-8:] = 255, 255
    masks = keyframe_masks({2: first, 5: later}, 8)
    assert [int(m[0, 0] > 0) for m in masks] == [1, 1, 1, 1, 1, 0, 0, 0]  # before 2: the first keyframe's
    assert (masks[5:, -1] == 255).all()
    with pytest.raises(ValueError, match=r"keyframes \[2, 9\] must be frames of the video, 0 to 7"):
        keyframe_masks({2: first, 9: later}, 8)

    save_video(np.zeros((16, 32, 32, 3), np.uint8), tmp_path / "in.mp4")
    argv = inpaint_argv(studio, str(tmp_path / "in.mp4"), None, "a red square moving left", {0: first, 8: later})
    assert argv[2].endswith(".mp4")
    assert np.array_equal(_read_mask(Path(argv[2])) > 127, keyframe_masks({0: first, 8: later}, 16) > 127)
    result = studio.run([*argv, *FAST])
    assert read_video(result.video).shape == (16, 32, 32, 3) and "read_video(" in result.python


def test_bad_input_is_a_one_line_value_error_and_leaves_nothing(studio):
    before = set(studio.workdir.iterdir())
    with pytest.raises(ValueError, match="num_frames=7 must be a positive multiple of 2; nearest valid: 6 or 8"):
        studio.run(["generate", "a red circle moving right", "--frames", "7", *FAST])
    with pytest.raises(ValueError, match="^argument --steps: invalid int value: 'abc'$"):
        studio.run(["generate", "a red circle moving right", "--steps", "abc"])
    with pytest.raises(ValueError, match="must start with a generating command"):
        studio.run(["train"])
    with pytest.raises(ValueError, match="prompt: nothing given"):
        text_to_video_argv(studio, " ", 16)
    assert set(studio.workdir.iterdir()) == before


def test_a_studio_names_the_models_it_was_given_and_fast_is_the_shipped_student(tmp_path):
    from lumiere.assets import default_model_dir

    own = default_model_dir()  # any text-to-video folder, given as the studio's own
    studio = Studio(tmp_path, {"text-to-video": own})
    given = studio.run([*text_to_video_argv(studio, "a red circle moving right", 8), *FAST])
    assert f"--model {own}" in given.command and repr(str(own)) in given.python
    fast = studio.run([*text_to_video_argv(studio, "a red circle moving right", 8, fast=True), *FAST])
    assert "--fast" in fast.command and "--model" not in fast.command
    assert "default_model_dir(kind='fast')" in fast.python
    with pytest.raises(ValueError, match="^models key 'fast' is not a model kind; use text-to-video, edit, super-res"):
        Studio(tmp_path, {"fast": own})


def test_cancel_stops_the_sessions_run_at_the_next_step_and_frees_the_studio(studio):
    assert not studio.cancel("someone")  # nothing runs

    def progress(step, steps):
        assert not studio.cancel("another session")
        if step == 1:
            assert studio.cancel("me")

    with pytest.raises(Cancelled, match="cancelled at step 2 of 10"):
        studio.run(["generate", "a red circle moving right", "--steps", "10"], "me", progress)
    assert studio.run(["generate", "a red circle moving right", *FAST], "me").video


def test_gradio_is_imported_only_when_the_app_is_built():
    code = "import sys, lumiere, lumiere.cli, lumiere.app, lumiere.pipelines; assert 'gradio' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lumiere_app_serves_the_page(tmp_path):
    pytest.importorskip("gradio")
    port = _free_port()
    command = [sys.executable, "-m", "lumiere.cli", "app", "--port", str(port), "--workdir", str(tmp_path / "work")]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"no page; exit code {server.poll()}"
        assert '"title":"lumiere"' in page.replace(" ", "")  # the app's config, which the page renders
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"results in {tmp_path / 'work'}" in output


def test_the_cli_refuses_a_bad_port_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["app", "--port", "70000"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "lumiere app: error: --port 70000 is not a port; use 1-65535, or leave it out for the first free one\n"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(studio):
    pytest.importorskip("gradio")
    from gradio_client import Client

    from lumiere.app import launch

    app = launch(studio, _free_port(), block=False)
    yield lambda: Client(app.local_url, verbose=False)
    app.close()


def _path(video) -> str:
    """A Video output as gradio_client returns it: a path, or a dict holding one."""
    return video["video"] if isinstance(video, dict) else video


def test_the_server_generates_and_reports_bad_input(server):
    from gradio_client.exceptions import AppError

    client = server()
    video, sheet, files, info = client.predict(
        "a red circle moving right", 16, False, False, 2, 3.0, 7, api_name="/text_to_video"
    )
    assert read_video(_path(video)).shape == (16, 32, 32, 3)
    assert read_image(sheet).ndim == 3 and len(files) == 2
    assert "lumiere generate 'a red circle moving right' --frames 16 --steps 2 --guidance 3.0 --seed 7" in info
    with pytest.raises(AppError, match="prompt: nothing given"):
        client.predict("", 16, False, False, 2, 3.0, 7, api_name="/text_to_video")
    with pytest.raises(AppError, match="num_frames=9 must be a positive multiple of 2; nearest valid: 8 or 10"):
        client.predict("a red circle", 9, False, False, 2, 3.0, 7, api_name="/text_to_video")
    # It keeps serving; the fast switch runs the shipped few-step model.
    *_, info = client.predict("a blue square moving up", 8, False, True, 2, 3.0, 1, api_name="/text_to_video")
    assert "lumiere generate 'a blue square moving up' --frames 8 --fast --steps 2" in info


def test_the_queue_runs_concurrent_requests_and_cancel_frees_the_worker(server, studio):
    clients = [server() for _ in range(5)]
    jobs = [c.submit("a red circle moving right", 16, False, False, 2, 3.0, i, api_name="/text_to_video")
            for i, c in enumerate(clients)]  # fmt: skip
    results = [job.result(timeout=300) for job in jobs]
    assert len({_path(r[0]) for r in results}) == 5

    # A long run cancelled from its own session stops, and the next request runs.
    long, other = server(), server()
    job = long.submit("a red circle moving right", 16, False, False, 100, 3.0, 0, api_name="/text_to_video")
    deadline = time.monotonic() + 60
    while not job.status().progress_data and time.monotonic() < deadline:  # until it reports steps
        time.sleep(0.05)
    (progress,) = job.status().progress_data  # the page's progress bar, fed by the step callback
    assert progress.unit == "steps" and progress.length == 100 and 1 <= progress.index <= 100
    assert long.predict(api_name="/cancel") == "cancelled: it stops at its next step"
    with pytest.raises(Exception, match="cancelled at step"):
        job.result(timeout=120)
    assert other.predict("a red circle moving right", 16, False, False, 2, 3.0, 0, api_name="/text_to_video")[0]
