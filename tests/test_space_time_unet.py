import json
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel, UNet2DModel
from diffusers.models.attention_processor import (
    Attention,
    AttnProcessor,
    AttnProcessor2_0,
    SlicedAttnAddedKVProcessor,
    SlicedAttnProcessor,
)

from lumiere import SpaceTimeUNet
from lumiere.models.space_time_unet import DEFAULT_FRAME_CHUNK_SIZE
from lumiere.models.temporal import (
    TemporalAttentionBlock,
    TemporalConvBlock,
    TemporalDownsample,
    TemporalUpsample,
    grid_positions,
)
from lumiere.testing import SD_UNET, TEXT_DIM, make_inflated_pipeline, make_unet2d, perturb_temporal

# Four levels, so three temporal resamplings: F, F/2, F/4, F/8.
DEEP_UNET = {
    **SD_UNET,
    "block_out_channels": (8, 16, 16, 16),
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
}


def inputs(unet, frames, batch=2, size=None, seed=0):
    generator = torch.Generator().manual_seed(seed)
    size = size or unet.config.sample_size
    channels = unet.config.in_channels
    sample = torch.randn(batch, channels, frames, size, size, generator=generator)
    context = torch.randn(batch, 5, TEXT_DIM, generator=generator)
    timestep = torch.tensor([20, 700][:batch])
    return sample, timestep, context


@pytest.mark.parametrize("kind", ["latent", "pixel", "if"])
@pytest.mark.parametrize("frames", [4, 8, 16])
def test_static_clip_matches_unet2d(kind, frames):
    unet = make_unet2d(kind)
    model = SpaceTimeUNet.from_unet2d(unet)
    image, timestep, context = inputs(unet, 1)
    clip = image.expand(-1, -1, frames, -1, -1)
    with torch.no_grad():
        video_out = model(clip, timestep, context).sample
        image_out = unet(image[:, :, 0], timestep, context).sample
    assert video_out.shape == (2, unet.config.out_channels, frames, *image.shape[-2:])
    assert (video_out - image_out[:, :, None]).abs().max() <= 1e-5


@pytest.mark.parametrize("kind", ["latent", "pixel", "if"])
@pytest.mark.parametrize("chunk_size", [1, 3, 8])
def test_frame_chunking_leaves_the_output_unchanged(kind, chunk_size):
    unet = make_unet2d(kind)
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(unet)).eval()
    assert model.frame_chunk_size == DEFAULT_FRAME_CHUNK_SIZE  # on by default
    sample, timestep, context = inputs(unet, 8)
    with torch.no_grad():
        model.disable_frame_chunking()
        whole = model(sample, timestep, context).sample
        model.enable_frame_chunking(chunk_size)
        chunked = model(sample, timestep, context).sample
    assert (chunked - whole).abs().max() <= 1e-5


def test_frame_chunking_runs_the_spatial_layers_per_chunk_in_inference_only():
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet)
    sample, timestep, context = inputs(unet, 8)  # 2 clips x 8 frames = 16 rows at the finest level
    calls = []
    model.down_blocks[0].resnets[0].register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    model.enable_frame_chunking(5)
    with torch.no_grad():
        model(sample, timestep, context)
    assert calls == [5, 5, 5, 1]
    calls.clear()
    model(sample, timestep, context)  # with grad: backward would keep every chunk anyway
    assert calls == [16]
    with pytest.raises(ValueError, match="chunk_size"):
        model.enable_frame_chunking(0)


def test_only_temporal_parameters_train_and_all_get_gradients():
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {name for name, _ in model.named_temporal_parameters()}
    assert trainable and all(name.startswith("temporal_") for name in trainable)

    sample, timestep, context = inputs(unet, 8)
    model(sample, timestep, context).sample.square().mean().backward()
    unused = [name for name, p in model.named_temporal_parameters() if p.grad is None]
    assert unused == []
    assert all(p.grad is None for p in model.spatial_parameters())
    # Zero-initialized output projections close every branch; they must get signal.
    projections = [p for name, p in model.named_temporal_parameters() if "proj_out.weight" in name]
    assert projections and all(p.grad.abs().sum() > 0 for p in projections)


