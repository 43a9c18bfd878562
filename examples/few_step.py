"""Few-step sampling with the shipped shapes-tiny-fast: shapes-tiny distilled, beside shapes-tiny itself.

python examples/few_step.py            # a red square moving left, at each model's evaluated setting
python examples/few_step.py --prompt "a blue star moving up" --reference-steps 50

Rows of the contact sheet: shapes-tiny at its evaluated setting (DDIM, two passes a step
for classifier-free guidance), then shapes-tiny-fast (one pass a step, the guidance scale
an input of its U-Net), from the same noise. The seconds of each are printed.
"""

import time

from _editing import load, parser, write

from lumiere import LumierePipeline
from lumiere.assets import default_model_dir
from lumiere.recipes.shapes_fast import SAMPLING
from lumiere.recipes.shapes_tiny import SAMPLING as REFERENCE_SAMPLING


def main() -> None:
    p = parser(__doc__.splitlines()[0], "few_step.mp4", edit=False, model="shapes-tiny-fast", sampling=SAMPLING)
    p.add_argument("--reference-steps", type=int, default=REFERENCE_SAMPLING["steps"], help="shapes-tiny's steps")
    args = p.parse_args()
    pipe, settings = load(LumierePipeline, args, kind="fast")
    reference = LumierePipeline.from_pretrained(default_model_dir(), dtype=pipe.dtype).to(pipe.device)
    clips, seconds = [], []
    for model, steps, guidance in ((reference, args.reference_steps, REFERENCE_SAMPLING["guidance"]),
                                   (pipe, args.steps, args.guidance)):  # fmt: skip
        settings["generator"].manual_seed(args.seed)  # both from the same noise
        start = time.perf_counter()
        options = dict(settings, num_inference_steps=steps, guidance_scale=guidance)
        clips.append(model(args.prompt, num_frames=16, **options).frames[0])
        seconds.append(time.perf_counter() - start)
    print(f"shapes-tiny, {args.reference_steps} steps: {seconds[0]:.2f} s; "
          f"shapes-tiny-fast, {args.steps} steps: {seconds[1]:.2f} s")  # fmt: skip
    names = f"shapes-tiny {args.reference_steps} steps, shapes-tiny-fast {args.steps} steps"
    write(args, clips[1], clips[:1], names)


if __name__ == "__main__":
    main()
