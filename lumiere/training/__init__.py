"""Training: the configuration, the loop and its checkpoints (docs/training.md)."""

from .config import TrainConfig
from .trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
