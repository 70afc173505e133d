"""The painting styles of the gallery: their manifest, training content drawn from the corpus's train split only,
the painting's credit in the model's record, card and pickers, and the gallery's order and thumbnails."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_studio import networks
from perceptual_studio.imaging.corpus import HELD_OUT, PAINTING, PHOTO, TRAIN, CorpusImage
from perceptual_studio.imaging.corpus.manifest import write_manifest
from perceptual_studio.registry import api
from perceptual_studio.registry.errors import ModelFormatError
from perceptual_studio.registry.schema import StyleImageCredit, TrainingRecord


def _image(seed: int, size=(320, 280)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _record(folder: Path, image_id: str, kind: str, split: str, image: Image.Image, **fields) -> CorpusImage:
    file = f"images/{image_id.replace('/', '__')}.png"
    (folder / file).parent.mkdir(parents=True, exist_ok=True)
    image.save(folder / file)
    values = dict(id=image_id, kind=kind, title=image_id.rsplit("/", 1)[-1], author="Someone", year=None,
                  licence="CC0-1.0", attribution=f"{image_id} by Someone, CC0-1.0", source_url=None,
                  package=image_id.split("/", 1)[0], package_version="1.0", package_path=f"data/{image_id}",
                  group=image_id, split=split, file=file, width=image.width, height=image.height,
                  sha256=hashlib.sha256((folder / file).read_bytes()).hexdigest())
    return CorpusImage(**{**values, **fields})


@pytest.fixture
def corpus(tmp_path):
    """A small corpus: two train photos, two held out (one of them the gallery's preview photo), one painting
    with a black frame."""
    from perceptual_studio.imaging.sample_photos import load_sample_photo

    folder = tmp_path / "corpus"
    framed = Image.new("RGB", (300, 240), "black")
    framed.paste(_image(9, (280, 220)), (10, 10))
    images = [
        _record(folder, "pkg/photos/train-a", PHOTO, TRAIN, _image(1)),
        _record(folder, "pkg/photos/train-b", PHOTO, TRAIN, _image(2)),
        _record(folder, "pkg/photos/held-c", PHOTO, HELD_OUT, _image(3)),
        _record(folder, "scikit-image/astronaut", PHOTO, HELD_OUT, load_sample_photo("astronaut")),
        _record(folder, "pkg/paintings/the-wave", PAINTING, TRAIN, framed, title="The Wave", author="A. Painter",
                year="1830", licence="GPL-3.0-or-later"),
    ]
    write_manifest(folder, images, [], {"pkg": {"version": "1.0", "sha256": "0" * 64}})
    return folder


def _manifest_file(tmp_path: Path) -> Path:
    path = tmp_path / "paintings.toml"
    path.write_text('''work-dir = "paintings"
[content]
source = "corpus"
crops_per_photo = 3
crop_size = 96
seed = 0
[train]
image-size = 64
[[style]]
name = "the-wave"
painting = "pkg/paintings/the-wave"
title = "The Great Wave"
crop-border = 10
init = "builtin:stained-glass"
iterations = 5
style-weight = 1.0
[fast]
init = "builtin:stained-glass-fast"
scratch-iterations = 4
finetune-iterations = 3
objective-iterations = 2
width = 0.375
''', encoding="utf-8")
    return path


def test_the_shipped_painting_manifest_names_the_paintings_the_gallery_promises():
    from perceptual_studio.train.shipped.gallery import PAINTINGS_MANIFEST, read_gallery, read_manifest

    manifest = read_manifest(PAINTINGS_MANIFEST)
    assert manifest.content.source == "corpus" and manifest.work_dir_name == "paintings"
    paintings = {s.painting for s in manifest.styles}
    assert len(paintings) == len(manifest.styles) >= 8 and None not in paintings
    for promised in ("katsushika-hokusai-the-great-wave-off-kanagawa", "opencv-doc/starry_night",
                     "wassily-kandinsky-composition-viii", "gcompris-qt-data/details/"):
        assert any(promised in p for p in paintings), promised
    assert len({s.options.get("style-weight") for s in manifest.styles}) > 1  # chosen per painting
    assert [m.source for m in read_gallery()][0] == PAINTINGS_MANIFEST  # the paintings come first


def test_painting_content_comes_from_the_corpus_train_split_only_and_the_plan_starts_from_shipped_models(
        corpus, tmp_path, capsys):
    from perceptual_studio.train.shipped.gallery import main

    manifest, work, models = _manifest_file(tmp_path), tmp_path / "work", tmp_path / "models"
    assert main(["--manifest", str(manifest), "--plan", "--corpus", str(corpus), "--work-dir", str(work),
                 "--models-root", str(models)]) == 0
    commands = [c.split() for c in capsys.readouterr().out.strip().splitlines()]
    style, distill, objective = commands
    assert style[style.index("--init") + 1] == "builtin:stained-glass" and "--style-weight" in style
    assert distill[distill.index("--init") + 1] == "builtin:stained-glass-fast"
    assert distill[distill.index("--iterations") + 1] == "3"  # every student fine-tunes from the shipped one
    assert objective[objective.index("--variant-of") + 1] == str(models / "the-wave")
    # The style image is the painting less its frame.
    painted = Image.open(style[style.index("--style") + 1])
    assert painted.size == (280, 220) and np.asarray(painted).reshape(-1, 3).mean(0).min() > 60

    from dataclasses import replace

    from perceptual_studio.train.shipped.gallery import build_content, read_manifest
    spec = replace(read_manifest(manifest).content, corpus=corpus)
    folder = build_content(spec, tmp_path / "content")
    assert sorted({p.name.rsplit("-", 1)[0] for p in folder.glob("*.jpg")}) == ["photos-train-a", "photos-train-b"]
    sources = (folder / "SOURCES.md").read_text(encoding="utf-8")
    assert "random crops of 2 photos of the licensed image corpus" in sources and "held-c" in sources.split("Held out")[1]


def test_a_painting_manifest_without_a_corpus_says_how_to_build_one(tmp_path, caplog):
    from perceptual_studio.train.shipped.gallery import main

    assert main(["--manifest", str(_manifest_file(tmp_path)), "--corpus", str(tmp_path / "none"),
                 "--work-dir", str(tmp_path / "w"), "--models-root", str(tmp_path / "m")]) == 2
    assert "python -m imaging.corpus build" in caplog.text and not (tmp_path / "m").exists()


def test_a_finished_painting_style_records_its_credit_and_its_card_names_the_painting(corpus, tmp_path, env):
    from dataclasses import replace

    from perceptual_studio.train.shipped.gallery import finalize_shipped, read_manifest

    manifest = read_manifest(_manifest_file(tmp_path))
    manifest = replace(manifest, content=replace(manifest.content, corpus=corpus))
    folder = tmp_path / "models" / "the-wave"
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), folder, style="the-wave",
                   training={"loss_network": "vgg16:imagenet-caffe"})
    assert finalize_shipped(folder, manifest.styles[0], manifest)
    credit = api.load_model(str(folder), "cpu").config.training.style_image
    assert credit == StyleImageCredit("The Great Wave", "A. Painter", "1830", "GPL-3.0-or-later",
                                      "pkg 1.0: data/pkg/paintings/the-wave")
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "*The Great Wave* by A. Painter (1830), GPL-3.0-or-later" in card and "trained on that one image" in card
    assert "names this painting only \"The Wave\"" in card  # the title given in the manifest is said to be so
    assert not finalize_shipped(folder, manifest.styles[0], manifest)  # idempotent


def test_a_credit_round_trips_through_the_record_and_a_bad_one_is_refused():
    credit = {"title": "Starry Night", "artist": "Vincent van Gogh", "year": "1889", "licence": "CC0-1.0",
              "source": "pkg 1.0: a.png"}
    record = TrainingRecord.from_dict({"loss_network": "vgg16:imagenet-caffe", "style_image": credit})
    assert record.style_image.caption == "Starry Night, Vincent van Gogh, 1889"
    assert record.to_dict()["style_image"] == credit
    assert "style_image" not in TrainingRecord.from_dict({"loss_network": "x"}).to_dict()
    for bad in ("a painting", {**credit, "title": "x" * 301}, {**credit, "artist": 3}, {**credit, "licence": " "}):
        with pytest.raises(ModelFormatError, match="style_image"):
            TrainingRecord.from_dict({"style_image": bad})


def test_credited_paintings_come_first_with_their_title_and_the_painting_inset_in_the_thumbnail(tmp_path, env,
                                                                                               monkeypatch):
    from perceptual_studio.webapp.handlers import models as handlers

    root = tmp_path / "builtin"
    torch.manual_seed(0)
    credit = {"title": "The Wave", "artist": "A. Painter", "year": None, "licence": "CC0-1.0", "source": "pkg 1.0"}
    for name, style_credit in (("aaa-pattern", None), ("zzz-painting", credit)):
        training = {"loss_network": "vgg16:imagenet-caffe", **({"style_image": style_credit} if style_credit else {})}
        api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), root / "styles" / name,
                       style=name, training=training, style_image=Image.new("RGB", (90, 60), (255, 0, 0)),
                       preview=Image.new("RGB", (256, 256), (0, 0, 255)))
    monkeypatch.setenv("PERCEPTUAL_BUILTIN_MODELS_DIR", str(root))
    api.clear_memory_cache()
    listing = handlers.ModelListing(api.list_models(source="builtin").entries)
    painting, pattern = listing.style_models()
    assert (painting.id, pattern.id) == ("builtin:zzz-painting", "builtin:aaa-pattern")
    assert handlers.gallery_caption(painting).startswith("The Wave, A. Painter · builtin")
    assert handlers.gallery_caption(pattern).startswith("aaa-pattern · builtin")
    assert "zzz-painting (The Wave, A. Painter)" in handlers.table_rows(listing)[0][3]
    assert handlers.records(listing)[0]["style_image"]["title"] == "The Wave"
    picture = np.asarray(handlers.thumbnail(painting)).astype(int)
    assert picture.shape[:2] == (192, 192)
    assert np.abs(picture[-20, -20] - [255, 0, 0]).max() < 40  # the style image, inset in the corner
    assert np.abs(picture[20, 20] - [0, 0, 255]).max() < 40  # the stylized photo around it
    assert json.loads((root / "styles" / "zzz-painting" / "config.json").read_text())["training"]["style_image"]


def _stable_manifest(tmp_path: Path, corpus: Path):
    from dataclasses import replace

    from perceptual_studio.train.shipped.gallery import read_manifest

    path = _manifest_file(tmp_path)
    text = path.read_text(encoding="utf-8").replace('style-weight = 1.0\n', 'style-weight = 1.0\nstable-temporal-weight = 3e7\n')
    path.write_text(text + '[stable]\ntemporal-weight = 1e7\niterations = 2\n', encoding="utf-8")
    manifest = read_manifest(path)
    return replace(manifest, content=replace(manifest.content, corpus=corpus))


def _evaluation(worst_ratio: float, excess: float):
    from perceptual_studio.train.shipped.stable_variants import NETWORK_LABELS, StableEvaluation
    from perceptual_studio.train.shipped.style_eval import ObjectiveEvaluation

    terms = {"held-c": {NETWORK_LABELS[0]: {"total": 1.0, "content": 0.5, "style": 0.5, "tv": 0.0},
                        NETWORK_LABELS[1]: {"total": 1.0 + excess, "content": 0.5, "style": 0.5 + excess, "tv": 0.0}}}
    objective = ObjectiveEvaluation(("held-c",), NETWORK_LABELS, "vgg16:imagenet-caffe", terms)
    return StableEvaluation({"pan over held-c": (0.0, 1.0, worst_ratio)}, objective)


def test_a_style_can_give_its_stable_variant_flat_pairs_and_they_train_and_are_judged_apart(corpus, tmp_path) -> None:
    """``stable-temporal-flat-share`` reaches train.style and names its own run (and rejected) folder, so that a
    try with flat pairs never resumes or shadows one without them."""
    from dataclasses import replace

    from perceptual_studio.train.shipped import gallery

    manifest = _stable_manifest(tmp_path, corpus)
    path = manifest.source
    path.write_text(path.read_text(encoding="utf-8").replace(
        "stable-temporal-weight = 3e7\n", "stable-temporal-weight = 3e7\nstable-temporal-flat-share = 0.25\n"),
        encoding="utf-8")
    flat = gallery.read_manifest(path)
    flat = replace(flat, content=replace(flat.content, corpus=corpus))
    stage = next(s for s in gallery.style_stages(flat, tmp_path / "models", tmp_path / "work", [], None)
                 if s.name == "the-wave-stable")
    assert stage.command[stage.command.index("--temporal-flat-share") + 1] == "0.25"
    assert stage.command[stage.command.index("--run-dir") + 1].endswith("the-wave-stable-tw3e07-flat0.25")
    stable = flat.stable.for_style(3e7, 0.25)
    assert gallery.rejected_folder(tmp_path, "the-wave-stable", stable).name == "the-wave-stable-tw3e07-flat0.25"


@pytest.mark.parametrize("worst_ratio, excess, kept", [(0.4, 0.05, True), (0.6, 0.05, False), (0.4, 0.2, False)])
def test_a_stable_variant_ships_only_when_it_meets_both_bars_and_a_rejected_weight_is_not_trained_again(
        corpus, tmp_path, env, monkeypatch, capsys, caplog, worst_ratio, excess, kept):
    """A style's own temporal weight replaces the [stable] table's; a stable variant that misses the warping or the
    objective bar is kept aside with its card, out of the registry, and the plan skips that weight from then on."""
    from perceptual_studio.train.shipped import gallery

    manifest = _stable_manifest(tmp_path, corpus)
    work, models = tmp_path / "work", tmp_path / "models"
    stage = next(s for s in gallery.style_stages(manifest, models, work, [], None) if s.name == "the-wave-stable")
    assert stage.command[stage.command.index("--temporal-weight") + 1] == "3e+07"
    assert stage.command[stage.command.index("--run-dir") + 1].endswith("the-wave-stable-tw3e07")
    folder = models / "the-wave-stable"
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), folder, style="the-wave",
                   training={"loss_network": "vgg16:imagenet-caffe", "temporal_weight": 3e7})
    monkeypatch.setattr(gallery, "evaluate_stable_variant", lambda *args, **kwargs: _evaluation(worst_ratio, excess))
    assert stage.finalize(folder) is kept  # True: made ready to ship
    rejected = work / "rejected" / "the-wave-stable-tw3e07"
    assert folder.is_dir() is kept and rejected.is_dir() is not kept
    card = ((folder if kept else rejected) / "README.md").read_text(encoding="utf-8")
    assert "weight 3e+07" in card and ("it meets the gallery's bars" if kept else "does NOT meet") in card
    again = next(s for s in gallery.style_stages(manifest, models, work, [], None) if s.name == "the-wave-stable")
    assert (again.skip_reason is None) is kept
    if not kept:
        assert gallery.run_stages([again], plan=False) == 0  # skipped, with the reason: nothing is trained
        assert "did not meet the bars at temporal weight 3e+07" in caplog.text
        capsys.readouterr()
        assert gallery.run_stages([again], plan=True) == 0  # the plan shows it as a comment, not a command
        assert capsys.readouterr().out.startswith("# the-wave-stable: did not meet the bars")


def test_a_pattern_stable_variant_can_learn_on_the_corpus_but_never_on_its_manifests_held_out_photos(
        tmp_path, env, monkeypatch, caplog) -> None:
    """``stable-content = "corpus"``: that style's stable variant trains on crops of the corpus's training photos,
    written only when it trains, less the ones its own manifest holds out (a sample photo the corpus counts as a
    training photo); its card says so; and with no corpus the run stops with the reason, not a traceback."""
    from dataclasses import replace

    from perceptual_studio.imaging.sample_photos import load_sample_photo
    from perceptual_studio.train.shipped import gallery

    folder = tmp_path / "corpus"
    write_manifest(folder, [
        _record(folder, "pkg/photos/train-a", PHOTO, TRAIN, _image(1)),
        _record(folder, "scikit-image/chelsea", PHOTO, TRAIN, _image(2)),
        _record(folder, "scikit-image/astronaut", PHOTO, HELD_OUT, load_sample_photo("astronaut")),
    ], [], {"pkg": {"version": "1.0", "sha256": "0" * 64}})
    path = tmp_path / "gallery.toml"
    path.write_text('''[content]
photos = ["coffee"]
held_out = ["astronaut", "chelsea"]
crops_per_photo = 3
crop_size = 96
seed = 0
[[style]]
name = "woodcut"
iterations = 5
stable-content = "corpus"
stable-iterations = 4
[[style]]
name = "mosaic"
init = "woodcut"
iterations = 5
[fast]
init = "builtin:stained-glass-fast"
scratch-iterations = 4
finetune-iterations = 3
objective-iterations = 2
[stable]
temporal-weight = 1e7
iterations = 2
corpus-crops-per-photo = 2
''', encoding="utf-8")
    manifest = gallery.read_manifest(path)
    manifest = replace(manifest, content=replace(manifest.content, corpus=folder))
    work, models = tmp_path / "work", tmp_path / "models"
    stages = {s.name: s for s in gallery.style_stages(manifest, models, work, [], None)}
    stage, other = stages["woodcut-stable"], stages["mosaic-stable"]
    content = work / "content-corpus"
    assert stage.command[stage.command.index("--content") + 1] == str(content)
    assert stage.command[stage.command.index("--run-dir") + 1].endswith("woodcut-stable-tw1e07-corpus-4steps")  # apart
    assert stage.command[stage.command.index("--iterations") + 1] == "4" and stage.iterations == 4
    assert other.command[other.command.index("--iterations") + 1] == "2"
    assert other.command[other.command.index("--content") + 1] == str(work / "content") and other.prepare is None
    assert not content.exists()  # written when it trains, not when the plan is drawn
    stage.prepare()
    assert sorted(p.name for p in content.glob("*.jpg")) == ["photos-train-a-000.jpg", "photos-train-a-001.jpg"]
    assert "chelsea" in (content / "SOURCES.md").read_text(encoding="utf-8").split("Held out")[1]

    trained = models / "woodcut-stable"
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), trained, style="woodcut",
                   training={"loss_network": "vgg16:imagenet-caffe", "temporal_weight": 1e7})
    monkeypatch.setattr(gallery, "evaluate_stable_variant", lambda *args, **kwargs: _evaluation(0.4, 0.05))
    assert stage.finalize(trained)
    card = (trained / "README.md").read_text(encoding="utf-8")
    assert "the licensed corpus's training photos" in card and "random crops of 1 photo" in card

    missing = replace(manifest, content=replace(manifest.content, corpus=tmp_path / "no-corpus"))
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), models / "woodcut-fast",
                   style="woodcut", training={"loss_network": "vgg16:imagenet-caffe", "iterations": 2})
    again = next(s for s in gallery.style_stages(missing, tmp_path / "models", tmp_path / "other-work", [], None)
                 if s.name == "woodcut-stable")
    shutil.rmtree(trained)
    assert gallery.run_stages([again], plan=False) == 1
    assert "woodcut-stable" in caplog.text and "corpus" in caplog.text and "Traceback" not in caplog.text


def test_a_fresh_work_directory_does_not_distil_again_a_student_whose_fast_variant_is_shipped(corpus, tmp_path,
                                                                                              capsys):
    from perceptual_studio.train.shipped.gallery import main

    manifest, work, models = _manifest_file(tmp_path), tmp_path / "work", tmp_path / "models"
    args = ["--manifest", str(manifest), "--plan", "--corpus", str(corpus), "--work-dir", str(work),
            "--models-root", str(models)]
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), models / "the-wave-fast",
                   style="the-wave-fast", training={"loss_network": "vgg16:imagenet-caffe", "iterations": 1})
    assert main(args) == 0
    assert "train.distill" in capsys.readouterr().out  # trained for fewer steps than the manifest asks: not finished
    shutil.rmtree(models / "the-wave-fast")
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), models / "the-wave-fast",
                   style="the-wave-fast", training={"loss_network": "vgg16:imagenet-caffe", "iterations": 2})
    assert main(args) == 0
    plan = capsys.readouterr().out
    assert "# the-wave-fast-distilled: the-wave-fast is trained already; skipped" in plan
    assert "# the-wave-fast: finished; skipped" in plan and "train.distill" not in plan
    assert "the-wave-fast-distilled --" not in plan.replace("# the-wave-fast-distilled:", "")  # no command needs it


def test_the_first_student_is_kept_while_another_student_still_starts_from_it():
    from dataclasses import replace
    from unittest.mock import patch

    from perceptual_studio.train.shipped.fast_variants import FastSpec
    from perceptual_studio.train.shipped.gallery import _students_done

    fast = FastSpec("-fast", scratch_iterations=4, finetune_iterations=3, objective_iterations=2)
    objectives = {"a": 2, "b": 2}
    done = dict.fromkeys(objectives, True)
    with patch("perceptual_studio.train.shipped.gallery.is_finished", lambda name, *_: done[name[:-len("-fast")]]):
        assert _students_done(fast, objectives, "a", Path("m")) == {"a": True, "b": True}
        done["b"] = False
        assert _students_done(fast, objectives, "a", Path("m")) == {"a": False, "b": False}
        assert _students_done(replace(fast, init="builtin:x-fast"), objectives, None, Path("m")) == {"a": True,
                                                                                                    "b": False}
