"""Lumiere's one conditioning mechanism: the conditional SpaceTimeUNet (a zero input on
<C, M> added to conv_in), the training masks, and conditional training."""

import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from lumiere import SpaceTimeUNet
from lumiere.conditioning import (
    DEFAULT_MASK_MIX,
    MASK_KINDS,
    conditioning_input,
    downsample_mask,
    drift_known_noise,
    known_mask,
    parse_mask_mix,
    sample_known_masks,
)
from lumiere.data.shapes import write_dataset
from lumiere.testing import TEXT_DIM, make_pixel_t2i_pipeline, make_unet2d, perturb_temporal
from lumiere.training import TrainConfig, train

LORA = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)


def _inputs(channels, frames=4, size=16, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, channels, frames, size, size, generator=generator)
    context = torch.randn(batch, 5, TEXT_DIM, generator=generator)
    return sample, torch.tensor([20, 700][:batch]), context


def _conditioning(clip, seed):
    generator = torch.Generator().manual_seed(seed)
    known = (torch.rand(clip.shape[0], 1, *clip.shape[2:], generator=generator) > 0.5).float()
    return conditioning_input(torch.randn(clip.shape, generator=generator) * 3, known)


@pytest.mark.parametrize("kind", ["latent", "pixel"])
def test_zero_conditioning_input_leaves_the_model_unchanged_whatever_c_and_m_are(kind):
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d(kind)))
    conditional = model.with_conditioning()
    assert conditional.config.conditioning_channels == model.conv_in.in_channels + 1
    clip, timestep, context = _inputs(model.conv_in.in_channels)
    with torch.no_grad():
        plain = model(clip, timestep, context).sample
        for seed in range(3):
            given = conditional(torch.cat([clip, _conditioning(clip, seed)], 1), timestep, context).sample
            assert (given - plain).abs().max() <= 1e-5
        # Without the conditioning channels the input is zero: nothing known.
        assert (conditional(clip, timestep, context).sample - plain).abs().max() <= 1e-5
        # Once trained, the input acts.
        torch.nn.init.normal_(conditional.conditioning_conv_in.weight, std=0.1)
        changed = conditional(torch.cat([clip, _conditioning(clip, 0)], 1), timestep, context).sample
    assert (changed - plain).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["latent", "pixel"])
def test_decoder_input_starts_at_zero_keeps_the_weights_and_then_acts(kind):
    conditional = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d(kind))).with_conditioning(init="copy")
    torch.nn.init.normal_(conditional.conditioning_conv_in.weight, std=0.1)  # a trained conditional model
    widened = conditional.with_conditioning(decoder_input=True)
    assert widened.config.conditioning_decoder_input
    state = conditional.state_dict()
    assert all(torch.equal(widened.state_dict()[name], value) for name, value in state.items())
    assert [name for name in widened.state_dict() if name not in state] == ["conditioning_conv_decoder.weight"]
    clip, timestep, context = _inputs(conditional.conv_in.in_channels)
    sample = torch.cat([clip, _conditioning(clip, 0)], 1)
    with torch.no_grad():
        before = conditional(sample, timestep, context).sample
        assert (widened(sample, timestep, context).sample - before).abs().max() <= 1e-5
        torch.nn.init.normal_(widened.conditioning_conv_decoder.weight, std=0.1)
        assert (widened(sample, timestep, context).sample - before).abs().max() > 1e-3
        # Nothing known (no conditioning channels): the decoder input adds nothing.
        assert (
            widened(clip, timestep, context).sample - conditional(clip, timestep, context).sample
        ).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="already has conditioning_channels"):
        widened.with_conditioning(decoder_input=True)
    with pytest.raises(ValueError, match="needs conditioning_channels"):
        SpaceTimeUNet(make_unet2d(kind).config, conditioning_decoder_input=True)


