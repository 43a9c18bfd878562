"""Stylization by spatial-weight interpolation: exact at the ends, temporal weights never
touched, reversible, every route to a style (model, folder, state dict, LoRA)."""

import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

from lumiere import LumierePipeline, SpaceTimeUNet
from lumiere.models.space_time_unet import ADDED_PREFIXES
from lumiere.stylize import stylize
from lumiere.testing import make_pixel_lumiere_pipeline, make_unet2d, perturb_temporal

LORA = LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False)
# Its scale alpha / r is 2: read from a file's metadata (a bare state dict would be taken as alpha = r).
LORA_ALPHA_8 = LoraConfig(r=4, lora_alpha=8, target_modules=["to_q", "to_v"], init_lora_weights=False)


@pytest.fixture
def unet():
    return perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d("pixel")))


@pytest.fixture
def style():
    """A 'fine-tuned' copy of the 2D U-Net: every weight moved."""
    style = make_unet2d("pixel")
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for parameter in style.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return style


def _state(module):
    return {name: value.clone() for name, value in module.state_dict().items()}


def _spatial(state):
    return {name: value for name, value in state.items() if not name.startswith(ADDED_PREFIXES)}


def _temporal(state):
    return {name: value for name, value in state.items() if name.startswith(ADDED_PREFIXES)}


def _equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_scale_zero_changes_nothing_and_one_puts_in_the_style_weights(unet, style):
    before = _state(unet)
    stylize(unet, style, 0.0)
    assert _equal(_state(unet), before)
    stylize(unet, style, 1.0)
    after = _state(unet)
    assert _equal(_spatial(after), style.state_dict())
    assert _equal(_temporal(after), _temporal(before))


def test_in_between_the_spatial_weights_are_interpolated_and_restore_is_exact(unet, style):
    before = _state(unet)
    with stylize(unet, style, 0.25) as handle:
        after = _state(unet)
        for name, value in style.state_dict().items():
            assert torch.allclose(after[name], 0.25 * value + 0.75 * before[name], atol=1e-6), name
        assert _equal(_temporal(after), _temporal(before))
        assert handle.originals  # what it changed
    assert _equal(_state(unet), before)
    handle.restore()  # twice is harmless
    assert _equal(_state(unet), before)


def test_a_folder_a_pipeline_folder_a_file_and_a_state_dict_are_the_same_style(unet, style, tmp_path):
    style.save_pretrained(tmp_path / "model")
    style.save_pretrained(tmp_path / "pipe" / "unet")
    torch.save(style.state_dict(), tmp_path / "weights.bin")
    results = []
    for route in (style, style.state_dict(), tmp_path / "model", str(tmp_path / "pipe"), tmp_path / "weights.bin"):
        with stylize(unet, route, 0.5):
            results.append(_state(unet))
    assert all(_equal(result, results[0]) for result in results[1:])


def test_a_lora_interpolates_as_the_lora_merged_at_that_scale(unet, tmp_path):
    base = unet.to_unet2d()
    base.add_adapter(LORA)
    lora = get_peft_model_state_dict(base)
    base.save_lora_adapter(tmp_path / "lora")

    expected = perturb_temporal(SpaceTimeUNet.from_unet2d(make_unet2d("pixel")))
    expected_2d = expected.to_unet2d()
    expected_2d.add_adapter(LORA)
    set_peft_model_state_dict(expected_2d, lora)
    expected_2d.fuse_lora(lora_scale=0.4)
    expected_2d.unload_lora()
    before = _state(unet)
    for route in (lora, tmp_path / "lora"):
        with stylize(unet, route, 0.4):
            after = _state(unet)
            for name, value in expected_2d.state_dict().items():
                assert torch.allclose(after[name], value, atol=1e-6), name
            assert _equal(_temporal(after), _temporal(before))
            changed = [name for name in _spatial(after) if not torch.equal(after[name], before[name])]
            assert changed and all(name.rsplit(".", 2)[-2] in ("to_q", "to_k", "to_v", "0") for name in changed)


def test_a_lora_file_brings_its_own_alpha(unet, tmp_path):
    base = unet.to_unet2d()
    base.add_adapter(LORA_ALPHA_8)
    base.save_lora_adapter(tmp_path / "lora")
    base.fuse_lora(lora_scale=0.5)
    base.unload_lora()
    with stylize(unet, tmp_path / "lora" / "pytorch_lora_weights.safetensors", 0.5):
        after = _state(unet)
    for name, value in base.state_dict().items():
        assert torch.allclose(after[name], value, atol=1e-6), name


def test_a_stylized_pipeline_saves_the_interpolated_weights(tmp_path):
    pipe = make_pixel_lumiere_pipeline(tmp_path)
    style = make_unet2d("pixel", seed=3)  # any 2D U-Net of the same config is a style
    with stylize(pipe, style, 0.5):
        stylized = _state(pipe.unet)
        pipe.save_pretrained(tmp_path / "stylized")
    loaded = LumierePipeline.from_pretrained(tmp_path / "stylized")
    assert _equal(_state(loaded.unet), stylized)


@pytest.mark.parametrize(
    "arguments, match",
    [
        (dict(style_scale=1.5), "style_scale=1.5 is invalid"),
        (dict(style_scale=float("nan")), "style_scale must be a finite number"),
        (dict(style="missing-folder"), "does not exist"),
        (dict(style=7), "style must be a UNet2DConditionModel"),
        (dict(style={"conv_in.weight": torch.zeros(1)}), r"style weight conv_in.weight is \(1,\)"),
        (dict(style={"nonsense.weight": torch.zeros(1)}), "weights the U-Net's spatial layers lack"),
        (dict(model=torch.nn.Linear(2, 2)), "model must be a Lumiere pipeline or a SpaceTimeUNet"),
    ],
)
def test_bad_arguments_name_themselves(unet, style, arguments, match):
    call = {"model": unet, "style": style, "style_scale": 0.5, **arguments}
    with pytest.raises(ValueError, match=match):
        stylize(**call)


def test_an_empty_folder_says_what_a_style_folder_holds(unet, tmp_path):
    with pytest.raises(ValueError, match="holds no U-Net"):
        stylize(unet, tmp_path, 0.5)


def test_a_damaged_model_folder_is_a_value_error(unet, tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be loaded as a UNet2DConditionModel"):
        stylize(unet, tmp_path, 0.5)
