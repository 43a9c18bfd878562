"""lumiere: Lumiere-style Space-Time U-Nets inflated from diffusers text-to-image U-Nets."""

import diffusers

from .models import SpaceTimeUNet, SpaceTimeUNetOutput
from .pipelines import (
    LumiereCinemagraphPipeline,
    LumiereImageToVideoPipeline,
    LumiereInpaintPipeline,
    LumierePipeline,
    LumierePipelineOutput,
    LumiereSuperResolutionPipeline,
    LumiereVideoToVideoPipeline,
)
from .stylize import Stylization, stylize

# `DiffusionPipeline.from_pretrained` resolves the class named in model_index.json inside
# the diffusers namespace; registering ours there lets it load saved Lumiere pipelines.
for _pipeline in (
    LumierePipeline,
    LumiereImageToVideoPipeline,
    LumiereInpaintPipeline,
    LumiereCinemagraphPipeline,
    LumiereVideoToVideoPipeline,
    LumiereSuperResolutionPipeline,
):
    setattr(diffusers, _pipeline.__name__, _pipeline)

__version__ = "0.1.0"
__all__ = [
    "LumiereCinemagraphPipeline",
    "LumiereImageToVideoPipeline",
    "LumiereInpaintPipeline",
    "LumierePipeline",
    "LumierePipelineOutput",
    "LumiereSuperResolutionPipeline",
    "LumiereVideoToVideoPipeline",
    "SpaceTimeUNet",
    "SpaceTimeUNetOutput",
    "Stylization",
    "stylize",
]
