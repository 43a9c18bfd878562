from .space_time_unet import SpaceTimeUNet, SpaceTimeUNetOutput

__all__ = ["SpaceTimeUNet", "SpaceTimeUNetOutput"]
