"""``lumiere app``: a local web app (Gradio) for every pipeline, masks painted by hand.

Each tab turns what the page holds into the arguments of a ``lumiere`` command (the
uploaded or painted inputs saved as files), and runs that command's own code
(:func:`lumiere.cli.generate_from_args`) on pipelines loaded once and shared. So the
command and the Python snippet shown under each result are exactly what ran.

One generation runs at a time (Gradio's queue, concurrency 1, and a lock for direct
callers); the others wait in the queue. The cancel button stops the session's running
generation at its next denoising step and frees the worker. Bad input comes back as the
pipelines' own ``ValueError`` message in the page.

Gradio is an optional extra (``pip install lumiere[app]``); only this module imports it,
and only in [`build_app`] and [`launch`].
"""

# No ``from __future__ import annotations``: Gradio finds ``gr.Request`` and ``gr.Progress``
# parameters by their evaluated annotations.
import argparse
import shlex
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from .assets import STYLE_DIRS
from .cli import (
    _from_pretrained,
    _noise_level,
    generate_from_args,
    model_kind,
    parse_command,
    shipped_sampling,
    steps_and_guidance,
)
from .files import atomic_file

# The commands behind the tabs, and the pipeline class each one runs.
PIPELINES = {
    "generate": "LumierePipeline",
    "animate": "LumiereImageToVideoPipeline",
    "inpaint": "LumiereInpaintPipeline",
    "cinemagraph": "LumiereCinemagraphPipeline",
    "edit": "LumiereVideoToVideoPipeline",
    "upscale": "LumiereSuperResolutionPipeline",
}
NO_KEYFRAMES = "one mask for every frame (no keyframes): the one painted when you press the button"


class Cancelled(Exception):
    """A generation stopped by [`Studio.cancel`]."""


@dataclass(frozen=True)
class Result:
    """What one generation made: the clip (mp4), its contact sheet (PNG), the seed, and the
    command line and Python code that make the same clip."""

    video: str
    sheet: str
    seed: int
    command: str
    python: str


# The kinds a studio may be given its own model for; ``fast`` is always the shipped one.
STUDIO_KINDS = ("text-to-video", "edit", "super-resolution")


