"""The ``lumiere`` command line: inflate a text-to-image pipeline, generate clips.

Errors are one line on stderr, never a traceback: exit code 2 for bad input (an unknown
option, a missing or damaged folder, an invalid number, an existing output without
``--overwrite``, work that cannot fit in memory), 1 for a failure while working (a write
that fails, NaN during sampling), 130 when interrupted. No command replaces an existing
output unless given ``--overwrite`` (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .assets import STYLE_DIRS
from .data.shapes import BACKGROUNDS, MOTIONS
from .files import atomic_dir, check_output
from .models.space_time_unet import TEMPORAL_OPTIONS, TemporalOptions
from .training.config import add_arguments as add_train_arguments
from .training.config import add_option_flags
from .validation import check_fps, finite_float, seed_int

WINDOW_WEIGHTINGS = ("flat", "pyramid")  # lumiere.pipelines.windows.WEIGHTINGS, without importing torch here
WINDOW_NOISES = ("independent", "shuffled")  # lumiere.pipelines.windows.NOISES

DTYPES = ("float32", "float16", "bfloat16")
SCHEDULERS = ("ddim", "dpmsolver++", "unipc", "euler")  # lumiere.pipelines.schedulers.SCHEDULERS, without torch


class OneLineParser(argparse.ArgumentParser):
    """argparse, but errors are one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
    return path


def _add_overwrite(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} if it exists (default: refuse)")


def _add_autocast(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--autocast", action="store_true",
        help="run a float32 U-Net in bf16 where the CPU has native bf16 kernels (fp16/bf16 on CUDA); "
        "default: the model's dtype",
    )  # fmt: skip


def _add_scheduler(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler", choices=SCHEDULERS, default=None,
        help="sampler, on the model's own noise schedule (default: the model's, DDIM for the shipped ones); "
        "dpmsolver++ and unipc need fewer --steps",
    )  # fmt: skip