def test_spatial_layers_keep_2d_names_and_load_a_2d_state_dict():
    unet = make_unet2d("latent")
    model = SpaceTimeUNet(unet2d_config=dict(SD_UNET))
    spatial_names = {name for name in model.state_dict() if not name.startswith("temporal_")}
    assert spatial_names == set(unet.state_dict())

    model.load_unet2d_state_dict(unet.state_dict())
    image, timestep, context = inputs(unet, 1)
    with torch.no_grad():
        expected = unet(image[:, :, 0], timestep, context).sample
        assert torch.equal(model.to_unet2d()(image[:, :, 0], timestep, context).sample, expected)

    with pytest.raises(ValueError, match="unexpected"):
        model.load_unet2d_state_dict({**unet.state_dict(), "extra.weight": torch.zeros(1)})


@pytest.mark.parametrize("frames", [8, 16, 32, 80])
@pytest.mark.parametrize(
    "temporal_downsample, factors",
    [(None, [1, 2, 4, 8]), ((True, False, True), [1, 2, 2, 4]), ((False, False, False), [1, 1, 1, 1])],
)
def test_frames_per_level(frames, temporal_downsample, factors):
    torch.manual_seed(0)
    model = SpaceTimeUNet.from_unet2d(UNet2DConditionModel(**DEEP_UNET), temporal_downsample=temporal_downsample)
    expected = [frames // factor for factor in factors]
    assert model.frames_per_level(frames) == expected

    seen = {}

    def record(name):
        def hook(module, args, output):
            hidden, num_frames = args[:2]
            assert hidden.shape[0] == 1 * num_frames  # batch 1: the folded batch is the frames
            seen.setdefault(name, set()).add(output.shape[0])

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (TemporalConvBlock, TemporalAttentionBlock, TemporalDownsample, TemporalUpsample)):
            module.register_forward_hook(record(name))
    sample = torch.randn(1, 4, frames, 8, 8)
    with torch.no_grad():
        model(sample, 10, torch.randn(1, 3, TEXT_DIM))

    for level in range(4):
        up = 3 - level
        assert seen[f"temporal_down_blocks.{level}.layers.0"] == {expected[level]}
        assert seen[f"temporal_up_blocks.{up}.layers.0"] == {expected[level]}
    assert seen["temporal_mid_block"] == {expected[3]}
    # Attention at the coarsest level only, convolutions elsewhere.
    assert isinstance(model.temporal_down_blocks[3].layers[0], TemporalAttentionBlock)
    assert isinstance(model.temporal_up_blocks[0].layers[0], TemporalAttentionBlock)
    assert all(isinstance(model.temporal_down_blocks[k].layers[0], TemporalConvBlock) for k in range(3))


def test_bad_sizes_name_the_value_and_nearest_valid():
    torch.manual_seed(0)
    model = SpaceTimeUNet.from_unet2d(UNet2DConditionModel(**DEEP_UNET))
    context = torch.randn(1, 3, TEXT_DIM)
    with pytest.raises(ValueError, match=r"num_frames=12 .* multiple of 8; nearest valid: 8 or 16"):
        model(torch.randn(1, 4, 12, 8, 8), 1, context)
    with pytest.raises(ValueError, match=r"num_frames=5 .* nearest valid: 8$"):
        model(torch.randn(1, 4, 5, 8, 8), 1, context)
    with pytest.raises(ValueError, match=r"height=12 .* nearest valid: 8 or 16"):
        model(torch.randn(1, 4, 8, 12, 8), 1, context)
    with pytest.raises(ValueError, match=r"width=4"):
        model(torch.randn(1, 4, 8, 8, 4), 1, context)
    with pytest.raises(ValueError, match=r"temporal_downsample needs one flag per spatial downsampler \(3\)"):
        SpaceTimeUNet(unet2d_config=DEEP_UNET, temporal_downsample=(True,))
    with pytest.raises(ValueError, match="KDownBlock2D"):
        SpaceTimeUNet(unet2d_config={**DEEP_UNET, "down_block_types": ("KDownBlock2D",) * 4})


