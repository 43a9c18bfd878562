import pytest

from lumiere.testing import make_sd_pipeline


@pytest.fixture
def sd_folder(tmp_path):
    """A tiny SD-layout pipeline saved to disk, as a user's local text-to-image folder."""
    folder = tmp_path / "tiny-sd"
    make_sd_pipeline().save_pretrained(folder)
    return folder
