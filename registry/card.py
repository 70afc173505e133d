"""The model card (``README.md``) of a model folder, built with ``huggingface_hub``'s ``ModelCard``.

YAML metadata: ``library_name: perceptual-studio``, ``tags`` (the project's Hub tag, the task, the
architecture), ``pipeline_tag: image-to-image``, ``license``, and a ``perceptual_studio`` block (architecture,
task, style, scale, loss network) that Hub listings return as card data, so listing needs no extra
download per model. A model trained with the random-weight VGG-16 fallback says so at the top, loudly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from huggingface_hub import ModelCard, ModelCardData

from perceptual_studio import settings
from perceptual_studio.networks.vgg import describe_loss_network

if TYPE_CHECKING:
    from .schema import ModelConfig

LIBRARY_NAME = "perceptual-studio"
PIPELINE_TAG = "image-to-image"
CARD_DATA_KEY = "perceptual_studio"
RANDOM_LOSS_TAG = "random-loss-network"

TEMPLATE = """---
{{ card_data }}
---

# {{ title }}
{% if random_warning %}
> [!WARNING]
> **Trained with a RANDOM-weight loss network** (`{{ loss_network }}`), **not** a pretrained VGG-16.
> No ImageNet weights were available when it was trained, so its perceptual losses used the features of a
> seeded random VGG-16. Results differ from the paper's; retrain with `vgg16:imagenet-caffe` (the paper's Oxford
> VGG-16, installed with this project) for comparable quality.
{% endif %}
## What it does

{% if task == "style-transfer" -%}
Renders any photo in the style of **{{ style or "its style image" }}** in a single forward pass: a feed-forward
image transformation network trained with perceptual losses (Johnson, Alahi & Fei-Fei, ECCV 2016).
{%- else -%}
Upscales images **{{ scale }}x** in a single forward pass: a feed-forward super-resolution network trained
{% if sr_loss == "pixel" -%}
with the per-pixel loss, the baseline of Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 5.
{%- else -%}
with a feature reconstruction (perceptual) loss (Johnson, Alahi & Fei-Fei, ECCV 2016).
{%- endif %}
{%- endif %}
Architecture `{{ architecture }}`{% if architecture_args %} ({{ architecture_args }}){% endif %}; images in and out are RGB in [0, 1].
{% for image in images %}
![{{ image }}]({{ image }})
{%- endfor %}

## How to use

With the [Perceptual Studio](https://huggingface.co/models?other={{ hub_tag }}) library:

```python
from perceptual_studio.registry import load_model
from perceptual_studio.imaging.io import load_image_tensor, save_image

model = load_model("{{ model_id }}")  # ready nn.Module, eval mode
save_image(model(load_image_tensor("photo.jpg")), "out.png")
```

In the app, pick **{{ model_id }}** from the model list. From the command line:
`python -m registry show {{ model_id }}`.

## Training details

| | |
|---|---|
| Loss network | `{{ loss_network }}`{% if random_warning %} (**random weights**){% endif %}: {{ loss_network_description }} |
{%- for key, value in training_rows %}
| {{ key }} | {{ value }} |
{%- endfor %}
{% if evaluation %}
## Evaluation

| Figure | Value |
|---|---|
{%- for key, value in evaluation %}
| {{ key }} | {{ value }} |
{%- endfor %}
{% endif %}
## Files

`config.json` (architecture, constructor arguments and training record), `model.safetensors` (weights;
the registry never loads pickles){% for image in images %}, `{{ image }}`{% endfor %}.
{% if extra %}
{{ extra }}
{% endif %}
## Citation

```bibtex
@inproceedings{johnson2016perceptual,
  title={Perceptual Losses for Real-Time Style Transfer and Super-Resolution},
  author={Johnson, Justin and Alahi, Alexandre and Fei-Fei, Li},
  booktitle={European Conference on Computer Vision (ECCV)},
  year={2016}
}
```
"""

_ROW_LABELS = {
    "content_layers": "Content layers", "style_layers": "Style layers", "content_weight": "Content weight",
    "style_weight": "Style weight", "tv_weight": "Total variation weight", "pixel_weight": "Pixel loss weight",
    "grid_weight": "Grid-pattern weight",
    "dataset": "Training data", "image_size": "Image size", "batch_size": "Batch size",
    "iterations": "Iterations", "learning_rate": "Learning rate", "seconds": "Training time",
    "device": "Device",
}


def _format(key: str, value: object) -> str:
    if key == "seconds" and isinstance(value, (int, float)):
        return f"{value / 60:.1f} min" if value >= 60 else f"{value:.1f} s"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def card_data(config: "ModelConfig", *, license: str = "mit") -> ModelCardData:
    tags = list(dict.fromkeys([settings.hub_tag(), LIBRARY_NAME, config.task, config.architecture]))
    if config.training.random_loss_network:
        tags.append(RANDOM_LOSS_TAG)
    summary = {"architecture": config.architecture, "task": config.task, "style": config.style,
               "scale": config.scale, "loss_network": config.training.loss_network, "sr_loss": config.training.sr_loss,
               "variant_of": config.training.variant_of}
    return ModelCardData(library_name=LIBRARY_NAME, license=license, tags=tags, pipeline_tag=PIPELINE_TAG,
                         **{CARD_DATA_KEY: {k: v for k, v in summary.items() if v is not None}})


def build_card(config: "ModelConfig", *, title: str, model_id: str | None = None, license: str = "mit",
               images: list[str] | tuple[str, ...] = (), extra: str | None = None) -> ModelCard:
    """The card for ``config``; ``model_id`` (default ``local:<title>``) is what the usage examples load."""
    training = config.training.to_dict()
    rows = [(label, _format(key, training[key])) for key, label in _ROW_LABELS.items()
            if training.get(key) not in (None, [], "")]
    rows += [(key, _format(key, value)) for key, value in config.training.extra.items() if _is_scalar(value)]
    evaluation = [(k, _format(k, v)) for k, v in config.training.evaluation.items()]
    return ModelCard.from_template(
        card_data(config, license=license),
        template_str=TEMPLATE,
        title=title,
        model_id=model_id or f"local:{title}",
        hub_tag=settings.hub_tag(),
        architecture=config.architecture,
        architecture_args=", ".join(f"{k} {v}" for k, v in config.architecture_args.items()),
        task=config.task,
        style=config.style,
        scale=config.scale,
        sr_loss=config.training.sr_loss,
        loss_network=config.training.loss_network,
        loss_network_description=describe_loss_network(config.training.loss_network).replace("|", "\\|"),
        random_warning=config.training.random_loss_network,
        training_rows=rows,
        evaluation=evaluation,
        images=list(images),
        extra=extra,
    )


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool))
