"""Networks: the image transformation networks, the VGG-16 loss network, and the architecture table.

Importing this package registers the built-in architectures (``johnson-style``, ``johnson-sr``).
"""
from . import legacy  # noqa: F401  registers "pytorch-examples-transformer" (pytorch/examples checkpoints)
from .architectures import (
    Architecture,
    DuplicateArchitectureError,
    UnknownArchitectureError,
    create_model,
    get_architecture,
    list_architectures,
    register_architecture,
)
from .sr import SuperResolutionNet
from .style import StyleTransformNet

__all__ = [
    "Architecture",
    "DuplicateArchitectureError",
    "UnknownArchitectureError",
    "create_model",
    "get_architecture",
    "list_architectures",
    "register_architecture",
    "StyleTransformNet",
    "SuperResolutionNet",
]