def _add_sampling(parser: argparse.ArgumentParser, default_model: str) -> None:
    """The options every generating command shares."""
    command = parser.prog.split()[-1]
    parser.add_argument(
        "--model", type=_existing_dir, default=None, help=f"saved Lumiere pipeline folder (default: {default_model})"
    )
    parser.add_argument("--height", type=int, default=None, help="pixels (default: the model's size)")
    parser.add_argument("--width", type=int, default=None, help="pixels (default: the model's size)")
    parser.add_argument(
        "--steps", type=int, default=None,
        help="denoising steps (default: without --model, the shipped model's evaluated setting, in its model card; "
        "25 with it)",
    )  # fmt: skip
    _add_scheduler(parser)
    parser.add_argument(
        "--guidance", type=finite_float, default=None,
        help="classifier-free guidance scale (default: the shipped model's evaluated setting without --model, "
        "3.0 for shapes-tiny; 7.5 with it)",
    )  # fmt: skip
    parser.add_argument("--negative-prompt", default=None)
    parser.add_argument("--seed", type=seed_int, default=0)
    parser.add_argument("--fps", type=finite_float, default=8)
    parser.add_argument(
        "--out", type=Path, default=Path("clip.mp4" if command == "generate" else f"{command}.mp4"),
        help=".mp4 or .gif; a .png contact sheet is written beside it",
    )  # fmt: skip
    _add_overwrite(parser, "--out and its .png contact sheet")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype the model computes in")
    _add_autocast(parser)
    parser.add_argument(
        "--window-size", type=int, default=None, metavar="N",
        help="denoise over temporal windows of N frames, averaged at every step (MultiDiffusion): clips longer "
        "than the model takes, in the memory of one window (default: the whole clip at once)",
    )  # fmt: skip
    parser.add_argument(
        "--window-stride", type=int, default=None, metavar="N", help="with --window-size: frames between window "
        "starts (default: half the window); the last window is aligned to the clip's end",
    )  # fmt: skip
    parser.add_argument(
        "--window-weighting", choices=WINDOW_WEIGHTINGS, default="flat",
        help="with --window-size: how overlapping predictions are averaged (pyramid: less weight at window edges)",
    )  # fmt: skip
    parser.add_argument(
        "--window-noise", choices=WINDOW_NOISES, default="independent",
        help="with --window-size: the initial noise drawn per frame, or shuffled (FreeNoise: every window starts "
        "from a permutation of the first window's noise)",
    )  # fmt: skip
    parser.add_argument(
        "--no-check-memory", dest="check_memory", action="store_false",
        help="start even when the estimated memory exceeds what the machine has available",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="lumiere", description="Lumiere-style space-time U-Net video diffusion.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    inflate = commands.add_parser("inflate", help="turn a text-to-image pipeline folder into a video pipeline")
    inflate.add_argument("t2i_dir", type=_existing_dir, help="diffusers text-to-image pipeline folder (SD layout)")
    inflate.add_argument("out_dir", type=Path, help="where to save the Lumiere pipeline")
    add_option_flags(inflate, TemporalOptions)
    inflate.add_argument("--dtype", choices=DTYPES, default="float32", help="dtype of the saved weights")
    _add_overwrite(inflate, "a non-empty out_dir (the old files are removed, not merged)")

    generate = commands.add_parser("generate", help="generate a clip from a prompt")
    generate.add_argument("prompt")
    generate.add_argument("--frames", type=int, default=16)
    _add_sampling(generate, "the shipped shapes-tiny model")
    generate.add_argument(
        "--fast", action="store_true",
        help="the shipped few-step model shapes-tiny-fast (shapes-tiny distilled, guidance folded in): "
        "one U-Net pass per step at its evaluated --steps",
    )  # fmt: skip
    generate.add_argument(
        "--upscale", action="store_true",
        help="the cascade: then upscale the clip with a super-resolution model (default: the shipped shapes-ssr)",
    )  # fmt: skip
    generate.add_argument(
        "--upscale-model", type=_existing_dir, default=None, help="with --upscale: super-resolution pipeline folder"
    )

    upscale = commands.add_parser("upscale", help="spatial super-resolution of a clip under a prompt")
    upscale.add_argument("video", type=Path, help="video file (mp4, gif, ...); the output has its frame count")
    upscale.add_argument("prompt")
    _add_sampling(upscale, "the shipped shapes-ssr model")
    for command in (generate, upscale):
        command.add_argument(
            "--noise-level", type=int, default=None,
            help="super-resolution: the input is noised to this level in [0, 1000) before the model reads it "
            "(conditioning augmentation; default: the pipeline's)",
        )  # fmt: skip

    edit = commands.add_parser("edit", help="video-to-video (SDEdit): re-generate a video under a prompt")
    edit.add_argument("video", type=Path, help="video file (mp4, gif, ...); the output has its frame count")
    edit.add_argument("prompt")
    edit.add_argument(
        "--strength", type=finite_float, default=0.8,
        help="in [0, 1]: the share of the steps that run from the noised video (0 keeps it, 1 ignores it)",
    )  # fmt: skip
    _add_sampling(edit, "the shipped shapes-tiny model")
    for command in (generate, edit):
        command.add_argument(
            "--style", default=None,
            help=f"interpolate the spatial weights towards this style: a shipped one ({', '.join(STYLE_DIRS)}), or "
            "a fine-tuned 2D U-Net folder, weights file or LoRA (lumiere.stylize)",
        )  # fmt: skip
        command.add_argument(
            "--style-scale", type=finite_float, default=0.5, help="with --style: in [0, 1], 1 = the style's weights"
        )

    animate = commands.add_parser("animate", help="image-to-video: a clip that starts from an image")
    animate.add_argument("image", type=Path, help="image file (PNG, JPEG, ...)")
    animate.add_argument("prompt")
    animate.add_argument("--frames", type=int, default=16)
    inpaint = commands.add_parser("inpaint", help="regenerate the masked region of a video")
    inpaint.add_argument("video", type=Path, help="video file (mp4, gif, ...)")
    inpaint.add_argument(
        "mask", type=Path, help="image (one mask for every frame) or video (one per frame); white = regenerate"
    )
    inpaint.add_argument("prompt")
    cinemagraph = commands.add_parser("cinemagraph", help="animate the masked region of an image, the rest still")
    cinemagraph.add_argument("image", type=Path, help="image file")
    cinemagraph.add_argument("mask", type=Path, help="image of the image's size; white = animate")
    cinemagraph.add_argument("prompt")
    cinemagraph.add_argument("--frames", type=int, default=16)
    for command in (animate, inpaint, cinemagraph):
        _add_sampling(command, "the shipped shapes-tiny-edit model")
        command.add_argument(
            "--conditioning-guidance", action=argparse.BooleanOptionalAction, default=None,
            help="also guide on the conditioning, the unconditional branch knowing nothing (default: on for "
            "cinemagraph, off for animate and inpaint, as measured best)",
        )  # fmt: skip
        command.add_argument(
            "--conditioning-noise", type=finite_float, default=0.0, help="noise std on the known pixels"
        )
        command.add_argument(
            "--no-paste-known", dest="paste_known", action="store_false",
            help="return the model's own pixels where the input is known (default: the input's)",
        )  # fmt: skip
        command.add_argument("--soft-mask", dest="binarize_mask", action="store_false", help="keep grey mask values")

    app = commands.add_parser("app", help="a local web app for every pipeline (Gradio: pip install 'lumiere[app]')")
    app.add_argument(
        "--model", type=_existing_dir, default=None, help="text-to-video pipeline folder (default: shapes-tiny)"
    )
    app.add_argument(
        "--edit-model", type=_existing_dir, default=None,
        help="conditional pipeline folder for image-to-video, inpainting, cinemagraphs (default: shapes-tiny-edit)",
    )  # fmt: skip
    app.add_argument(
        "--upscale-model", type=_existing_dir, default=None,
        help="super-resolution pipeline folder (default: shapes-ssr)",
    )  # fmt: skip
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default: this machine only)")
    app.add_argument("--port", type=int, default=None, help="default: the first free port from 7860")
    app.add_argument(
        "--workdir", type=Path, default=None, help="folder for inputs and results (default: a new temporary folder)"
    )
    app.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")

    train = commands.add_parser(
        "train", help="train a video (or text-to-image) model; also: accelerate launch -m lumiere.train",
        description="Options come from --config FILE.yaml, overridden by flags; docs/training.md explains each.",
    )  # fmt: skip
    add_train_arguments(train)

    evaluate = commands.add_parser(
        "eval",
        help="score generated shapes-world clips from their pixels (seen/unseen combinations, per-frame baseline)",
    )
    evaluate.add_argument("--model", type=_existing_dir, required=True, help="saved Lumiere pipeline folder")
    evaluate.add_argument("--prompts", type=int, default=64, help="half held-out combinations, half seen in training")
    evaluate.add_argument("--frames", type=int, default=16)
    evaluate.add_argument("--steps", type=int, default=25)
    _add_scheduler(evaluate)
    evaluate.add_argument("--guidance", type=finite_float, default=3.0)
    evaluate.add_argument("--seed", type=seed_int, default=0)
    evaluate.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the per-frame baseline")
    evaluate.add_argument("--out", type=Path, default=Path("eval"), help="folder for eval.json and the clips")
    _add_overwrite(evaluate, "a non-empty --out folder")
    _add_autocast(evaluate)

    make_dataset = commands.add_parser("make-dataset", help="write a captioned training folder (metadata.jsonl, files)")
    make_dataset.add_argument("kind", choices=("shapes",), help="generator: shapes = coloured shapes in motion")
    make_dataset.add_argument("out_dir", type=Path, help="new or empty folder")
    _add_overwrite(make_dataset, "a non-empty out_dir (the old files are removed)")
    make_dataset.add_argument("--clips", type=int, required=True, metavar="N", help="number of clips (or images)")
    make_dataset.add_argument("--frames", type=int, default=16, metavar="F", help="frames per clip")
    make_dataset.add_argument("--size", type=int, default=32, metavar="S", help="square frame side, pixels")
    make_dataset.add_argument("--seed", type=seed_int, default=0)
    make_dataset.add_argument("--fps", type=finite_float, default=8)
    make_dataset.add_argument("--images", action="store_true", help="one still PNG per clip, captioned without motion")
    make_dataset.add_argument(
        "--include-held-out", action="store_true",
        help="also write the (colour, shape, motion) combinations held out for evaluation",
    )  # fmt: skip
    make_dataset.add_argument(
        "--motions", nargs="+", choices=MOTIONS, default=None, metavar="MOTION",
        help='only these motions, e.g. "moving left" "moving up" (default: all of them)',
    )  # fmt: skip
    make_dataset.add_argument(
        "--backgrounds", nargs="+", default=["black"], metavar="NAME",
        help=f"backgrounds drawn per clip: {', '.join(BACKGROUNDS)} (default: black)",
    )  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        if args.command == "inflate":
            return _inflate(args)
        if args.command == "train":
            return _train(args)
        if args.command == "make-dataset":
            return _make_dataset(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "app":
            return _app(args)
        return _generate(args)
    except ValueError as error:  # our input validation: name the value, no traceback
        _fail(parser, args, error, 2)
    except (OSError, FloatingPointError) as error:  # a write that failed, sampling that diverged
        _fail(parser, args, error, 1)
    except KeyboardInterrupt:
        parser.exit(130, f"{parser.prog} {args.command}: interrupted\n")


def _fail(parser: argparse.ArgumentParser, args: argparse.Namespace, error: Exception, code: int) -> NoReturn:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    parser.exit(code, f"{parser.prog} {args.command}: error: {lines[0]}\n")


def resolve_device(name: str | None):
    """The torch device ``--device`` names (default: cuda when present, else cpu); a
    ValueError for a name torch does not know or a device this machine lacks."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name!r}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name!r}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: lumiere runs on cpu, cuda or mps")
    return device


def _quiet_libraries() -> None:
    """Keep the terminal for our output: no loading bars or library notices, only
    warnings that matter and the sampling progress bar."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


def _inflate(args: argparse.Namespace) -> int:
    import torch

    from .pipelines import LumierePipeline

    check_output(args.out_dir, args.overwrite, folder=True)
    temporal_options = {name: getattr(args, name) for name in TEMPORAL_OPTIONS if hasattr(args, name)}
    pipe = LumierePipeline.from_text_to_image(args.t2i_dir, **temporal_options)
    dtype = getattr(torch, args.dtype)
    if dtype != pipe.unet.dtype:
        pipe.to(dtype)
    pipe.save_pretrained(args.out_dir, overwrite=args.overwrite)
    unet = pipe.unet
    print(
        f"saved {args.out_dir}: {sum(p.numel() for p in unet.temporal_parameters()):,} temporal parameters "
        f"added to {sum(p.numel() for p in unet.spatial_parameters()):,} pretrained; "
        f"frames must be a multiple of {unet.temporal_factor}"
    )
    return 0


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed as the command line parses it; bad input is a ValueError carrying
    the one line the command line would print (for callers that must not exit)."""
    parser = build_parser()
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parser.parse_args(argv)
    except SystemExit:
        raise ValueError(errors.getvalue().strip().splitlines()[-1].partition("error: ")[2]) from None


def _from_pretrained(cls: type, folder: Path, dtype: str, device: object) -> object:
    import torch

    return cls.from_pretrained(folder, dtype=getattr(torch, dtype)).to(device)


def generate_from_args(
    args: argparse.Namespace, load: Callable = _from_pretrained, callback: Callable | None = None
) -> tuple[str, str]:
    """``generate`` and the editing commands: load, sample, write the clip and its sheet.

    ``load(cls, folder, dtype, device)`` returns a pipeline (e.g. from a cache);
    ``callback`` is passed to every pipeline call as ``callback_on_step_end``. Returns the
    paths of the clip and its contact sheet."""
    if args.out.suffix.lower() not in (".mp4", ".gif"):
        raise ValueError(f"--out {str(args.out)!r} must end in .mp4 or .gif")
    sheet_path = args.out.with_suffix(".png")
    for path in (args.out, sheet_path):  # before minutes of sampling, not after
        check_output(path, args.overwrite)
    if args.command == "generate":
        _noise_level(args)
        if args.upscale_model is not None and not args.upscale:
            raise ValueError(f"--upscale-model {str(args.upscale_model)!r} needs --upscale")
        if args.fast and args.model is not None:
            raise ValueError(f"--fast is the shipped shapes-tiny-fast; leave it out to use --model {str(args.model)!r}")
    check_fps(args.fps)
    import torch

    from . import pipelines
    from .assets import default_model_dir
    from .pipelines.schedulers import using_scheduler
    from .video import read_image, read_video, save_contact_sheet, save_video

    inputs = {
        "generate": lambda: (pipelines.LumierePipeline, [args.prompt], dict(num_frames=args.frames)),
        "edit": lambda: (pipelines.LumiereVideoToVideoPipeline, [read_video(args.video, "video"), args.prompt],
                         dict(strength=args.strength)),
        "animate": lambda: (pipelines.LumiereImageToVideoPipeline, [read_image(args.image, "image"), args.prompt],
                            dict(num_frames=args.frames)),
        "inpaint": lambda: (pipelines.LumiereInpaintPipeline, [read_video(args.video, "video"),
                            _read_mask(args.mask), args.prompt], {}),
        "cinemagraph": lambda: (pipelines.LumiereCinemagraphPipeline, [read_image(args.image, "image"),
                                read_image(args.mask, "mask", grey=True), args.prompt], dict(num_frames=args.frames)),
        "upscale": lambda: (pipelines.LumiereSuperResolutionPipeline, [read_video(args.video, "video"), args.prompt],
                            _noise_level(args)),
    }  # fmt: skip
    cls, positional, options = inputs[args.command]()
    conditional = args.command in ("animate", "inpaint", "cinemagraph")
    if conditional:
        options.update(conditioning_noise=args.conditioning_noise, paste_known=args.paste_known,
                       binarize_mask=args.binarize_mask)  # fmt: skip
        if args.conditioning_guidance is not None:  # else the pipeline's own default
            options["conditioning_guidance"] = args.conditioning_guidance
        if args.command == "animate":
            del options["binarize_mask"]
    device = resolve_device(args.device)
    kind = model_kind(args)
    model = args.model if args.model is not None else default_model_dir(kind=kind)
    pipe = load(cls, model, args.dtype, device)
    style = contextlib.nullcontext()
    if getattr(args, "style", None) is not None:
        from .stylize import stylize

        style = stylize(pipe, args.style, args.style_scale)  # undone after sampling: ``load`` may share the pipe
    upscaler = None
    if getattr(args, "upscale", False):  # loaded before minutes of sampling, so a bad folder fails first
        upscale_model = args.upscale_model or default_model_dir(kind="super-resolution")
        upscaler = load(pipelines.LumiereSuperResolutionPipeline, upscale_model, args.dtype, device)
    sampling = dict(
        negative_prompt=args.negative_prompt, autocast=args.autocast,
        check_memory=args.check_memory, window_size=args.window_size, window_stride=args.window_stride,
        window_weighting=args.window_weighting, window_noise=args.window_noise, callback_on_step_end=callback,
    )  # fmt: skip
    scheduler = getattr(args, "scheduler", None)
    with style, using_scheduler(pipe, scheduler):
        frames = pipe(
            *positional, **options, **sampling, height=args.height, width=args.width,
            **steps_and_guidance(args, args.model, kind),
            generator=torch.Generator(device="cpu").manual_seed(args.seed),
        ).frames[0]  # fmt: skip
    if upscaler is not None:
        with using_scheduler(upscaler, scheduler):
            frames = upscaler(
                frames, args.prompt, **_noise_level(args), **sampling,
                **steps_and_guidance(args, args.upscale_model, "super-resolution"),
                generator=torch.Generator(device="cpu").manual_seed(args.seed),
            ).frames[0]  # fmt: skip
    video = save_video(frames, args.out, fps=args.fps, overwrite=args.overwrite)
    return video, save_contact_sheet(frames, sheet_path, overwrite=args.overwrite)


def _generate(args: argparse.Namespace) -> int:
    video, sheet = generate_from_args(args)
    print(f"wrote {video} and {sheet}")
    return 0


def model_kind(args: argparse.Namespace) -> str:
    """Which shipped model (a :func:`lumiere.assets.default_model_dir` kind) the parsed
    command samples with when it names no ``--model``."""
    if args.command in ("animate", "inpaint", "cinemagraph"):
        return "edit"
    if args.command == "upscale":
        return "super-resolution"
    return "fast" if getattr(args, "fast", False) else "text-to-video"


def steps_and_guidance(args: argparse.Namespace, model: Path | None, kind: str) -> dict:
    """``num_inference_steps`` and ``guidance_scale`` for a pipeline call: ``--steps`` and
    ``--guidance`` where given, else the evaluated settings of the shipped model of
    ``kind``, else diffusers' usual ones (25 steps, guidance 7.5) for a ``model`` folder."""
    defaults = dict(steps=25, guidance=7.5) if model is not None else shipped_sampling(kind)
    given = dict(steps=args.steps, guidance=args.guidance)
    steps, guidance = (defaults[name] if given[name] is None else given[name] for name in ("steps", "guidance"))
    return dict(num_inference_steps=steps, guidance_scale=guidance)


def shipped_sampling(kind: str) -> dict:
    """The evaluated sampling settings (steps, guidance) of the shipped model of ``kind``."""
    if kind == "super-resolution":
        from .recipes.shapes_ssr import SAMPLING
    elif kind == "fast":
        from .recipes.shapes_fast import SAMPLING
    else:
        from .recipes.shapes_tiny import SAMPLING
    return SAMPLING


def _noise_level(args: argparse.Namespace) -> dict:
    """``--noise-level`` as the super-resolution pipeline's argument; none: its default."""
    if args.noise_level is not None and args.command == "generate" and not args.upscale:
        raise ValueError(f"--noise-level {args.noise_level} needs --upscale (it is the upscaler's input noise)")
    return {} if args.noise_level is None else {"noise_level": args.noise_level}


def _read_mask(path: Path):
    """A mask file: an image (one for all frames) or a video (one per frame), as grey."""
    from .video import read_image, read_video

    if path.suffix.lower() in (".mp4", ".gif", ".webm", ".mov", ".avi", ".mkv"):
        return read_video(path, "mask")[..., 0]
    return read_image(path, "mask", grey=True)


def _app(args: argparse.Namespace) -> int:
    if args.port is not None and not 1 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port; use 1-65535, or leave it out for the first free one")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ValueError("lumiere app needs Gradio: pip install 'lumiere[app]'") from None
    from .app import Studio, launch

    resolve_device(args.device)
    models = {"text-to-video": args.model, "edit": args.edit_model, "super-resolution": args.upscale_model}
    studio = Studio(args.workdir, {kind: folder for kind, folder in models.items() if folder}, args.device)
    print(f"lumiere app: results in {studio.workdir}; Ctrl+C stops it", flush=True)
    launch(studio, args.port, args.host)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .training import train
    from .training.config import config_from_args

    config = config_from_args(args)
    result = train(config)
    if result.is_main_process:
        print(f"trained {result.global_step} steps; pipeline saved in {config.output_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.prompts < 2:
        raise ValueError(f"--prompts {args.prompts} is too few; use at least 2 (one seen, one unseen)")
    import torch

    from .eval import direction_word
    from .eval.shapes import evaluate, markdown_table
    from .pipelines import LumierePipeline

    check_output(args.out, args.overwrite, folder=True)
    pipe = LumierePipeline.from_pretrained(args.model, dtype=torch.float32)  # fp16 weights sample in fp32 on CPU
    with atomic_dir(args.out, args.overwrite) as folder:  # all of a run's results or none
        results = evaluate(pipe, num_prompts=args.prompts, num_frames=args.frames, steps=args.steps,
                           guidance=args.guidance, baseline=args.baseline, seed=args.seed, save_dir=folder,
                           autocast=args.autocast, scheduler=args.scheduler)  # fmt: skip
    print(markdown_table(results))
    if "direction_word" in results:
        rows = [direction_word.DirectionWordRow(**row) for row in results["direction_word"]]
        print("\nDirection-word probe (one-step estimates of noised ground-truth clips):")
        print(direction_word.markdown_table(rows))
    print(f"wrote {args.out / 'eval.json'}")
    return 0


def _make_dataset(args: argparse.Namespace) -> int:
    from .data.shapes import HELD_OUT, triples_with_motions, write_dataset

    write_dataset(
        args.out_dir,
        args.clips,
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        images=args.images,
        fps=args.fps,
        exclude=() if args.include_held_out else HELD_OUT,
        include_only=None if args.motions is None else triples_with_motions(args.motions),
        backgrounds=args.backgrounds,
        overwrite=args.overwrite,
    )
    what = "images" if args.images else f"{args.frames}-frame clips"
    print(f"wrote {args.clips} {args.size}x{args.size} {what} and metadata.jsonl to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
