"""Pure handler functions behind the app's events, one module per journey; the UI layer only wires them.

Each takes plain values (file paths, numbers, model ids), returns plain values (PIL images, Markdown, small
dataclasses) and raises :class:`imaging.ImageInputError` / ``ValueError`` / registry errors with a message a
user can act on; ``webapp.ui`` turns those into ``gr.Error`` and ``webapp.cli`` into one line on stderr.

| module | journey |
|---|---|
| ``style`` | Stylize, style blends (and the live webcam) |
| ``compare`` | Compare with the optimisation baseline |
| ``superres`` | Super-resolution |
| ``training`` | Train a style, publish to the Hub |
| ``models`` | Models: listing, cards, pull; the model pickers of the other tabs |
| ``common`` | loss-network identity, size limits, loading registry models, one network pass |
"""
from .common import loss_network_banner, loss_network_status
from .compare import CompareOutput, compare_baseline
from .models import ModelListing, current_listing, model_card, pull_model
from .style import (
    NETWORK_CHOICES,
    BlendPart,
    NetworkChoice,
    StylizeOutput,
    blend_summary,
    choose_network,
    stylize,
    stylize_blend,
    stylize_frame,
)
from .superres import SROutput, super_resolve
from .training import (
    TrainRequest,
    TrainUpdate,
    cancel_job,
    publish_model,
    run_training,
    train_style_job,
)

__all__ = [
    "NETWORK_CHOICES", "BlendPart", "NetworkChoice", "choose_network", "CompareOutput", "ModelListing", "SROutput", "StylizeOutput", "TrainRequest", "TrainUpdate",
    "blend_summary", "cancel_job", "compare_baseline", "current_listing", "loss_network_banner",
    "loss_network_status", "model_card", "publish_model", "pull_model", "run_training", "stylize", "stylize_blend",
    "stylize_frame", "super_resolve", "train_style_job",
]
