import os

# Under ``pytest -n N`` each worker gets its share of the cores: two workers of two torch
# threads each on two cores ran the model tests 3x slower (OpenMP threads of one worker
# waiting for cores held by the other). The environment reaches the CLI subprocesses too.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores // _WORKERS))

import pytest  # noqa: E402

from lumiere.testing import make_sd_pipeline  # noqa: E402


@pytest.fixture
def sd_folder(tmp_path):
    """A tiny SD-layout pipeline saved to disk, as a user's local text-to-image folder."""
    folder = tmp_path / "tiny-sd"
    make_sd_pipeline().save_pretrained(folder)
    return folder
