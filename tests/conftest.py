"""Shared test setup: offline, CPU, no telemetry, and data written only under pytest's temp dirs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Before any huggingface_hub / gradio import reads them.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("PERCEPTUAL_DEVICE", "cpu")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


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
    monkeypatch.delenv("PERCEPTUAL_MODELS_DIR", raising=False)


@pytest.fixture(scope="session")
def random_vgg_weights():
    """The seeded random VGG-16 (what CI has: no pretrained weights can be downloaded)."""
    from networks.vgg import LossNetworkWeights, random_vgg16_state

    return LossNetworkWeights(random_vgg16_state(0), "vgg16:random(seed=0)", "random")