def test_temporal_layers_mix_frames_once_trained():
    """A change to frame 0 reaches other frames only through the temporal layers."""
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet)
    sample, timestep, context = inputs(unet, 8)
    edited = sample.clone()
    edited[:, :, 0] += 1.0

    def later_frames_change():
        with torch.no_grad():
            before, after = model(sample, timestep, context).sample, model(edited, timestep, context).sample
        return (before[:, :, 4:] - after[:, :, 4:]).abs().max().item()

    # Frames 4..7 share no nearest-neighbour path with frame 0 at init.
    assert later_frames_change() == 0.0
    perturb_temporal(model)
    assert later_frames_change() > 1e-4


def test_resampling_starts_as_nearest_neighbour():
    hidden = torch.randn(2 * 6, 4, 3, 3)  # (B * F, C, H, W) with F = 6
    down, up = TemporalDownsample(4), TemporalUpsample(4)
    video = hidden.view(2, 6, 4, 3, 3)
    assert torch.equal(down(hidden, 6).view(2, 3, 4, 3, 3), video[:, ::2])
    assert torch.equal(up(hidden, 6).view(2, 12, 4, 3, 3), video.repeat_interleave(2, dim=1))


def test_save_load_round_trip_is_exact(tmp_path):
    unet = make_unet2d("if")
    model = SpaceTimeUNet.from_unet2d(unet, temporal_attention_layers=2, temporal_attention_head_dim=8)
    perturb_temporal(model)
    model.save_pretrained(tmp_path / "stunet")
    loaded = SpaceTimeUNet.from_pretrained(tmp_path / "stunet")
    saved, reloaded = (json.loads(m.to_json_string()) for m in (model, loaded))
    reloaded.pop("_name_or_path")
    assert reloaded == saved
    assert loaded.config.temporal_attention_layers == 2
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    sample, timestep, context = inputs(unet, 4)
    with torch.no_grad():  # same weights; kernels may round differently on reloaded storage
        assert torch.allclose(
            model(sample, timestep, context).sample, loaded(sample, timestep, context).sample, atol=1e-5
        )


def test_gradient_checkpointing_gives_same_output_and_gradients():
    unet = make_unet2d("latent")
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(unet))
    sample, timestep, context = inputs(unet, 8)

    def run():
        model.zero_grad()
        out = model(sample, timestep, context).sample
        out.square().mean().backward()
        return out.detach(), [p.grad.clone() for p in model.temporal_parameters()]

    plain_out, plain_grads = run()
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    ckpt_out, ckpt_grads = run()
    assert torch.allclose(plain_out, ckpt_out, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain_grads, ckpt_grads))


def test_attention_processors_cover_temporal_layers_and_can_be_swapped():
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet)
    processors = model.attn_processors
    assert any(name.startswith("temporal_") for name in processors)
    assert all(isinstance(p, AttnProcessor2_0) for p in processors.values())  # SDPA by default
    perturb_temporal(model)
    sample, timestep, context = inputs(unet, 8)
    with torch.no_grad():
        sdpa = model(sample, timestep, context).sample
        model.set_default_attn_processor()
        assert all(isinstance(p, AttnProcessor) for p in model.attn_processors.values())
        classic = model(sample, timestep, context).sample
    assert torch.allclose(sdpa, classic, atol=1e-5)


def test_dtype_and_text_mask_follow_the_2d_unet():
    unet = make_unet2d("latent").to(torch.bfloat16)
    model = SpaceTimeUNet.from_unet2d(unet)
    assert model.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())

    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet)
    image, timestep, context = inputs(unet, 1)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    with torch.no_grad():
        video = model(image.expand(-1, -1, 4, -1, -1), timestep, context, encoder_attention_mask=mask).sample
        single = unet(image[:, :, 0], timestep, context, encoder_attention_mask=mask).sample
    assert (video - single[:, :, None]).abs().max() <= 1e-5


