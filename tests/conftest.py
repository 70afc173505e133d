"""Shared test setup: offline, CPU, no telemetry, and data written only under pytest's temp dirs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Before any huggingface_hub / gradio import reads them.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PERCEPTUAL_DEVICE", "cpu")


@pytest.fixture(scope="session")
def _shared_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion cache per test session: the Oxford VGG-16 is converted once, not once per test."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                       _shared_cache_dir: Path) -> None:
    """Each test writes models/runs into its own folder, never the developer's data/."""
    data = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("PERCEPTUAL_DATA_DIR", str(data))
    monkeypatch.setenv("PERCEPTUAL_CACHE_DIR", str(_shared_cache_dir))
    # The shipped gallery is tested on its own (tests/test_builtin.py); elsewhere listings start empty.
    monkeypatch.setenv("PERCEPTUAL_BUILTIN_MODELS_DIR", str(data / "no-builtin-models"))
    monkeypatch.delenv("PERCEPTUAL_MODELS_DIR", raising=False)


@pytest.fixture(scope="session")
def random_vgg_weights():
    """The seeded random VGG-16 (what CI has: no pretrained weights can be downloaded)."""
    from perceptual_studio.networks.vgg import LossNetworkWeights, random_vgg16_state

    return LossNetworkWeights(random_vgg16_state(0), "vgg16:random(seed=0)", "random")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """For registry and Hub tests: models folder and HF cache under tmp_path, no token, not on a Space, nothing
    remembered from other tests. Yields the models folder."""
    import huggingface_hub.constants

    from perceptual_studio import hub_probe
    from perceptual_studio.registry import api

    models = tmp_path / "models"
    monkeypatch.setenv("PERCEPTUAL_MODELS_DIR", str(models))
    # Plain environment variables, read by the registry at call time (huggingface_hub reads them at import).
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    # The stand-in Hub emulates LFS, not Xet storage (tests/fakehub.py): uploads take huggingface_hub's LFS path.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "PERCEPTUAL_HUB_MODELS", "PERCEPTUAL_HUB_AUTHORS",
                 "PERCEPTUAL_MAX_MODEL_MB", "SPACE_ID"):
        monkeypatch.delenv(name, raising=False)
    api.clear_memory_cache()
    hub_probe._cache.clear()
    yield models
    api.clear_memory_cache()
    hub_probe._cache.clear()
