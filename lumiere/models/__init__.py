# minilm is imported with the package: diffusers loads a component only from a module that
# has been imported, and saved pipelines name lumiere.models.minilm for their text encoder.
from .minilm import MiniLMTextEncoder
from .space_time_unet import SpaceTimeUNet, SpaceTimeUNetOutput

__all__ = ["MiniLMTextEncoder", "SpaceTimeUNet", "SpaceTimeUNetOutput"]
