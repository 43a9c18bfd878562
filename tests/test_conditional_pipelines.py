"""Image-to-video, inpainting and cinemagraphs: the conditional pipelines end to end on tiny
models (pixel and latent space)."""

import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DiffusionPipeline

from lumiere import (
    LumiereCinemagraphPipeline,
    LumiereImageToVideoPipeline,
    LumiereInpaintPipeline,
    LumierePipeline,
)
from lumiere.testing import make_inflated_pipeline, make_pixel_lumiere_pipeline

FRAMES, SIZE = 4, 16
RUN = dict(num_inference_steps=2, guidance_scale=2.0, output_type="pt")


def _conditional(pipe, seed=0):
    """``pipe`` with a conditioning input whose weights act (as if trained)."""
    unet = pipe.unet.with_conditioning()
    with torch.no_grad():
        unet.conditioning_conv_in.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(seed))
    return LumierePipeline.from_pipe(pipe, unet=unet)


@pytest.fixture(scope="module")
def t2v(tmp_path_factory):
    pipe = _conditional(make_pixel_lumiere_pipeline(tmp_path_factory.mktemp("vocab")))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def i2v(t2v):
    return _quiet(LumiereImageToVideoPipeline.from_pipe(t2v))


@pytest.fixture(scope="module")
def inpaint(t2v):
    return _quiet(LumiereInpaintPipeline.from_pipe(t2v))


@pytest.fixture(scope="module")
def cinemagraph(t2v):
    return _quiet(LumiereCinemagraphPipeline.from_pipe(t2v))


def _image(seed=0, size=SIZE):
    return torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))


