"""lumiere: Lumiere-style Space-Time U-Nets inflated from diffusers text-to-image U-Nets."""

import diffusers

from .models import SpaceTimeUNet, SpaceTimeUNetOutput
from .pipelines import LumierePipeline, LumierePipelineOutput

# `DiffusionPipeline.from_pretrained` resolves the class named in model_index.json inside
# the diffusers namespace; registering ours there lets it load saved Lumiere pipelines.
setattr(diffusers, LumierePipeline.__name__, LumierePipeline)

__version__ = "0.1.0"
__all__ = ["LumierePipeline", "LumierePipelineOutput", "SpaceTimeUNet", "SpaceTimeUNetOutput"]
