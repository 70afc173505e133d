"""benchmarks/report/: the smoke profile writes the six-section Markdown report with its plots (what CI runs).

The numbers of a smoke run are meaningless (tiny networks, a few iterations); this checks the plumbing: every
section runs on a CPU, the report names the loss network, the plots exist, and a later run of one section
merges into the same folder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from benchmarks.report import SECTION_TITLES, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_report_has_every_section(tmp_path, monkeypatch) -> None:
    from perceptual_studio import settings

    # Section 6 evaluates the shipped gallery: the repository's own models, not the tests' empty folder.
    monkeypatch.setenv(settings.BUILTIN_MODELS_DIR.name, str(ROOT / "registry" / "builtin"))
    out, work = tmp_path / "report", tmp_path / "work"
    # Section 3's held-out photos: the crops that ship with the tests (CI builds no image corpus).
    held_out = str(ROOT / "tests" / "data" / "held-out")
    assert main(["--smoke", "--device", "cpu", "--out", str(out), "--work-dir", str(work),
                 "--sr-datasets", held_out]) == 0
    text = (out / "report.md").read_text()
    for title in SECTION_TITLES.values():
        assert f"## {title}" in text
    assert "Failed:" not in text and "Not run" not in text
    assert re.search(r"^- Loss network: `vgg16:[^`]+` \((ImageNet-pretrained|random-weight)", text, re.M)
    assert "profile `smoke`" in text and "scaled down" in text
    assert "| 256x256 | paper, GTX Titan X | 3.17 s |" in text  # the paper's Table 1 beside this run's
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / image).stat().st_size > 1000, image
    results = json.loads((out / "results.json").read_text())
    assert set(results["sections"]) == {"1", "2", "3", "4", "5", "6"}
    gallery = results["sections"]["6"]["data"]
    assert gallery["rows"] and all(r["trained_with"] == "vgg16:imagenet-caffe" for r in gallery["rows"])
    # Scored with another loss network (the tests' random one), the section says so rather than pass it off.
    assert ("numbers are not the objective they were trained on" in text) == (gallery["loss_network"] != "vgg16:imagenet-caffe")
    assert all(0 < r["network"] < float("inf") and len(r["lbfgs"]) == 3 for r in gallery["rows"])
    assert (out / gallery["sheets"][gallery["rows"][0]["style"]]).is_file()

    # One section again: the others are kept from results.json.
    assert main(["--smoke", "--device", "cpu", "--out", str(out), "--work-dir", str(work), "--sections", "1"]) == 0
    text = (out / "report.md").read_text()
    assert all(f"## {title}" in text for title in SECTION_TITLES.values()) and "Not run" not in text