def test_conditional_model_keeps_2d_names_loads_a_2d_state_dict_and_a_2d_lora(tmp_path):
    unet = make_unet2d("latent")
    model = SpaceTimeUNet.from_unet2d(unet).with_conditioning()
    added = {name for name in model.state_dict() if name.startswith("conditioning_")}
    assert added == {"conditioning_conv_in.weight"}
    assert model.conditioning_conv_in.weight.shape[1] == model.config.conditioning_channels
    assert [p.shape for p in model.conditioning_parameters()] == [model.conditioning_conv_in.weight.shape]
    model.load_unet2d_state_dict(unet.state_dict())  # strict over the 2D keys

    # A LoRA trained on the text-to-image U-Net maps onto the conditional video U-Net.
    unet.add_adapter(LORA)
    model.add_adapter(LORA)
    lora = get_peft_model_state_dict(unet)
    result = set_peft_model_state_dict(model, lora)
    assert not result.unexpected_keys
    image, timestep, context = _inputs(4, frames=1)
    clip = image.expand(-1, -1, 4, -1, -1)
    with torch.no_grad():
        video = model(torch.cat([clip, _conditioning(clip, 1)], 1), timestep, context).sample
        single = unet(image[:, :, 0], timestep, context).sample
    assert (video - single[:, :, None]).abs().max() <= 1e-5

    # Saved and loaded, the conditional model is the same.
    model.disable_adapters()
    conditional = SpaceTimeUNet.from_unet2d(make_unet2d("latent")).with_conditioning()
    torch.nn.init.normal_(conditional.conditioning_conv_in.weight, std=0.1)
    conditional.save_pretrained(tmp_path / "unet")
    loaded = SpaceTimeUNet.from_pretrained(tmp_path / "unet")
    assert loaded.config.conditioning_channels == 5
    sample = torch.cat([clip, _conditioning(clip, 2)], 1)
    with torch.no_grad():
        assert torch.equal(loaded(sample, timestep, context).sample, conditional(sample, timestep, context).sample)


def test_with_conditioning_keeps_weights_and_what_trains_and_refuses_twice():
    model = SpaceTimeUNet.from_unet2d(make_unet2d("pixel"))
    model.freeze_spatial_layers()
    conditional = model.with_conditioning()
    after = conditional.state_dict()
    assert set(after) == set(model.state_dict()) | {"conditioning_conv_in.weight"}
    for name, before in model.state_dict().items():
        assert torch.equal(before, after[name]), name
    trainable = {name for name, p in conditional.named_parameters() if p.requires_grad}
    assert "conditioning_conv_in.weight" in trainable
    assert not any(name.startswith("down_blocks.") for name in trainable)
    with pytest.raises(ValueError, match="already has conditioning_channels=4"):
        conditional.with_conditioning()
    with pytest.raises(ValueError, match="conditioning_channels"):
        model.with_conditioning(0)
    clip, timestep, context = _inputs(3)
    with pytest.raises(ValueError, match="channels"):
        conditional(torch.cat([clip, clip], 1), timestep, context)


@pytest.mark.parametrize("kind", ["latent", "pixel"])
def test_copy_init_reads_the_known_values_as_added_to_the_sample(kind):
    model = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d(kind)))
    conditional = model.with_conditioning(init="copy")
    clip, timestep, context = _inputs(model.conv_in.in_channels)
    given = _conditioning(clip, 0)
    masked = given[:, :-1]
    with torch.no_grad():
        read = conditional(torch.cat([clip, given], 1), timestep, context).sample
        added = model(clip + masked, timestep, context).sample
        nothing = conditional(torch.cat([clip, torch.zeros_like(given)], 1), timestep, context).sample
        plain = model(clip, timestep, context).sample
    assert (read - added).abs().max() <= 1e-4
    assert (nothing - plain).abs().max() <= 1e-5  # nothing known: the unconditional model
    assert conditional.conditioning_conv_in.weight[:, -1].eq(0).all()  # the mask channel starts at zero
    with pytest.raises(ValueError, match="init='ones' is not a conditioning init; choose one of zero, copy"):
        model.with_conditioning(init="ones")