def test_lora_adapters_attach_to_spatial_and_temporal_attention(tmp_path):
    from peft import LoraConfig

    unet = make_unet2d("latent")
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(unet))
    sample, timestep, context = inputs(unet, 4)
    with torch.no_grad():
        plain = model(sample, timestep, context).sample
    model.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    lora = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert any(name.startswith("temporal_") for name in lora)
    assert any(name.startswith("down_blocks.") for name in lora)
    with torch.no_grad():
        # LoRA's up projections start at zero: the adapted model is the plain one ...
        torch.testing.assert_close(model(sample, timestep, context).sample, plain, rtol=0, atol=1e-6)
        # ... until they are trained; then the temporal adapters alone change the output.
        generator = torch.Generator().manual_seed(0)
        for name, parameter in lora.items():
            if name.startswith("temporal_") and "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
        adapted = model(sample, timestep, context).sample
        assert (adapted - plain).abs().max() > 1e-4
        model.disable_adapters()
        torch.testing.assert_close(model(sample, timestep, context).sample, plain)


def test_xformers_switch_reaches_temporal_attention(monkeypatch):
    """`enable_xformers_memory_efficient_attention` (GPU + xformers) is routed to every
    attention module, the temporal ones included; here the switch itself is observed."""
    switched = []
    monkeypatch.setattr(
        Attention, "set_use_memory_efficient_attention_xformers", lambda self, valid, op=None: switched.append(self)
    )
    model = SpaceTimeUNet.from_unet2d(make_unet2d("latent"))
    model.enable_xformers_memory_efficient_attention()
    temporal = [m for n, m in model.named_modules() if n.startswith("temporal_") and isinstance(m, Attention)]
    assert temporal and all(any(m is s for s in switched) for m in temporal)


@pytest.mark.parametrize("kind", ["latent", "if"])
def test_temporal_cross_attention_starts_as_identity_and_reads_each_clips_text(kind):
    unet = make_unet2d(kind)
    model = SpaceTimeUNet.from_unet2d(unet, temporal_cross_attention=True)
    assert model.config.temporal_cross_attention
    image, timestep, context = inputs(unet, 1)
    with torch.no_grad():  # still exactly the 2D model on a static clip
        video_out = model(image.expand(-1, -1, 4, -1, -1), timestep, context).sample
        assert (video_out - unet(image[:, :, 0], timestep, context).sample[:, :, None]).abs().max() <= 1e-5

    seen = []
    cross = {name: m for name, m in model.named_modules() if name.endswith("attn_cross")}
    assert cross and all(name.startswith("temporal_") for name in cross)
    record = lambda module, args, kwargs: seen.append(kwargs["encoder_hidden_states"])  # noqa: E731
    hook = next(iter(cross.values())).register_forward_pre_hook(record, with_kwargs=True)
    sample, timestep, context = inputs(unet, 8)
    model(sample, timestep, context).sample.square().mean().backward()
    hook.remove()
    # One row per clip and spatial position: (B * H * W, L, D); clip 0's rows hold clip 0's text.
    text = seen[0]
    assert text.shape[0] % sample.shape[0] == 0 and text.shape[1] == context.shape[1]
    per_clip = text.shape[0] // sample.shape[0]
    assert torch.equal(text[0], text[per_clip - 1]) and not torch.equal(text[0], text[per_clip])
    # In the graph (zero gradient at init, behind the zero-initialized block projection).
    assert all(p.grad is not None for n, p in model.named_temporal_parameters() if "attn_cross" in n)


def test_grid_positions_give_every_position_its_own_embedding():
    grid = grid_positions(3, 5, 8, torch.device("cpu"), torch.float32)
    assert grid.shape == (15, 8)
    assert torch.cdist(grid, grid).add(torch.eye(15)).min() > 0.1  # all rows distinct
    # Row-major (y, x): x in the first half of the channels, y in the second.
    assert torch.equal(grid[1, 4:], grid[0, 4:]) and torch.equal(grid[5, :4], grid[0, :4])


def test_spatial_positions_let_the_attention_block_tell_positions_apart():
    """On features that are the same at every position (what high noise looks like to the
    block once averaged), only the block with spatial positions can answer differently
    per position; both start as the identity."""
    hidden = torch.randn(2 * 4, 16, 1, 1).expand(-1, -1, 3, 3).contiguous()  # (B * F, C, H, W)
    for spatial, varies in ((False, False), (True, True)):
        torch.manual_seed(0)
        block = TemporalAttentionBlock(16, num_layers=1, head_dim=8, norm_num_groups=4, spatial_positions=spatial)
        with torch.no_grad():
            assert torch.equal(block(hidden, 4), hidden)
            torch.nn.init.normal_(block.proj_out.weight, std=0.1)
            out = block(hidden, 4)
        spread = (out - out[..., :1, :1]).abs().max().item()
        assert (spread > 1e-3) == varies, (spatial, spread)