def _video(seed=0, frames=FRAMES, size=SIZE):
    return torch.rand(frames, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _box(size=SIZE):
    mask = torch.zeros(size, size)
    mask[4:12, 4:12] = 1
    return mask


def _seed(seed=0):
    return torch.Generator().manual_seed(seed)


def test_pipelines_share_the_modules_of_the_pipeline_they_come_from(t2v, i2v, inpaint, cinemagraph):
    for pipe in (i2v, inpaint, cinemagraph):
        assert pipe.unet is t2v.unet and pipe.text_encoder is t2v.text_encoder


def test_image_to_video_starts_from_the_image_and_repeats_with_the_seed(i2v):
    image = _image()
    frames = i2v(image, "a red circle moves right", FRAMES, generator=_seed(), **RUN).frames
    assert frames.shape == (1, FRAMES, 3, SIZE, SIZE)
    assert (frames[0, 0] - image).abs().max() < 1e-5  # pasted back
    assert (frames[0, 1:] - image).abs().mean() > 1e-3
    again = i2v(image, "a red circle moves right", FRAMES, generator=_seed(), **RUN).frames
    assert torch.equal(frames, again)
    other = i2v(image, "a red circle moves right", FRAMES, generator=_seed(1), **RUN).frames
    assert not torch.equal(frames, other)
    raw = i2v(image, "a red circle moves right", FRAMES, generator=_seed(), paste_known=False, **RUN).frames
    assert torch.equal(raw[0, 1:], frames[0, 1:]) and (raw[0, 0] - image).abs().max() > 1e-3
    # The image reaches the model: another image, another clip after frame 0.
    changed = i2v(_image(5), "a red circle moves right", FRAMES, generator=_seed(), **RUN).frames
    assert (changed[0, 1:] - frames[0, 1:]).abs().max() > 1e-3


def test_image_to_video_takes_pil_numpy_and_tensors_and_crops_to_the_model_size(i2v):
    image = (np.random.default_rng(0).random((24, 40, 3)) * 255).astype(np.uint8)
    as_numpy = i2v(image, "a circle", FRAMES, generator=_seed(), **RUN).frames
    as_pil = i2v(PIL.Image.fromarray(image), "a circle", FRAMES, generator=_seed(), **RUN).frames
    as_tensor = i2v(torch.from_numpy(image).permute(2, 0, 1) / 255, "a circle", FRAMES, generator=_seed(), **RUN)
    assert as_numpy.shape == (1, FRAMES, 3, SIZE, SIZE)
    assert torch.equal(as_numpy, as_pil)
    torch.testing.assert_close(as_tensor.frames, as_numpy, atol=2e-3, rtol=0)
    # Scaled to cover 16x16 (24x40 -> 16x27), then centre-cropped: the middle 16 columns.
    scaled = PIL.Image.fromarray(image).resize((27, 16), PIL.Image.BILINEAR)
    expected = torch.from_numpy(np.array(scaled)[:, 5:21]).permute(2, 0, 1) / 255
    assert (as_numpy[0, 0] - expected).abs().mean() < 0.03


@pytest.mark.parametrize("output_type, kind", [("np", np.ndarray), ("pil", list), ("latent", torch.Tensor)])
def test_output_types(i2v, output_type, kind):
    frames = i2v(_image(), "a circle", FRAMES, generator=_seed(), **{**RUN, "output_type": output_type}).frames
    assert isinstance(frames, kind)
    if output_type == "np":
        assert frames.shape == (1, FRAMES, SIZE, SIZE, 3)
    elif output_type == "pil":
        assert len(frames[0]) == FRAMES and frames[0][0].size == (SIZE, SIZE)
    else:
        assert frames.shape == (1, 3, FRAMES, SIZE, SIZE)  # what the U-Net made: nothing pasted
    tuple_out = i2v(_image(), "a circle", FRAMES, generator=_seed(), return_dict=False, **RUN)
    assert isinstance(tuple_out, tuple) and len(tuple_out) == 1


def test_inpainting_keeps_the_video_outside_the_mask(inpaint):
    video, mask = _video(), _box()
    frames = inpaint(video, mask, "a circle", generator=_seed(), **RUN).frames
    assert frames.shape == (1, FRAMES, 3, SIZE, SIZE)
    outside = mask == 0
    assert (frames[0] - video)[:, :, outside].abs().max() < 1e-5
    assert (frames[0] - video)[:, :, ~outside].abs().mean() > 1e-2
    per_frame = inpaint(video, mask.expand(FRAMES, -1, -1), "a circle", generator=_seed(), **RUN).frames
    assert torch.equal(per_frame, frames)
    # What is hidden does not reach the model: another video inside the box, the same output.
    hidden = video.clone()
    hidden[:, :, 4:12, 4:12] = torch.rand(FRAMES, 3, 8, 8)
    assert torch.equal(inpaint(hidden, mask, "a circle", generator=_seed(), **RUN).frames[..., 4:12, 4:12],
                       frames[..., 4:12, 4:12])  # fmt: skip


def test_inpainting_mask_rules_soft_masks_and_pil(inpaint):
    video, mask = _video(), _box()
    frames = inpaint(video, mask, "a circle", generator=_seed(), **RUN).frames
    near = mask * 0.6 + 0.2  # binarized at 0.5: the same mask
    assert torch.equal(inpaint(video, near, "a circle", generator=_seed(), **RUN).frames, frames)
    grey = PIL.Image.fromarray((mask.numpy() * 255).astype(np.uint8))
    assert torch.equal(inpaint(video, grey, "a circle", generator=_seed(), **RUN).frames, frames)
    soft = inpaint(video, near, "a circle", generator=_seed(), binarize_mask=False, **RUN).frames
    # Soft: each pixel is 0.8 / 0.2 the given video (pasted by its weight).
    assert not torch.equal(soft, frames)
    with pytest.raises(ValueError, match="nothing to regenerate"):
        inpaint(video, torch.zeros(SIZE, SIZE), "a circle", **RUN)
    with pytest.warns(UserWarning, match="text-to-video"):
        inpaint(video, torch.ones(SIZE, SIZE), "a circle", **RUN)


def test_cinemagraph_moves_only_inside_the_region(cinemagraph):
    image, region = _image(), _box()
    frames = cinemagraph(image, region, "a circle", FRAMES, generator=_seed(), **RUN).frames
    assert frames.shape == (1, FRAMES, 3, SIZE, SIZE)
    outside = region == 0
    assert (frames[0] - image)[:, :, outside].abs().max() < 1e-5
    assert (frames[0, 0] - image).abs().max() < 1e-5
    assert (frames[0, 1:] - image)[:, :, ~outside].abs().mean() > 1e-2
    raw = cinemagraph(image, region, "a circle", FRAMES, generator=_seed(), paste_known=False, **RUN).frames
    assert (raw[0] - image)[:, :, outside].abs().max() > 1e-4  # the model's own output, before pasting
    with pytest.raises(ValueError, match="nothing to regenerate"):
        cinemagraph(image, torch.zeros(SIZE, SIZE), "a circle", FRAMES, **RUN)
    with pytest.warns(UserWarning, match="image-to-video"):
        cinemagraph(image, torch.ones(SIZE, SIZE), "a circle", FRAMES, **RUN)


def test_cinemagraphs_guide_on_the_conditioning_by_default_and_image_to_video_and_inpainting_do_not(
    i2v, inpaint, cinemagraph
):
    """The defaults measured best per application (docs/editing.md)."""
    assert i2v.check_options({})["conditioning_guidance"] is False
    assert i2v.check_options({"conditioning_guidance": True})["conditioning_guidance"] is True
    assert cinemagraph.check_options({})["conditioning_guidance"] is True
    assert inpaint.check_options({})["conditioning_guidance"] is False
    default = i2v(_image(), "a circle", FRAMES, generator=_seed(), **RUN).frames
    explicit = i2v(_image(), "a circle", FRAMES, generator=_seed(), conditioning_guidance=False, **RUN).frames
    both = i2v(_image(), "a circle", FRAMES, generator=_seed(), conditioning_guidance=True, **RUN).frames
    assert torch.equal(default, explicit) and (default - both).abs().max() > 1e-4


def test_conditioning_noise_changes_the_output_repeatably(i2v):
    plain = i2v(_image(), "a circle", FRAMES, generator=_seed(), **RUN).frames
    noised = i2v(_image(), "a circle", FRAMES, generator=_seed(), conditioning_noise=0.3, **RUN).frames
    assert (noised - plain).abs().max() > 1e-4
    assert torch.equal(
        noised, i2v(_image(), "a circle", FRAMES, generator=_seed(), conditioning_noise=0.3, **RUN).frames
    )


def test_save_and_load_round_trip_through_diffusion_pipeline(i2v, tmp_path):
    i2v.save_pretrained(tmp_path / "i2v")
    loaded = DiffusionPipeline.from_pretrained(tmp_path / "i2v")
    assert type(loaded) is LumiereImageToVideoPipeline
    assert loaded.unet.config.conditioning_channels == 4
    loaded.set_progress_bar_config(disable=True)
    expected = i2v(_image(), "a circle", FRAMES, generator=_seed(), **RUN).frames
    assert torch.equal(loaded(_image(), "a circle", FRAMES, generator=_seed(), **RUN).frames, expected)
    inpaint = LumiereInpaintPipeline.from_pretrained(tmp_path / "i2v")
    assert type(inpaint) is LumiereInpaintPipeline


def test_latent_space_pipelines_encode_the_conditioning_with_the_vae():
    pipe = _conditional(make_inflated_pipeline("latent", temporal_seed=1))
    assert pipe.unet.config.conditioning_channels == 5
    i2v, inpaint = _quiet(LumiereImageToVideoPipeline.from_pipe(pipe)), _quiet(LumiereInpaintPipeline.from_pipe(pipe))
    size = 8 * pipe.vae_scale_factor
    image = _image(size=size)
    frames = i2v(image, "a circle", FRAMES, generator=_seed(), **RUN).frames
    assert frames.shape == (1, FRAMES, 3, size, size) and (frames[0, 0] - image).abs().max() < 1e-5
    latents = i2v(image, "a circle", FRAMES, generator=_seed(), **{**RUN, "output_type": "latent"}).frames
    assert latents.shape == (1, 4, FRAMES, 8, 8)
    mask = torch.zeros(size, size)
    mask[: size // 2] = 1
    out = inpaint(_video(size=size), mask, "a circle", generator=_seed(), **RUN).frames
    assert (out[0] - _video(size=size))[:, :, size // 2 :].abs().max() < 1e-5


def test_a_text_to_video_unet_is_refused_with_how_to_make_a_conditional_one(tmp_path):
    pipe = LumiereImageToVideoPipeline.from_pipe(make_pixel_lumiere_pipeline(tmp_path))
    with pytest.raises(ValueError, match="conditioning_channels=0.*with_conditioning"):
        pipe(_image(), "a circle", FRAMES, **RUN)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p["i2v"](_image()[None], "a", FRAMES, **RUN), r"image must be a \(H, W, 3\) array"),
        (lambda p: p["i2v"]("image.png", "a", FRAMES, **RUN), "image must be a PIL image"),
        (lambda p: p["i2v"](_image(), "a", 0, **RUN), "num_frames"),
        (lambda p: p["i2v"](_image(), "a", 6, **RUN), "num_frames"),
        (lambda p: p["i2v"](_image() * 3, "a", FRAMES, **RUN), "image"),
        (lambda p: p["i2v"](_image(), "a", FRAMES, conditioning_noise=-1, **RUN), "conditioning_noise"),
        (lambda p: p["i2v"](_image(), "a", FRAMES, paste_known="yes", **RUN), "paste_known must be a bool"),
        (lambda p: p["i2v"](_image(), "a", FRAMES, height=10, **RUN), "height"),
        (lambda p: p["inpaint"](_video(), _box(12), "a", **RUN), "mask is 12x12.*16x16"),
        (lambda p: p["inpaint"](_video(), _box().expand(3, -1, -1), "a", **RUN), "mask has 3 frames"),
        (lambda p: p["inpaint"](_video(), _box() * 2, "a", **RUN), r"mask values must be in \[0, 1\]"),
        (lambda p: p["inpaint"](_video(), _box()[None, None], "a", **RUN), "mask must be"),
        (lambda p: p["inpaint"](_video(), "mask.png", "a", **RUN), "mask must be a PIL image"),
        (lambda p: p["inpaint"](_video()[0], _box(), "a", **RUN), r"video must be a \(F, H, W, 3\) array"),
        (lambda p: p["inpaint"](_video(), _box(), None, **RUN), "prompt"),
        (lambda p: p["cinemagraph"](_image(), _box().expand(2, -1, -1), "a", FRAMES, **RUN), "mask has 2 frames"),
    ],
)
def test_bad_inputs_name_the_argument(i2v, inpaint, cinemagraph, call, match):
    with pytest.raises(ValueError, match=match):
        call({"i2v": i2v, "inpaint": inpaint, "cinemagraph": cinemagraph})


def test_unknown_arguments_are_a_type_error_listing_the_known_ones(i2v):
    with pytest.raises(TypeError, match="unexpected arguments \\['strength'\\]"):
        i2v(_image(), "a", FRAMES, strength=0.5)


def test_no_warning_for_a_mask_that_keeps_some_pixels(inpaint):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        inpaint(_video(), _box(), "a", **RUN)


def test_pipelines_compute_in_the_dtype_they_were_loaded_in(tmp_path):
    pipe = _quiet(LumiereImageToVideoPipeline.from_pipe(_conditional(make_pixel_lumiere_pipeline(tmp_path))))
    pipe.to(torch.bfloat16)
    seen = []
    pipe.unet.register_forward_hook(lambda module, args, output: seen.append(args[0].dtype))
    frames = pipe(_image(), "a circle", FRAMES, generator=_seed(), **RUN).frames
    assert seen and set(seen) == {torch.bfloat16}
    assert (frames[0, 0] - _image()).abs().max() < 1e-5  # the pasted frame is the input, not a bf16 copy
