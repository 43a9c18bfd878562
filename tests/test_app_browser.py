"""The web app in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright with ``executable_path``; no browser is downloaded) runs text-to-video and a
cinemagraph whose region is painted with the mouse, and saves screenshots for docs/app.md
into ``$LUMIERE_SCREENSHOTS`` (``make test-browser`` sets it to docs/app)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from lumiere.app import Studio, launch
from lumiere.eval.editing import cinemagraph_region, edit_case
from lumiere.eval.shapes import prompt_set
from lumiere.video import read_image, read_video

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOWN = 256  # the uploaded image's side: a shapes frame, 8x


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make install)")
    studio = Studio(tmp_path_factory.mktemp("app"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = launch(studio, port, block=False)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1500})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("#text_to_video-run")
        page.studio = studio
        yield page
        browser.close()
    app.close()


def _screenshot(page, name: str) -> None:
    folder = Path(os.environ.get("LUMIERE_SCREENSHOTS", "") or page.studio.workdir / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _run(page, name: str, steps: int) -> np.ndarray:
    """Set the tab's steps, press its button, wait for the clip; its frames."""
    page.locator(f"#{name}-sampling").get_by_text("sampling").click()
    # The accordion mounts its sliders as it opens and a slider sets its own value as it
    # mounts, so a value set too early is lost: set it until the slider and its box hold it.
    shown = f"[...document.querySelectorAll('#{name}-steps input')].map(box => box.value)"
    for _ in range(20):
        page.locator(f"#{name}-steps input[type=range]").fill(str(steps))
        page.wait_for_timeout(250)
        if page.evaluate(shown) == [str(steps)] * 2:
            break
    assert page.evaluate(shown) == [str(steps)] * 2, f"the steps slider shows {page.evaluate(shown)}, not {steps}"
    page.locator(f"#{name}-run").click()
    page.wait_for_selector(f"#{name}-video video, .toast-body", timeout=180_000)
    toast = page.locator(".toast-body")
    assert not toast.count(), f"the page showed an error: {toast.first.inner_text()}"
    page.wait_for_function(f"document.querySelector('#{name}-video video').readyState >= 2", timeout=60_000)
    clips = sorted(page.studio.workdir.glob("*/clip.mp4"), key=lambda path: path.stat().st_mtime)
    return read_video(clips[-1])


def test_text_to_video_in_the_browser(page):
    page.locator("#text_to_video-prompt textarea").fill("a red circle moving right")
    frames = _run(page, "text_to_video", 8)
    assert frames.shape == (16, 32, 32, 3)
    command = page.get_by_text("lumiere generate 'a red circle moving right'")
    command.first.wait_for(timeout=30_000)
    assert "--steps 8" in command.first.inner_text()
    _screenshot(page, "text-to-video")


def test_a_cinemagraph_with_a_painted_region(page, tmp_path):
    case = edit_case(next(c for c in prompt_set(8) if c.motion == "moving left"))
    image = tmp_path / "frame.png"
    PIL.Image.fromarray(case.clip[0]).resize((SHOWN, SHOWN), PIL.Image.NEAREST).save(image)
    page.get_by_role("tab", name="cinemagraph").click()
    editor = page.locator("#cinemagraph-editor")
    zoom_label = editor.get_by_text("%").first
    empty_canvas_zoom = zoom_label.inner_text()
    editor.locator("input[type=file]").set_input_files(str(image))
    # The upload is shown when the editor re-fits its canvas to the image: until then the
    # zoom is the empty canvas's, and strokes would land by the wrong geometry.
    for _ in range(60):
        if zoom_label.inner_text() != empty_canvas_zoom:
            break
        page.wait_for_timeout(250)
    assert zoom_label.inner_text() != empty_canvas_zoom, "the uploaded image never showed in the editor"
    brush = editor.get_by_role("button", name="Brush", exact=True)
    brush.click()
    brush.click()  # the first click shows the tool's options; the second arms it
    # Paint the region the evaluation animates (a box around the object's path), row by
    # row. The image is shown centred on the canvas at the zoom the editor displays.
    region = cinemagraph_region(case)
    rows, cols = np.nonzero(region)
    canvas = editor.locator("canvas").first.bounding_box()
    zoom = float(zoom_label.inner_text().strip().rstrip("%")) / 100
    pixel = SHOWN * zoom / region.shape[0]  # screen px per 32-px image pixel
    left = canvas["x"] + canvas["width"] / 2 - SHOWN * zoom / 2
    top = canvas["y"] + canvas["height"] / 2 - SHOWN * zoom / 2
    for row in np.arange(rows.min() + 0.5, rows.max() + 1, 0.5):
        y = top + row * pixel
        page.mouse.move(left + (cols.min() + 0.5) * pixel, y)
        page.mouse.down()
        for column in np.linspace(cols.min() + 0.5, cols.max() + 0.5, 12):
            page.mouse.move(left + column * pixel, y)
        page.mouse.up()
    page.locator("#cinemagraph-prompt textarea").fill(case.prompt)
    frames = _run(page, "cinemagraph", 8)
    assert frames.shape == (16, 32, 32, 3)

    painted = read_image(next(page.studio.workdir.glob("inputs/region-*/region.png")), grey=True)
    small = np.asarray(PIL.Image.fromarray(painted).resize(region.shape[::-1], PIL.Image.BILINEAR)) > 127
    target = region > 0
    assert (small & target).sum() / (small | target).sum() > 0.6, "the mask is where the strokes went"
    change = np.abs(frames[1:].astype(int) - frames[:1].astype(int))
    assert change[:, ~small].mean() < 1.5  # outside the painted region the image stays (pasted back; mp4 noise)
    assert change[:, small].mean() > change[:, ~small].mean()  # inside, it moves
    _screenshot(page, "cinemagraph")