def test_each_mask_kind_knows_what_it_says():
    generator = torch.Generator().manual_seed(0)
    frames, size = 8, 16
    masks = {kind: known_mask(kind, frames, size, size, generator) for kind in MASK_KINDS}
    assert all(mask.shape == (1, frames, size, size) for mask in masks.values())
    assert masks["none"].sum() == 0
    assert masks["first_frame"][:, 0].min() == 1 and masks["first_frame"][:, 1:].sum() == 0
    known_frames = masks["first_frames"].amax(dim=(0, 2, 3))
    count = int(known_frames.sum())
    assert 1 <= count <= frames // 2 and known_frames[:count].min() == 1
    box = 1 - masks["box"]
    assert 0 < box.sum() < box.numel()
    frames_hidden = box.amax(dim=(0, 2, 3)).nonzero().flatten()
    assert (frames_hidden.diff() == 1).all()  # one span of frames, one rectangle on each
    rows, cols = box[0, frames_hidden[0]].nonzero().unbind(1)
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert box[0, frames_hidden[0]].sum() == area
    cinemagraph = masks["cinemagraph"]
    assert cinemagraph[:, 0].min() == 1
    assert all(torch.equal(cinemagraph[:, 1], cinemagraph[:, f]) for f in range(2, frames))
    assert 0 < (1 - cinemagraph[:, 1]).sum() < size * size
    with pytest.raises(ValueError, match="kind='bad'"):
        known_mask("bad", frames, size, size, generator)


def test_mask_sampler_follows_the_mix_and_repeats_with_the_seed():
    mix = parse_mask_mix(DEFAULT_MASK_MIX)
    assert set(mix) == set(MASK_KINDS) and abs(sum(mix.values()) - 1) < 1e-9

    def draw(seed):
        return sample_known_masks(400, 4, 8, 8, mix, torch.Generator().manual_seed(seed))

    (masks, kinds), (again, kinds_again), (_, other) = draw(0), draw(0), draw(1)
    assert masks.shape == (400, 1, 4, 8, 8)
    assert torch.equal(masks, again) and kinds == kinds_again and kinds != other
    for kind, weight in mix.items():
        assert abs(kinds.count(kind) / 400 - weight) < 0.08, kind
    only = sample_known_masks(10, 4, 8, 8, parse_mask_mix(["box:1", "none:0"]), torch.Generator())[1]
    assert set(only) == {"box"}


@pytest.mark.parametrize(
    "mix, match",
    [
        (["bad:1"], "unknown kind"),
        (["box:-1"], "weight of box"),
        (["box:0"], "no positive"),
        (["box:x"], "box:x"),
        ([], "no positive"),
    ],
)
def test_bad_mask_mix_is_an_error_naming_the_entry(mix, match):
    with pytest.raises(ValueError, match=match):
        parse_mask_mix(mix)


def test_conditioning_input_masks_the_clip_and_noises_only_known_values():
    clip = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    known = torch.zeros(2, 1, 4, 8, 8)
    known[:, :, 0] = 1
    plain = conditioning_input(clip, known)
    assert plain.shape == (2, 4, 4, 8, 8)
    assert torch.equal(plain[:, :3, 0], clip[:, :, 0]) and plain[:, :3, 1:].abs().sum() == 0
    assert torch.equal(plain[:, 3:], known)
    noisy = conditioning_input(clip, known, torch.tensor([0.0, 0.5]), torch.Generator().manual_seed(1))
    assert torch.equal(noisy[0], plain[0])
    assert (noisy[1, :3, 0] - clip[1, :, 0]).std() == pytest.approx(0.5, rel=0.2)
    assert noisy[1, :3, 1:].abs().sum() == 0


