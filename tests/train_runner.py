"""Run ``lumiere train`` in a subprocess (or under ``accelerate launch``) for the tests.

    python tests/train_runner.py REPORT_DIR [--hang-before-publishing STEP] -- TRAIN OPTIONS

Writes ``REPORT_DIR/rank{i}.json`` per process: its step count, loss per step and a
digest of its U-Net weights. ``--hang-before-publishing`` injects a fault: when the
checkpoint of STEP has been written to its temporary folder but not yet published, the
process touches ``REPORT_DIR/hanging`` and waits forever for the test to kill it.
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from lumiere.training import checkpoints, train
from lumiere.training.config import add_arguments, config_from_args


def _hang_before_publishing(step: int, marker: Path) -> None:
    publish = checkpoints.finalize

    def finalize(temporary, final, state):
        if state["global_step"] == step:
            marker.touch()
            while True:
                time.sleep(1)
        publish(temporary, final, state)

    checkpoints.finalize = finalize


def main() -> None:
    ours, theirs = sys.argv[1 : sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1 :]
    runner = argparse.ArgumentParser()
    runner.add_argument("report_dir", type=Path)
    runner.add_argument("--hang-before-publishing", type=int, default=None)
    options = runner.parse_args(ours)
    options.report_dir.mkdir(parents=True, exist_ok=True)
    if options.hang_before_publishing is not None:
        _hang_before_publishing(options.hang_before_publishing, options.report_dir / "hanging")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    result = train(config_from_args(parser.parse_args(theirs)))

    digest = hashlib.sha256()
    for name, tensor in sorted(result.unet.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    from accelerate import PartialState

    report = {"global_step": result.global_step, "losses": result.losses, "digest": digest.hexdigest()}
    (options.report_dir / f"rank{PartialState().process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
