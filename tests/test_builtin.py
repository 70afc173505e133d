"""The built-in source: models shipped in the repository (``registry/builtin``), listed first, read-only, offline."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import networks
from registry import api


@pytest.fixture
def builtin(tmp_path, monkeypatch, env):
    root = tmp_path / "builtin"
    torch.manual_seed(0)
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), root / "styles" / "mini",
                   style="mini", training={"loss_network": "vgg16:imagenet-caffe"})
    monkeypatch.setenv("PERCEPTUAL_BUILTIN_MODELS_DIR", str(root))
    api.clear_memory_cache()
    return root


def test_builtin_models_are_listed_first_and_load_offline(builtin, env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), "mine", style="mine")
    listing = api.list_models()
    assert [e.id for e in listing.entries][:2] == ["builtin:mini", "local:mine"]
    entry = listing.get("builtin:mini")
    assert entry.source == "builtin" and entry.ready_offline and entry.loss_network == "vgg16:imagenet-caffe"
    assert [e.id for e in api.list_models(source="builtin").entries] == ["builtin:mini"]
    loaded = api.load_model("builtin:mini", "cpu")
    assert loaded.model_id == "builtin:mini" and loaded.config.style == "mini"
    assert api.resolve_model_id("mini") == "builtin:mini"  # a bare name finds a shipped model too
    assert api.describe("builtin:mini")[0].source == "builtin"


def test_an_unknown_builtin_name_says_what_is_shipped(builtin):
    from registry.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="shipped ones: mini"):
        api.load_model("builtin:absent", "cpu")


SHIPPED = Path(__file__).resolve().parents[1] / "registry" / "builtin"


def test_every_shipped_style_loads_names_the_oxford_vgg_and_reproduces_its_preview(monkeypatch, tmp_path):
    """The gallery in the repository (train/gallery.toml): each model loads from the built-in source, was trained
    against the paper's loss network, and still draws the preview stored beside it (its gallery thumbnail)."""
    from imaging.io import image_to_tensor, load_image, resize_to_max_side
    from imaging.metrics import psnr_y
    from networks.inference import infer
    from train.gallery import read_manifest, preview_photo

    monkeypatch.setenv("PERCEPTUAL_BUILTIN_MODELS_DIR", str(SHIPPED))
    api.clear_memory_cache()
    shipped = api.list_models(source="builtin").entries
    manifest = read_manifest()
    assert shipped, "no style model is shipped in registry/builtin"
    assert {e.id.split(":", 1)[1] for e in shipped} <= {s.name for s in manifest.styles}
    photo_path = tmp_path / "preview.jpg"
    preview_photo(manifest).save(photo_path, quality=93)  # as the gallery command saves it
    x = image_to_tensor(resize_to_max_side(load_image(photo_path), 256))  # train.style's --preview-size default
    for entry in shipped:
        assert entry.error is None and entry.loss_network == "vgg16:imagenet-caffe", entry
        card = (entry.path / "README.md").read_text(encoding="utf-8")
        assert "vgg16:imagenet-caffe" in card and "Simonyan" in card  # the loss network, named and credited
        model = api.load_model(entry.id, "cpu")
        out = infer(model.network, x).output
        stored = load_image(entry.path / "preview.jpg")
        assert psnr_y(out, stored) > 30.0, entry.id
