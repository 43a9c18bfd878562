"""Inflate a local text-to-image pipeline folder into a Lumiere video pipeline.

    python examples/inflate_text_to_image.py path/to/sd-folder path/to/lumiere-folder

The folder is a diffusers text-to-image pipeline in the Stable Diffusion layout (unet,
text_encoder, tokenizer, scheduler, optionally vae). Every pretrained weight is kept and
frozen; the new temporal layers start as the identity and are what training adapts.
"""

import argparse

from lumiere import LumierePipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("t2i_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty out_dir")
    args = parser.parse_args()

    pipe = LumierePipeline.from_text_to_image(args.t2i_dir)
    unet = pipe.unet
    print(f"frames per level for an 80-frame clip: {unet.frames_per_level(80)}")
    print(f"temporal parameters: {sum(p.numel() for p in unet.temporal_parameters()):,} (trainable)")
    print(f"spatial parameters:  {sum(p.numel() for p in unet.spatial_parameters()):,} (frozen)")
    pipe.save_pretrained(args.out_dir, overwrite=args.overwrite)
    print(f"saved {args.out_dir}")


if __name__ == "__main__":
    main()
