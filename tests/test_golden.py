"""LumierePipeline outputs are the ones recorded before the pipeline core was reshaped
(tests/golden.py): bit-identical on the kind of machine that recorded them, and within
float32 rounding of another CPU's kernels elsewhere."""

import numpy as np
import pytest
import torch

from . import golden

RECORDED = np.load(golden.FIXTURE)


@pytest.fixture
def recorded_threads():
    """The recording's torch thread count for the test (the suite's workers run with
    fewer): kernels split their sums by thread, so only that count can match it bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(int(str(RECORDED["machine"]).rpartition("threads-")[2]))
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(golden.cases("unused")))
def test_outputs_match_the_recording(name, tmp_path, recorded_threads):
    factory, kwargs = golden.cases(str(tmp_path))[name]
    frames = golden.run_case(factory, kwargs)
    expected = RECORDED[name]
    assert frames.shape == expected.shape
    if str(RECORDED["machine"]) == golden.machine():
        assert np.array_equal(frames, expected)
    else:
        np.testing.assert_allclose(frames, expected, atol=1e-4)
