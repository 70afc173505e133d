"""The on-disk model format: a folder that is also a valid Hugging Face Hub model repo.

::

    config.json          ModelConfig below: architecture, task, constructor arguments, training record
    model.safetensors    the state dict, strict key match; never a pickle
    README.md            model card with YAML metadata (registry/card.py)
    style.jpg            optional: the style image (style transfer)
    preview.jpg          optional: an example output, used as the thumbnail

Why not ``PyTorchModelHubMixin``: its ``config.json`` is exactly the ``__init__`` arguments of one class
(extra keys are dropped on load) and every network would have to inherit it. Ours must also say *which*
architecture to build (a plugin name resolved through ``networks.architectures``) and carry the training
record, and plugins are plain ``nn.Module`` classes. So the folder layout is the mixin's (``config.json`` +
``model.safetensors`` + ``README.md``, loadable from a path or a Hub id), written with ``safetensors`` and
``huggingface_hub.ModelCard`` directly.

Loading checks everything it can before reading tensor data: the size limit, the safetensors header
(dtypes, offsets, truncation) and the shapes the config implies, computed by building the network on the
``meta`` device, so a malicious or broken folder costs no memory and gives a one-line reason.
"""
from __future__ import annotations

# The format's parts, one module each: the schema, the checks before any data is read, loading, writing.
from .checks import (
                     read_config,
                     read_safetensors_header,
                     refuse_pickles_message,
                     validate_folder,
)
from .loaded import LoadedModel, load_model_folder
from .schema import (
                     CARD_FILE,
                     CONFIG_FILE,
                     DEFAULT_MAX_WEIGHTS_MB,
                     EVOLUTION_FILE,
                     FORMAT_NAME,
                     FORMAT_VERSION,
                     LOSS_CURVE_FILE,
                     MAX_CARD_BYTES,
                     MAX_CONFIG_BYTES,
                     MAX_IMAGE_BYTES,
                     MODEL_FILES,
                     PICKLE_SUFFIXES,
                     PREVIEW_FILE,
                     SR_LOSSES,
                     STYLE_IMAGE_FILE,
                     WEIGHTS_FILE,
                     ModelConfig,
                     StyleImageCredit,
                     TrainingRecord,
                     is_our_config,
                     max_weights_bytes,
)
from .writing import save_model

__all__ = [
    "CARD_FILE", "CONFIG_FILE", "DEFAULT_MAX_WEIGHTS_MB", "EVOLUTION_FILE", "FORMAT_NAME", "FORMAT_VERSION",
    "LOSS_CURVE_FILE", "MAX_CARD_BYTES", "MAX_CONFIG_BYTES", "MAX_IMAGE_BYTES", "MODEL_FILES", "PICKLE_SUFFIXES",
    "PREVIEW_FILE", "SR_LOSSES", "STYLE_IMAGE_FILE", "WEIGHTS_FILE", "LoadedModel", "ModelConfig", "StyleImageCredit",
    "TrainingRecord",
    "is_our_config", "load_model_folder", "max_weights_bytes", "read_config", "read_safetensors_header",
    "refuse_pickles_message", "save_model", "validate_folder",
]
