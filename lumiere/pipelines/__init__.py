from .text_to_video import LumierePipeline, LumierePipelineOutput

__all__ = ["LumierePipeline", "LumierePipelineOutput"]
