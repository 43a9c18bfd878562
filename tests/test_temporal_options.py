"""The temporal options are defined once, by SpaceTimeUNet's signature and docstring, and
everything else (TemporalOptions, from_unet2d, TrainConfig, the CLI flags) follows them."""

import argparse
import dataclasses
import inspect

import pytest
import torch

from lumiere import SpaceTimeUNet
from lumiere.cli import build_parser
from lumiere.models.space_time_unet import TEMPORAL_OPTIONS, TemporalOptions
from lumiere.testing import SD_UNET, make_unet2d
from lumiere.training import TrainConfig
from lumiere.training.config import parse_flags

SIGNATURE = inspect.signature(SpaceTimeUNet.__init__).parameters


def test_the_options_are_the_unets_temporal_arguments_with_their_defaults_and_docs():
    assert list(TEMPORAL_OPTIONS) == [name for name in SIGNATURE if name.startswith("temporal_")]
    assert len(TEMPORAL_OPTIONS) == 6
    for spec in dataclasses.fields(TemporalOptions):
        assert spec.default == SIGNATURE[spec.name].default
        assert len(spec.metadata["help"]) > 20 and "``" not in spec.metadata["help"]
    assert TemporalOptions(temporal_kernel_size=5).temporal_kernel_size == 5


def test_train_config_and_both_commands_carry_every_option():
    train_fields = {spec.name: spec.default for spec in dataclasses.fields(TrainConfig)}
    assert {name: train_fields[name] for name in TEMPORAL_OPTIONS} == TEMPORAL_OPTIONS
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("inflate", "train"):
        dests = {action.dest for action in commands[command]._actions}
        assert set(TEMPORAL_OPTIONS) <= dests, command


def test_from_unet2d_passes_every_option_through_and_rejects_unknown_ones():
    values = dict(temporal_downsample=[True, False], temporal_attention_layers=2, temporal_attention_head_dim=8,
                  temporal_kernel_size=5, temporal_cross_attention=True, temporal_attention_spatial_positions=True)  # fmt: skip
    assert set(values) == set(TEMPORAL_OPTIONS)
    model = SpaceTimeUNet.from_unet2d(make_unet2d("latent"), **values)
    assert {name: model.config[name] for name in values} == values
    with pytest.raises(ValueError, match=r"unknown options \['temporal_kernel'\]"):
        SpaceTimeUNet.from_unet2d(make_unet2d("latent"), temporal_kernel=3)


def test_temporal_downsample_false_and_true_are_shorthands_for_every_level():
    levels = len(SD_UNET["down_block_types"]) - 1
    torch.manual_seed(0)
    none = SpaceTimeUNet(unet2d_config=SD_UNET, temporal_downsample=False)
    torch.manual_seed(0)
    listed = SpaceTimeUNet(unet2d_config=SD_UNET, temporal_downsample=[False] * levels)
    assert none.frames_per_level(6) == [6] * (levels + 1) and none.temporal_factor == 1
    assert all(torch.equal(a, b) for a, b in zip(none.state_dict().values(), listed.state_dict().values()))
    every = SpaceTimeUNet(unet2d_config=SD_UNET, temporal_downsample=True)
    assert every.frames_per_level(8) == [8, 4, 2] and every.temporal_factor == 2**levels


@pytest.mark.parametrize("text, flags", [("1,0", [True, False]), ("true, false", [True, False]), ("all", True),
                                         ("none", False), ("NONE", False)])  # fmt: skip
def test_flags_parse_lists_and_the_shorthands(text, flags):
    assert parse_flags(text) == flags


def test_bad_flags_name_what_is_allowed():
    with pytest.raises(argparse.ArgumentTypeError, match="1,1,0, or all / none; got 'yes'"):
        parse_flags("yes")
