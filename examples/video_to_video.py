"""Video-to-video (SDEdit) with the shipped shapes-tiny: a clip re-generated under a new prompt.

python examples/video_to_video.py         # a red square moving left, made blue
python examples/video_to_video.py --video clip.mp4 --prompt "a green star moving left" --strength 0.5
"""

from _editing import default_input, load, parser, write

from lumiere import LumiereVideoToVideoPipeline
from lumiere.video import read_video


def main() -> None:
    p = parser(__doc__.splitlines()[0], "video_to_video.mp4", prompt="a blue square moving left", edit=False)
    p.add_argument("--video", default=None, help="video file (default: a shapes-world clip of a red square)")
    p.add_argument("--strength", type=float, default=0.6, help="share of the steps run from the noised video")
    args = p.parse_args()
    video = read_video(args.video) if args.video else default_input().clip
    pipe, settings = load(LumiereVideoToVideoPipeline, args, edit=False)
    frames = pipe(video, args.prompt, strength=args.strength, **settings).frames[0]
    write(args, frames, [video], "input, output")


if __name__ == "__main__":
    main()
