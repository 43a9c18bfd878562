"""Training configuration (YAML + flags) and the checkpoint folder rules."""

import argparse
import json

import pytest

from lumiere.training import TrainConfig, checkpoints
from lumiere.training.config import add_arguments, config_from_args


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_flags_override_yaml_and_yaml_overrides_defaults(tmp_path):
    path = tmp_path / "run.yaml"
    TrainConfig(pretrained="a", train_data="b", learning_rate=3e-4, num_frames=8).to_yaml(path)
    config = _parse(["--config", str(path), "--num-frames", "32", "--no-use-ema", "--temporal-downsample", "1,0"])
    assert config.pretrained == "a" and config.learning_rate == 3e-4  # from the file
    assert config.num_frames == 32 and config.temporal_downsample == [True, False]  # from the flags
    assert config.max_train_steps == TrainConfig().max_train_steps  # default


def test_resolved_config_round_trips(tmp_path):
    config = TrainConfig(pretrained="p", train_data="d", validation_prompts=["a red circle"], snr_gamma=5.0)
    config.to_yaml(tmp_path / "c.yaml")
    assert TrainConfig.from_yaml(tmp_path / "c.yaml") == config


@pytest.mark.parametrize(
    "values, message",
    [
        ({"mode": "audio"}, "mode='audio' is invalid; choose one of video, image"),
        ({"num_frames": 0}, "num_frames=0 is invalid"),
        ({"text_dropout": 1.5}, "text_dropout=1.5 is invalid"),
        ({"checkpoints_total_limit": 0}, "checkpoints_total_limit=0 is invalid"),
        (
            {"timestep_bias_strategy": "middle"},
            "timestep_bias_strategy='middle' is invalid; choose one of none, later, earlier",
        ),
        ({"timestep_bias_portion": 0.0}, "timestep_bias_portion=0.0 is invalid"),
        ({"noise_frame_correlation": 1.0}, "noise_frame_correlation=1.0 is invalid"),
        ({"mode": "image", "noise_frame_correlation": 0.5}, "noise_frame_correlation=0.5 is invalid in mode='image'"),
        ({"timestep_bias_multiplier": -1.0}, "timestep_bias_multiplier=-1.0 is invalid"),
        ({"known_loss_weight": 0.0}, "known_loss_weight=0 leaves a clip that is all known without a loss"),
        ({"known_loss_weight": float("nan")}, "known_loss_weight must be a finite number; got nan"),
        ({"known_loss_weight": 4.0}, "known_loss_weight=4.0 needs conditioning=True"),
        ({"known_drift": 1.5, "conditioning": True}, "known_drift=1.5 is a share of clips"),
        ({"known_drift": -0.1, "conditioning": True}, "known_drift must be a finite number"),
        ({"known_drift": 0.5}, "known_drift=0.5 needs conditioning=True"),
        ({"conditioning_learning_rate": 0.0, "conditioning": True}, "conditioning_learning_rate=0.0 is invalid"),
        ({"conditioning_learning_rate": float("inf"), "conditioning": True}, "conditioning_learning_rate must be"),
        ({"conditioning_learning_rate": 1e-3}, "conditioning_learning_rate=0.001 needs conditioning=True"),
    ],
)
def test_invalid_values_are_named(values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        TrainConfig(**values)


def test_unknown_yaml_option_and_missing_required(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("learning_rate: 0.1\nlearnig_rate: 0.2\n")
    with pytest.raises(ValueError, match=r"unknown options \['learnig_rate'\]"):
        TrainConfig.from_yaml(path)
    with pytest.raises(ValueError, match="pretrained is required"):
        TrainConfig(train_data="d").check_required()


def _fake_checkpoint(root, step, complete=True):
    folder = root / (f"checkpoint-{step}" if complete else f"checkpoint-{step}.tmp")
    folder.mkdir(parents=True)
    (folder / "optimizer.bin").write_bytes(b"x")
    if complete:
        (folder / checkpoints.STATE_FILE).write_text(json.dumps({"global_step": step}))
    return folder


def test_latest_skips_partial_checkpoints_and_prune_keeps_newest(tmp_path):
    for step in (10, 2, 30):
        _fake_checkpoint(tmp_path, step)
    _fake_checkpoint(tmp_path, 40, complete=False)
    (tmp_path / "checkpoint-50").mkdir()  # no state file: not complete either
    assert checkpoints.resolve_resume("latest", tmp_path).name == "checkpoint-30"
    assert checkpoints.resolve_resume(None, tmp_path) is None
    assert checkpoints.resolve_resume("latest", tmp_path / "empty") is None
    with pytest.raises(ValueError, match="is not a complete checkpoint folder"):
        checkpoints.resolve_resume(str(tmp_path / "checkpoint-40.tmp"), tmp_path)

    checkpoints.remove_partial(tmp_path)
    assert not (tmp_path / "checkpoint-40.tmp").exists()
    checkpoints.prune(tmp_path, keep=2)
    assert [p.name for p in checkpoints.complete_checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-30"]


def test_finalize_publishes_atomically_and_replaces_same_step(tmp_path):
    old = _fake_checkpoint(tmp_path, 5)
    temporary = _fake_checkpoint(tmp_path, 5, complete=False)
    (temporary / "new.bin").write_bytes(b"y")
    checkpoints.finalize(temporary, old, {"global_step": 5, "epoch": 1, "position": 2})
    assert not temporary.exists()
    assert (old / "new.bin").exists()
    assert checkpoints.read_state(old) == {"global_step": 5, "epoch": 1, "position": 2}


def test_docs_list_every_option_as_the_code_defines_it():
    """docs/training.md carries ``options_table()`` verbatim; regenerate it with
    ``python -c "from lumiere.training.config import options_table; print(options_table())"``."""
    from pathlib import Path

    from lumiere.training.config import options_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    assert options_table() in docs


@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed_zero2"])
def test_shipped_accelerate_configs_load(name):
    from pathlib import Path

    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(__file__).resolve().parents[1] / "examples" / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))
    assert config.num_processes == 8 and config.mixed_precision == "bf16"


def test_cli_train_reports_bad_input_on_one_line(tmp_path, capsys):
    from lumiere.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            ["train", "--pretrained", str(tmp_path), "--train-data", str(tmp_path), "--output-dir", str(tmp_path / "o")]
        )
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message == f"lumiere train: error: pretrained={str(tmp_path)!r} is an empty folder, not a saved pipeline"
    with pytest.raises(SystemExit):
        main(["train", "--mode", "audio"])
    assert "invalid choice: 'audio'" in capsys.readouterr().err


def test_optional_options_take_none_from_code_and_yaml(tmp_path):
    # checkpoints_total_limit defaults to 3 but None (keep all) is allowed: the edit recipe uses it.
    config = TrainConfig(checkpoints_total_limit=None)
    config.to_yaml(tmp_path / "config.yaml")
    assert TrainConfig.from_yaml(tmp_path / "config.yaml").checkpoints_total_limit is None
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig(learning_rate=None)  # not optional
