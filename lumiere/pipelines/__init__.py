from .base import LumiereBasePipeline, LumierePipelineOutput
from .text_to_video import LumierePipeline

__all__ = ["LumiereBasePipeline", "LumierePipeline", "LumierePipelineOutput"]