class Studio:
    """The app's engine, usable without Gradio: runs ``lumiere`` commands one at a time on
    shared pipelines, writing each result into its own folder under ``workdir``.

    Args:
        workdir: where inputs and results go (default: a new temporary folder).
        models: ``{kind: folder}`` for kinds ``text-to-video``, ``edit`` and
            ``super-resolution``; missing kinds use the shipped models.
        device: torch device name (default: cuda when present, else cpu).
    """

    def __init__(self, workdir: str | Path | None = None, models: dict[str, Path] | None = None,
                 device: str | None = None) -> None:  # fmt: skip
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="lumiere-app-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.inputs = self.workdir / "inputs"  # what the page uploads or paints, one new folder each
        self.inputs.mkdir(exist_ok=True)
        for kind in models or {}:
            if kind not in STUDIO_KINDS:
                raise ValueError(f"models key {kind!r} is not a model kind; use {', '.join(STUDIO_KINDS)}")
        self.models = {kind: Path(folder) for kind, folder in (models or {}).items()}
        self.device = device
        self._pipes: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._running: str | None = None
        self._cancel = threading.Event()

    def load(self, cls: type, folder: Path, dtype: str, device: object) -> Any:
        """``cls`` on ``folder``, loaded once per folder, dtype and device; another class on
        the same folder shares its modules (``from_pipe``)."""
        key = (Path(folder).resolve(), dtype, str(device))
        if (cls, *key) not in self._pipes:
            shared = next((pipe for (_, *other), pipe in self._pipes.items() if tuple(other) == key), None)
            pipe = _from_pretrained(cls, folder, dtype, device) if shared is None else cls.from_pipe(shared)
            pipe.set_progress_bar_config(disable=True)
            self._pipes[(cls, *key)] = pipe
        return self._pipes[(cls, *key)]

    def save_image(self, image: np.ndarray, name: str) -> Path:
        """An ``(H, W, 3)`` or ``(H, W)`` uint8 array as a PNG in a new folder under ``inputs``."""
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.inputs)) / f"{name}.png"
        with atomic_file(path) as temporary:
            PIL.Image.fromarray(np.asarray(image, dtype=np.uint8)).save(temporary, format="PNG")
        return path

    def run(
        self,
        argv: Sequence[str],
        session: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> Result:
        """Run ``lumiere ARGV`` (a generating command, without ``--out``: the result goes
        into a new folder) and return its [`Result`]. ``--model`` defaults to this studio's
        model for the command's kind. ``progress(step, steps)`` is called after each
        denoising step. A ValueError for bad input, [`Cancelled`] if ``session``'s run was
        cancelled."""
        argv = [str(a) for a in argv]
        if not argv or argv[0] not in PIPELINES:
            raise ValueError(f"argv={argv[:1]} must start with a generating command: {', '.join(PIPELINES)}")
        with self._lock:
            job = Path(tempfile.mkdtemp(prefix=f"{argv[0]}-", dir=self.workdir))  # new: nothing is overwritten
            out = ["--out", str(job / "clip.mp4")]

            def callback(pipe: Any, step: int, timestep: Any, tensors: dict) -> dict:
                if self._cancel.is_set():
                    raise Cancelled(f"cancelled at step {step + 1} of {pipe.num_timesteps}")
                if progress is not None:
                    progress(step + 1, pipe.num_timesteps)
                return {}

            try:
                argv += self._studio_models(parse_command([*argv, *out]))
                args = parse_command([*argv, *out])
                if self.device is not None and args.device is None:
                    args.device = self.device
                self._running = session
                self._cancel.clear()
                video, sheet = generate_from_args(args, self.load, callback)
            except BaseException:
                shutil.rmtree(job)  # nothing was published in it (writes are atomic)
                raise
            finally:
                self._running = None
        shown = [*argv, "--seed", str(args.seed)] if "--seed" not in argv else list(argv)
        return Result(video, sheet, args.seed, shlex.join(["lumiere", *shown]), python_snippet(args))

    def _studio_models(self, args: argparse.Namespace) -> list[str]:
        """``--model`` and ``--upscale-model`` naming this studio's models for the parsed
        command, where it names none. Only models the studio was given are named, so the
        shipped ones keep their evaluated settings."""
        named = []
        kind = model_kind(args)
        if kind in self.models and args.model is None:
            named += ["--model", str(self.models[kind])]
        upscale = getattr(args, "upscale", False) and args.upscale_model is None
        if upscale and "super-resolution" in self.models:
            named += ["--upscale-model", str(self.models["super-resolution"])]
        return named

    def cancel(self, session: str = "") -> bool:
        """Stop ``session``'s running generation at its next step; False if none runs."""
        if self._running is None or self._running != session:
            return False
        self._cancel.set()
        return True


def _folder(model: Path | None, kind: str) -> str:
    """A model folder as Python: the shipped one by its kind, else its path."""
    return f"default_model_dir(kind={kind!r})" if model is None else repr(str(model))


def python_snippet(args: Any) -> str:
    """Python that makes what the parsed command ``args`` makes."""
    read = {"image": "read_image({!r})", "video": "read_video({!r})", "mask": "read_image({!r}, grey=True)"}
    inputs = {
        "generate": [], "edit": ["video"], "animate": ["image"], "inpaint": ["video", "mask"],
        "cinemagraph": ["image", "mask"], "upscale": ["video"],
    }[args.command]  # fmt: skip
    positional = [read[name].format(str(getattr(args, name))) for name in inputs]
    if args.command == "inpaint" and str(args.mask).lower().endswith((".mp4", ".gif")):
        positional[1] = f"read_video({str(args.mask)!r})[..., 0]"
    keywords = {}
    if args.command in ("generate", "animate", "cinemagraph"):
        keywords["num_frames"] = args.frames
    if args.command == "edit":
        keywords["strength"] = args.strength
    if getattr(args, "noise_level", None) is not None and args.command == "upscale":
        keywords["noise_level"] = args.noise_level
    if getattr(args, "conditioning_guidance", None) is not None:
        keywords["conditioning_guidance"] = args.conditioning_guidance
    # The other options, where they differ from the pipelines' defaults.
    optional = dict(
        conditioning_noise=(getattr(args, "conditioning_noise", 0.0), 0.0),
        paste_known=(getattr(args, "paste_known", True), True),
        binarize_mask=(getattr(args, "binarize_mask", True) or args.command == "animate", True),
        negative_prompt=(args.negative_prompt, None), height=(args.height, None), width=(args.width, None),
        window_size=(args.window_size, None), window_stride=(args.window_stride, None),
        window_weighting=(args.window_weighting, "flat"), window_noise=(args.window_noise, "independent"),
        autocast=(args.autocast, False),
    )  # fmt: skip
    keywords.update({name: value for name, (value, default) in optional.items() if value != default})
    kind = model_kind(args)
    keywords.update(steps_and_guidance(args, args.model, kind))
    call = ", ".join([*positional, repr(args.prompt), *(f"{k}={v!r}" for k, v in keywords.items())])
    cls = PIPELINES[args.command]
    upscale = getattr(args, "upscale", False)
    lines = [
        "import torch",
        f"from lumiere import {cls}" + (", LumiereSuperResolutionPipeline" if upscale else ""),
        f"from lumiere.video import {'read_image, read_video, ' if inputs else ''}save_video",
        "",
        f"pipe = {cls}.from_pretrained({_folder(args.model, kind)}, dtype=torch.{args.dtype})",
    ]
    if args.model is None or (upscale and args.upscale_model is None):
        lines[3:3] = ["from lumiere.assets import default_model_dir"]
    generator = f"generator=torch.Generator().manual_seed({args.seed})"
    if getattr(args, "style", None) is not None:
        lines[1:1] = ["from lumiere.stylize import stylize"]
        lines += [f"with stylize(pipe, {args.style!r}, {args.style_scale!r}):",
                  f"    frames = pipe({call}, {generator}).frames[0]"]  # fmt: skip
    else:
        lines.append(f"frames = pipe({call}, {generator}).frames[0]")
    if upscale:
        folder = _folder(args.upscale_model, "super-resolution")
        settings = {**_noise_level(args), **steps_and_guidance(args, args.upscale_model, "super-resolution")}
        options = [f"{k}={v!r}" for k, v in settings.items()]
        lines += [
            f"upscaler = LumiereSuperResolutionPipeline.from_pretrained({folder}, dtype=torch.{args.dtype})",
            f"frames = upscaler(frames, {args.prompt!r}, {', '.join(options)}, {generator}).frames[0]",
        ]
    lines.append(f"save_video(frames, 'clip.mp4', fps={args.fps!r})")
    return "\n".join(lines)


def painted_mask(editor: dict | None, name: str = "mask") -> tuple[np.ndarray, np.ndarray]:
    """A Gradio ``ImageEditor`` value -> ``(image (H, W, 3) uint8, mask (H, W) uint8)``:
    white (255) wherever any layer was painted. A ValueError naming ``name`` when there is
    no image."""
    if not editor or editor.get("background") is None:
        raise ValueError(f"{name}: upload an image (or pick a clip) and paint over it")
    background = np.asarray(editor["background"])
    image = background[..., :3] if background.ndim == 3 else np.repeat(background[..., None], 3, axis=2)
    mask = np.zeros(image.shape[:2], dtype=bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] == mask.shape:
            mask |= (
                layer[..., 3] if layer.ndim == 3 and layer.shape[2] == 4 else layer.reshape(*mask.shape, -1).max(-1)
            ) > 0
    return image.astype(np.uint8), mask.astype(np.uint8) * 255


# What each tab's inputs become: the argv of its command (files saved for arrays).


def _given(value: Any, name: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{name}: nothing given")
    return value


def text_to_video_argv(studio: Studio, prompt: str, frames: int, upscale: bool = False, fast: bool = False) -> list:
    flags = [flag for flag, on in (("--upscale", upscale), ("--fast", fast)) if on]
    return ["generate", _given(prompt, "prompt"), "--frames", int(frames), *flags]


def image_to_video_argv(studio: Studio, image: np.ndarray | None, prompt: str, frames: int) -> list:
    return ["animate", studio.save_image(_given(image, "image"), "image"), _given(prompt, "prompt"), "--frames",
            int(frames)]  # fmt: skip


def keyframe_masks(keyframes: dict[int, np.ndarray], num_frames: int) -> np.ndarray:
    """Masks ``(F, H, W)`` from masks painted on some frames: each frame takes the mask of
    the latest keyframe at or before it (frames before the first keyframe take the first's)."""
    if not keyframes:
        raise ValueError("keyframes: none painted")
    frames = sorted(keyframes)
    if frames[-1] >= num_frames or frames[0] < 0:
        raise ValueError(f"keyframes {frames} must be frames of the video, 0 to {num_frames - 1}")
    held = [keyframes[max([k for k in frames if k <= f], default=frames[0])] for f in range(num_frames)]
    return np.stack(held)


def inpaint_argv(
    studio: Studio, video: str | None, editor: dict | None, prompt: str, keyframes: dict | None = None
) -> list:
    """One mask for every frame (the painted one), or with ``keyframes`` (``{frame: (H, W)
    mask}``) one per frame, as an MP4 the command reads as a mask video (its compression
    moves values by a few levels, far from the 0.5 threshold masks are binarized at)."""
    video = _given(video, "video")
    if keyframes:
        from .video import export_to_mp4, read_video

        masks = keyframe_masks(keyframes, len(read_video(video)))
        folder = Path(tempfile.mkdtemp(prefix="mask-", dir=studio.inputs))
        mask = export_to_mp4(np.repeat(masks[..., None], 3, axis=-1), folder / "mask.mp4")
    else:
        mask = studio.save_image(painted_mask(editor, "mask")[1], "mask")
    return ["inpaint", video, mask, _given(prompt, "prompt")]


def cinemagraph_argv(studio: Studio, editor: dict | None, prompt: str, frames: int) -> list:
    image, region = painted_mask(editor, "image")
    return ["cinemagraph", studio.save_image(image, "image"), studio.save_image(region, "region"),
            _given(prompt, "prompt"), "--frames", int(frames)]  # fmt: skip


def video_to_video_argv(studio: Studio, video: str | None, prompt: str, strength: float) -> list:
    return ["edit", _given(video, "video"), _given(prompt, "prompt"), "--strength", float(strength)]


def stylized_argv(studio: Studio, prompt: str, style: str, style_scale: float, frames: int) -> list:
    return ["generate", _given(prompt, "prompt"), "--style", _given(style, "style"), "--style-scale",
            float(style_scale), "--frames", int(frames)]  # fmt: skip


def upscale_argv(studio: Studio, video: str | None, prompt: str) -> list:
    return ["upscale", _given(video, "video"), _given(prompt, "prompt")]


def build_app(studio: Studio) -> Any:
    """The Gradio ``Blocks`` of the app on ``studio``: one tab per application."""
    import gradio as gr

    # Element ids are the endpoint's name and a part (``cinemagraph-run``), for the browser test.
    def outputs(name: str) -> list:
        with gr.Row():
            video = gr.Video(label="clip", autoplay=True, loop=True, elem_id=f"{name}-video")
            sheet = gr.Image(label="contact sheet", type="filepath")
        files = gr.File(label="download", file_count="multiple")
        info = gr.Markdown()
        return [video, sheet, files, info]

    def sampling(kind: str, name: str) -> list:
        defaults = shipped_sampling(kind)  # the sliders start at the shipped model's settings
        with gr.Accordion("sampling", open=False, elem_id=f"{name}-sampling"):
            with gr.Row():
                steps = gr.Slider(
                    1, 100, value=defaults.get("steps", 25), step=1, label="steps", elem_id=f"{name}-steps"
                )
                guidance = gr.Slider(1.0, 15.0, value=defaults["guidance"], step=0.5, label="guidance")
                seed = gr.Number(value=0, precision=0, label="seed", minimum=0)
        return [steps, guidance, seed]

    def runner(build: Callable[..., list[str]]) -> Callable:
        """A Gradio handler: the tab's inputs -> argv (``build``) -> the outputs; bad input
        and cancellation are messages in the page."""

        # Gradio passes the request and a progress tracker into leading positional
        # parameters it finds by their annotation and default.
        def handle(request: gr.Request, progress: gr.Progress = gr.Progress(), *values: Any) -> list:  # noqa: B008
            *inputs, steps, guidance, seed = values
            session = request.session_hash if request is not None else ""
            try:
                sampled = ["--steps", int(steps), "--guidance", float(guidance), "--seed", int(seed)]
                argv = [*build(studio, *inputs), *sampled]
                result = studio.run(argv, session, lambda i, n: progress((i, n), desc="denoising", unit="steps"))
            except (ValueError, OSError, FloatingPointError, Cancelled) as error:
                raise gr.Error(str(error).strip().splitlines()[0]) from None
            info = (f"**seed** {result.seed}\n\n**command line**\n```bash\n{result.command}\n```\n\n"
                    f"**Python**\n```python\n{result.python}\n```")  # fmt: skip
            return [result.video, result.sheet, [result.video, result.sheet], info, result.video]

        return handle

    def frame_of(video: str | None, frame: float) -> Any:
        from .video import read_video

        if video is None:
            return None
        frames = read_video(video)
        return frames[min(int(frame), len(frames) - 1)]

    def add_keyframe(keyframes: dict, frame: float, editor: dict | None) -> tuple[dict, str]:
        try:
            keyframes = {**keyframes, int(frame): painted_mask(editor, "mask")[1]}
        except ValueError as error:
            raise gr.Error(str(error)) from None
        return keyframes, f"keyframes (each mask holds until the next): {', '.join(map(str, sorted(keyframes)))}"

    events = []

    def action(label: str, kind: str, argv: Callable, inputs: list) -> Any:
        """The tab's sampling controls, button and outputs, its inputs wired through
        ``argv``; returns the steps slider."""
        name = argv.__name__.removesuffix("_argv")  # the endpoint's name for API clients
        controls = sampling(kind, name)
        button = gr.Button(label, variant="primary", elem_id=f"{name}-run")
        result = outputs(name)
        events.append(button.click(runner(argv), [*inputs, *controls], [*result, last], api_name=name))
        return controls[0]

    def video_input(label: str) -> Any:
        with gr.Row():
            video = gr.Video(label=label, sources=["upload"])
            gr.Button("use my latest clip").click(lambda path: path, last, video)
        return video

    def mask_editor(label: str, name: str) -> Any:
        brush = gr.Brush(colors=[("#ff3366", 0.55)], color_mode="fixed", default_size=12)  # see-through
        return gr.ImageEditor(label=label, type="numpy", layers=False, brush=brush, elem_id=f"{name}-editor")

    def prompt_box(value: str, name: str) -> Any:
        return gr.Textbox(label="prompt", value=value, elem_id=f"{name}-prompt")

    frames = dict(minimum=8, maximum=64, value=16, step=8, label="frames")
    with gr.Blocks(title="lumiere", analytics_enabled=False) as app:  # offline: nothing is sent anywhere
        gr.Markdown("# lumiere\nLumiere-style space-time U-Net video diffusion, on this machine. "
                    "One generation runs at a time; others wait in the queue.")  # fmt: skip
        last = gr.State(None)  # the path of this session's latest clip, for the editing tabs

        with gr.Tab("text-to-video"):
            prompt = prompt_box("a red circle moving right", "text_to_video")
            with gr.Row():
                count = gr.Slider(**frames)
                upscale = gr.Checkbox(label="upscale (the cascade: then super-resolution)")
                fast = gr.Checkbox(label="fast (the shipped few-step shapes-tiny-fast)", elem_id="text_to_video-fast")
            steps = action("generate", "text-to-video", text_to_video_argv, [prompt, count, upscale, fast])
            # The steps start at the evaluated setting of the model the switch picks.
            fast.change(lambda on: shipped_sampling("fast" if on else "text-to-video")["steps"], fast, steps)
        with gr.Tab("image-to-video"):
            image = gr.Image(label="first frame", type="numpy", image_mode="RGB")
            prompt = prompt_box("a red square moving left", "image_to_video")
            action("animate", "edit", image_to_video_argv, [image, prompt, gr.Slider(**frames)])
        with gr.Tab("inpainting"):
            video = video_input("video")
            frame = gr.Slider(0, 63, value=0, step=1, label="frame shown for painting", elem_id="inpaint-frame")
            editor = mask_editor("paint the region to regenerate", "inpaint")
            with gr.Row():
                add = gr.Button("keep this mask from this frame on (a keyframe)", elem_id="inpaint-keyframe")
                clear = gr.Button("clear the keyframes")
            keyframes = gr.State({})
            listing = gr.Markdown(NO_KEYFRAMES)
            gr.on([video.change, frame.change], frame_of, [video, frame], editor)
            add.click(add_keyframe, [keyframes, frame, editor], [keyframes, listing])
            clear.click(lambda: ({}, NO_KEYFRAMES), None, [keyframes, listing])
            prompt = prompt_box("a red square moving left", "inpaint")
            action("inpaint", "edit", inpaint_argv, [video, editor, prompt, keyframes])
        with gr.Tab("cinemagraph"):
            editor = mask_editor("upload an image, paint the region to animate", "cinemagraph")
            prompt = prompt_box("a red square moving left", "cinemagraph")
            action("animate the region", "edit", cinemagraph_argv, [editor, prompt, gr.Slider(**frames)])
        with gr.Tab("video-to-video"):
            video = video_input("video")
            prompt = prompt_box("a blue circle moving right", "video_to_video")
            strength = gr.Slider(0.0, 1.0, value=0.6, step=0.05, label="strength (0 keeps the video, 1 ignores it)")
            action("edit", "text-to-video", video_to_video_argv, [video, prompt, strength])
        with gr.Tab("stylized"):
            prompt = prompt_box("a red circle moving right", "stylized")
            with gr.Row():
                style = gr.Dropdown(list(STYLE_DIRS), value=next(iter(STYLE_DIRS)), label="style (or a path)",
                                    allow_custom_value=True)  # fmt: skip
                scale = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="style scale")
                count = gr.Slider(**frames)
            action("generate", "text-to-video", stylized_argv, [prompt, style, scale, count])
        with gr.Tab("super-resolution"):
            video = video_input("low-resolution video")
            prompt = prompt_box("a red circle moving right", "upscale")
            action("upscale", "super-resolution", upscale_argv, [video, prompt])

        cancel = gr.Button("cancel my running generation", variant="stop")
        status = gr.Markdown()

        def stop(request: gr.Request) -> str:  # the session hash comes with the request
            stopped = studio.cancel(request.session_hash if request is not None else "")
            return "cancelled: it stops at its next step" if stopped else "nothing of yours is running"

        # Not queued, so it runs while a generation holds the worker; ``cancels`` also drops
        # this session's requests still waiting in the queue.
        cancel.click(stop, None, status, queue=False, cancels=events, api_name="cancel")
    return app.queue(default_concurrency_limit=1)


def launch(studio: Studio, port: int | None = None, host: str = "127.0.0.1", block: bool = True) -> Any:
    """Serve the app on ``host:port`` (default: the first free port from 7860)."""
    app = build_app(studio)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
               allowed_paths=[str(studio.workdir)], inbrowser=False, share=False)  # fmt: skip
    return app