def test_spatial_positions_option_reaches_the_coarsest_blocks_and_round_trips(tmp_path):
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet, temporal_attention_spatial_positions=True)
    blocks = [m for m in model.modules() if isinstance(m, TemporalAttentionBlock)]
    assert blocks and all(block.spatial_positions for block in blocks)
    model.save_pretrained(tmp_path / "stunet")
    assert SpaceTimeUNet.from_pretrained(tmp_path / "stunet").config.temporal_attention_spatial_positions
    with pytest.raises(ValueError, match="divisible by 4.*channels=18"):
        TemporalAttentionBlock(18, head_dim=6, norm_num_groups=2, spatial_positions=True)


@pytest.fixture(scope="module")
def latent_model():
    """A latent 2D U-Net (for ``inputs``) and its inflation."""
    unet = make_unet2d("latent")
    return unet, SpaceTimeUNet.from_unet2d(unet).eval()


@pytest.mark.parametrize(
    "change, match",
    [
        (
            {"sample": torch.randn(2, 5, 4, 8, 8)},
            r"sample must be \(B, 4, F, H, W\) \(in_channels=4\); got shape \(2, 5, 4, 8, 8\)",
        ),
        ({"sample": torch.randn(2, 4, 8, 8)}, r"sample must be \(B, 4, F, H, W\).*got shape \(2, 4, 8, 8\)"),
        (
            {"sample": torch.zeros(2, 4, 4, 8, 8, dtype=torch.int64)},
            r"sample must be a floating-point tensor; got dtype torch.int64",
        ),
        (
            {"timestep": torch.tensor([1, 2, 3])},
            r"timestep must be a scalar or of shape \(2,\) \(one per clip\); got shape \(3,\)",
        ),
        ({"timestep": torch.tensor([[1], [2]])}, r"timestep must be .*; got shape \(2, 1\)"),
        ({"timestep": [1, 2]}, r"timestep must be a number or a tensor; got list"),
        (
            {"encoder_hidden_states": torch.randn(5, TEXT_DIM)},
            r"encoder_hidden_states must be \(2, L, 32\) \(one text per clip\); got shape \(5, 32\)",
        ),
        ({"encoder_hidden_states": torch.randn(2, 5, TEXT_DIM + 1)}, r"must be \(2, L, 32\).*got shape \(2, 5, 33\)"),
        ({"encoder_hidden_states": torch.randn(1, 5, TEXT_DIM)}, r"must be \(2, L, 32\).*got shape \(1, 5, 32\)"),
        ({"encoder_hidden_states": torch.randn(3, 5, TEXT_DIM)}, r"must be \(2, L, 32\).*got shape \(3, 5, 32\)"),
        (
            {"encoder_attention_mask": torch.ones(1, 5)},
            r"encoder_attention_mask must be \(2, 5\) \(one flag per text token\); got shape \(1, 5\)",
        ),
    ],
    ids=[
        "channels",
        "sample-rank",
        "integer-sample",
        "timestep-length",
        "timestep-rank",
        "timestep-list",
        "context-rank",
        "context-width",
        "context-batch-1",
        "context-batch-3",
        "mask-batch",
    ],
)
def test_bad_forward_inputs_name_the_argument_and_the_expected_shape(latent_model, change, match):
    unet, model = latent_model
    sample, timestep, context = inputs(unet, 4)
    arguments = {"sample": sample, "timestep": timestep, "encoder_hidden_states": context, **change}
    with pytest.raises(ValueError, match=match):
        model(**arguments)


