from .base import LumiereBasePipeline, LumierePipelineOutput
from .cinemagraph import LumiereCinemagraphPipeline
from .conditional import LumiereConditionalPipeline
from .image_to_video import LumiereImageToVideoPipeline
from .inpainting import LumiereInpaintPipeline
from .super_resolution import LumiereSuperResolutionPipeline
from .text_to_video import LumierePipeline
from .video_to_video import LumiereVideoToVideoPipeline

__all__ = [
    "LumiereBasePipeline",
    "LumiereCinemagraphPipeline",
    "LumiereConditionalPipeline",
    "LumiereImageToVideoPipeline",
    "LumiereInpaintPipeline",
    "LumierePipeline",
    "LumierePipelineOutput",
    "LumiereSuperResolutionPipeline",
    "LumiereVideoToVideoPipeline",
]