def test_drifted_noise_carries_a_shifted_copy_on_known_pixels_of_the_chosen_share():
    clean, noise = torch.randn(2, 64, 3, 4, 8, 8).unbind(0)
    known = torch.zeros(64, 1, 4, 8, 8)
    known[:, :, 0] = 1
    drifted = drift_known_noise(clean, noise, known, 0.5, torch.Generator().manual_seed(0))
    added = drifted - noise
    assert added[:, :, 1:].eq(0).all(), "unknown pixels keep their noise"
    changed = added.flatten(1).abs().amax(1) > 0
    assert 16 <= int(changed.sum()) <= 48, "about half of the clips drift"
    for index in torch.nonzero(changed).flatten().tolist():
        # the added drift is s * (the clip shifted by at most 2 px, not 0) - the clip, s in (0, 1]
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                step = torch.roll(clean[index], (dy, dx), (-2, -1)) - clean[index]
                scale = (added[index] * step).sum() / (step * step * known[index]).sum()
                if 0 < scale <= 1 and torch.allclose(added[index], scale * step * known[index], atol=1e-5):
                    matches.append((dy, dx))
        assert matches and (0, 0) not in matches, f"clip {index}: not a scaled shift ({matches})"
    again = drift_known_noise(clean, noise, known, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(again, drifted)
    assert drift_known_noise(clean, noise, known, 0.0, torch.Generator()) is noise


def test_downsampled_mask_knows_a_latent_only_where_all_its_pixels_are_known():
    known = torch.ones(1, 1, 2, 8, 8)
    known[..., 3, 5] = 0
    small = downsample_mask(known, (4, 4))
    assert small.shape == (1, 1, 2, 4, 4)
    assert small[..., 1, 2].eq(0).all() and small.sum() == 2 * 15


def test_conditional_training_lowers_the_loss_and_saves_a_conditional_model(tmp_path):
    make_pixel_t2i_pipeline().save_pretrained(tmp_path / "t2i")
    write_dataset(tmp_path / "clips", 8, num_frames=4, size=16, seed=0)
    config = TrainConfig(
        pretrained=str(tmp_path / "t2i"), train_data=str(tmp_path / "clips"), output_dir=str(tmp_path / "run"),
        num_frames=4, resolution=16, max_train_steps=12, learning_rate=3e-3, lr_warmup_steps=0,
        checkpointing_steps=1000, report_to="none", seed=0, train_spatial=True, prediction_type="epsilon",
        conditioning=True, mask_mix=("first_frame:1", "box:1"), conditioning_noise=0.1, known_loss_weight=4.0,
        known_drift=0.5,
    )  # fmt: skip
    losses = train(config).losses
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.6 * first, f"mean loss of the first 4 steps {first:.3f}, of the last 4 {last:.3f}"
    unet = SpaceTimeUNet.from_pretrained(tmp_path / "run" / "unet")
    assert unet.config.conditioning_channels == 4
    assert unet.conditioning_conv_in.weight.abs().max() > 0


def test_conditioning_learning_rate_puts_the_conditioning_convs_in_a_group_of_their_own():
    from lumiere.training.trainer import _parameter_groups

    unet = SpaceTimeUNet.from_unet2d(make_unet2d("pixel")).with_conditioning(decoder_input=True)
    trainable = list(unet.parameters())
    config = TrainConfig(conditioning=True, learning_rate=1e-4)
    assert _parameter_groups(unet, trainable, config) == [{"params": trainable}]
    rest, own = _parameter_groups(unet, trainable, TrainConfig(conditioning=True, conditioning_learning_rate=1e-3))
    assert "lr" not in rest and own["lr"] == 1e-3
    assert [id(p) for p in own["params"]] == [id(p) for p in unet.conditioning_parameters()]
    assert len(rest["params"]) + len(own["params"]) == len(trainable)
    # No conditioning weight among the trainable ones: one group.
    temporal = list(unet.temporal_parameters())
    groups = _parameter_groups(unet, temporal, TrainConfig(conditioning=True, conditioning_learning_rate=1e-3))
    assert groups == [{"params": temporal}]