def test_timestep_broadcasts_from_a_scalar_or_one_element(latent_model):
    unet, model = latent_model
    sample, _, context = inputs(unet, 4)
    with torch.no_grad():
        per_clip = model(sample, torch.tensor([20, 20]), context).sample
        for timestep in (20, 20.0, torch.tensor(20), torch.tensor([20])):
            torch.testing.assert_close(model(sample, timestep, context).sample, per_clip, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "given, match",
    [
        ("unet2d_model", r"takes a UNet2DConditionModel \(a text-to-image U-Net\); got a UNet2DModel"),
        ("space_time_unet", r"got a SpaceTimeUNet, which is already inflated"),
        ("dict", r"takes a UNet2DConditionModel .*; got a dict"),
        ("str", r"not a path; got 'some/model'\. Load it first: UNet2DConditionModel\.from_pretrained"),
        ("path", r"not a path; got 'some/model'"),
    ],
)
def test_from_unet2d_of_something_else_says_what_it_takes(latent_model, given, match):
    values = {
        "unet2d_model": lambda: UNet2DModel(
            block_out_channels=(8, 8), norm_num_groups=8, layers_per_block=1, sample_size=8,
            down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
        ),
        "space_time_unet": lambda: latent_model[1],
        "dict": lambda: dict(SD_UNET),
        "str": lambda: "some/model",
        "path": lambda: Path("some/model"),
    }  # fmt: skip
    with pytest.raises(ValueError, match=match):
        SpaceTimeUNet.from_unet2d(values[given]())


def _spatial_processors(model):
    return {name: p for name, p in model.attn_processors.items() if not name.startswith("temporal_")}


def _spatial_heads(model):
    """Heads of each attention layer of the 2D U-Net, by processor name."""
    return {
        f"{name}.processor": module.heads
        for name, module in model.named_modules()
        if isinstance(module, Attention) and not name.startswith("temporal_")
    }


def test_pipeline_attention_slicing_slices_the_spatial_attention_exactly():
    pipe = make_inflated_pipeline("latent", temporal_seed=1)
    unet = pipe.unet
    defaults = {name: type(p) for name, p in unet.attn_processors.items()}
    sample, timestep, context = inputs(make_unet2d("latent"), 8)
    with torch.no_grad():
        plain = unet(sample, timestep, context).sample
        pipe.enable_attention_slicing()  # "auto": half of each layer's heads
        spatial = _spatial_processors(unet)
        assert spatial and all(isinstance(p, SlicedAttnProcessor) for p in spatial.values())
        heads = _spatial_heads(unet)
        assert {name: p.slice_size for name, p in spatial.items()} == {name: n // 2 for name, n in heads.items()}
        # The temporal attention stays on SDPA.
        temporal = {name: type(p) for name, p in unet.attn_processors.items() if name.startswith("temporal_")}
        assert temporal and temporal == {name: defaults[name] for name in temporal}
        torch.testing.assert_close(unet(sample, timestep, context).sample, plain, rtol=0, atol=1e-5)
        pipe.enable_attention_slicing("max")
        assert all(p.slice_size == 1 for p in _spatial_processors(unet).values())
        torch.testing.assert_close(unet(sample, timestep, context).sample, plain, rtol=0, atol=1e-5)
        pipe.disable_attention_slicing()
    assert {name: type(p) for name, p in unet.attn_processors.items()} == defaults


def test_attention_slicing_of_added_kv_layers_and_bad_slice_sizes():
    unet = make_unet2d("if")
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(unet))
    defaults = {name: type(p) for name, p in model.attn_processors.items()}
    sample, timestep, context = inputs(unet, 4)
    with torch.no_grad():
        plain = model(sample, timestep, context).sample
        model.set_attention_slice(2)
        spatial = _spatial_processors(model)
        assert spatial and all(
            isinstance(p, SlicedAttnAddedKVProcessor) and p.slice_size == 2 for p in spatial.values()
        )
        torch.testing.assert_close(model(sample, timestep, context).sample, plain, rtol=0, atol=1e-5)
    model.set_attention_slice(None)
    assert {name: type(p) for name, p in model.attn_processors.items()} == defaults
    fewest = min(_spatial_heads(model).values())
    for bad in (0, fewest + 1, "half", 2.0, True):
        with pytest.raises(ValueError, match=rf"slice_size must be 'auto', 'max', None or an int in \[1, {fewest}\]"):
            model.set_attention_slice(bad)
