"""The licensed image corpus (imaging/corpus): its readers of .rcc, .deb and licence files, the jigsaw
reassembly, the split, and whole builds, all on small fixtures built here (never the real packages)."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from perceptual_studio.imaging.corpus import HELD_OUT, PAINTING, PHOTO, TRAIN, CorpusError, read_corpus, split_of
from perceptual_studio.imaging.corpus.__main__ import main as corpus_main
from perceptual_studio.imaging.corpus.build import Sources, build
from perceptual_studio.imaging.corpus.deb import DebError, read_deb, write_deb
from perceptual_studio.imaging.corpus.jigsaw import JigsawError, assemble, parse_board
from perceptual_studio.imaging.corpus.licences import PUBLIC_DOMAIN, licence_for, parse_paragraphs, spdx_id
from perceptual_studio.imaging.corpus.packages import PackagePin
from perceptual_studio.imaging.corpus.rcc import RccError, read_rcc, write_rcc


def photo(seed: int, size=(200, 150), fmt="WEBP") -> bytes:
    """A distinct smooth picture (random blobs), encoded."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------ readers

def test_rcc_round_trip_nested_and_compressed():
    files = {"a/b/c.webp": photo(1), "a/README": b"Copyright: X\nLicense: CC0-1.0\nFiles: b/c.webp\n", "top": b"x"}
    for compress in (True, False):
        assert read_rcc(write_rcc(files, compress=compress)) == files


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"nope" + b[4:], "no 'qres' magic"),
    (lambda b: b[:40], "truncated"),
    (lambda b: b[:-30], "truncated"),
])
def test_a_damaged_rcc_says_what_is_wrong(damage, message):
    data = write_rcc({"d/x.bin": b"y" * 100, "d/z.bin": b"w" * 50}, compress=False)
    with pytest.raises(RccError, match=message):
        read_rcc(damage(data))


def test_deb_round_trip_keeps_only_the_wanted_files(tmp_path):
    path = tmp_path / "pkg_1.0_all.deb"
    path.write_bytes(write_deb({"usr/share/a/x.png": b"png", "usr/share/b/y.txt": b"text"}))
    assert read_deb(path, lambda p: p.startswith("usr/share/a/")) == {"usr/share/a/x.png": b"png"}


def test_a_truncated_or_foreign_deb_is_refused(tmp_path):
    good = write_deb({"usr/share/a/x.png": b"p" * 5000})
    truncated, foreign = tmp_path / "t_1_all.deb", tmp_path / "f_1_all.deb"
    truncated.write_bytes(good[: len(good) // 2])
    foreign.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DebError, match="truncated"):
        read_deb(truncated, lambda p: True)
    with pytest.raises(DebError, match="not a Debian package"):
        read_deb(foreign, lambda p: True)


@pytest.mark.parametrize("given, expected", [
    ("CC-BY-SA 4.0", "CC-BY-SA-4.0"), ("CC0-1.0", "CC0-1.0"), ("Public domain", PUBLIC_DOMAIN),
    ("GPLv3 or later", "GPL-3.0-or-later"), ("GPL-2+", "GPL-2.0-or-later"), ("CC-BY 4.0", "CC-BY-4.0"),
    ("Apache-2.0 AND BSD-3-Clause", "Apache-2.0 AND BSD-3-Clause"), ("All rights reserved", None),
    ("Apache-2.0 AND Mystery", None),
])
def test_licence_names_become_spdx_ids(given, expected):
    assert spdx_id(given) == expected


def test_copyright_paragraphs_bare_file_lines_and_last_match_wins():
    text = ("Files: *\nCopyright: 2000 Everyone\nLicense: Apache-2.0\n\n"
            "Files: photos/*.jpg\n       extra.jpg\nCopyright: 2008, Ann Example <ann@example.org>\nLicense: GPL-2+\n\n"
            "Copyright: Bob\nLicense: CC0-1.0\nbare.webp\nComment: based on a photo by Carol\n")
    paragraphs = parse_paragraphs(text)
    assert licence_for("photos/a.jpg", paragraphs).licence == "GPL-2+"
    assert licence_for("extra.jpg", paragraphs).copyright.startswith("2008, Ann")
    assert licence_for("other.txt", paragraphs).licence == "Apache-2.0"
    bare = licence_for("bare.webp", paragraphs)
    assert bare.licence == "CC0-1.0" and bare.comment == "based on a photo by Carol"


# ------------------------------------------------------------------------------------------------ jigsaw

def jigsaw_fixture(painting: Image.Image, board_size=(120, 80), origin=(10, 5)):
    """Cut ``painting`` into 2 x 2 pieces whose masks interlock (a tab of each left piece reaches into its right
    neighbour), and the board text that places them, as GCompris does."""
    w, h = painting.size
    half_w, half_h = w // 2, h // 2
    tab = np.zeros((h, w), bool)
    tab[half_h // 2 - 4: half_h // 2 + 4, half_w: half_w + 6] = True  # the tab of the top-left piece
    owner = np.zeros((h, w), int)
    owner[:, half_w:] = 1
    owner[half_h:, :] += 2
    owner[tab] = 0
    pieces, entries = {}, []
    rgba = np.dstack([np.asarray(painting), np.full((h, w), 255, np.uint8)])
    for index in range(4):
        mask = owner == index
        ys, xs = np.nonzero(mask)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        crop = rgba[top:bottom, left:right].copy()
        crop[..., 3] = np.where(mask[top:bottom, left:right], 255, 0)
        buffer = io.BytesIO()
        Image.fromarray(crop, "RGBA").save(buffer, "WEBP", lossless=True)
        name = f"image/piece_{index}.webp"
        pieces[name] = buffer.getvalue()
        cx, cy = origin[0] + (left + right) / 2, origin[1] + (top + bottom) / 2
        entries.append(f'{{ "pixmapfile" : "{name}", "x" : "{cx / board_size[0]:.6f}", "y" : "{cy / board_size[1]:.6f}" }}')
    board = ('QtObject {\n property string instruction: qsTr("Jane Painter, A Test Landscape - 1888")\n'
             ' property var levels : [ { "pixmapfile" : "image/bg.svg", "type" : "SHAPE_BACKGROUND_IMAGE", '
             f'"width": {board_size[0]}, "height": {board_size[1]} }}, ' + ", ".join(entries) + " ]\n}\n")
    return board, pieces


def test_jigsaw_pieces_reassemble_into_the_painting():
    painting = Image.open(io.BytesIO(photo(7, (64, 48), "PNG"))).convert("RGB")
    board_text, pieces = jigsaw_fixture(painting)
    board = parse_board(board_text)
    assert (board.artist, board.title, board.year) == ("Jane Painter", "A Test Landscape", "1888")
    rebuilt = assemble(board, pieces)
    assert rebuilt.size == painting.size
    assert np.abs(np.asarray(rebuilt, int) - np.asarray(painting, int)).max() <= 1


def test_a_board_with_a_missing_piece_or_a_gap_is_refused():
    painting = Image.open(io.BytesIO(photo(8, (64, 48), "PNG"))).convert("RGB")
    board_text, pieces = jigsaw_fixture(painting)
    board = parse_board(board_text)
    with pytest.raises(JigsawError, match="missing"):
        assemble(board, {k: v for k, v in pieces.items() if not k.endswith("1.webp")})
    gappy = parse_board(board_text.replace('"image/piece_3.webp"', '"image/piece_0.webp"'))
    with pytest.raises(JigsawError, match="cover only"):
        assemble(gappy, pieces)


# ------------------------------------------------------------------------------------------------ split

def test_the_split_depends_on_the_source_group_alone():
    groups = [f"https://example.org/photo-{i}.jpg" for i in range(2000)]
    splits = [split_of(g) for g in groups]
    assert splits == [split_of(g) for g in groups]  # deterministic
    share = splits.count(HELD_OUT) / len(splits)
    assert 0.17 < share < 0.23
    assert split_of(groups[0], PAINTING) == TRAIN  # paintings are style images, never evaluation photos


# ------------------------------------------------------------------------------------------------ builds

def fixture_packages(tmp_path):
    """Three small .debs in the layout of the real ones, and Sources that pin them."""
    readme = ("Copyright: Ann Example\nSource: https://example.org/goat.jpg\nLicense: CC-BY-SA-4.0\nFiles: goat.webp\n\n"
              "Copyright: Bob Example\nLicense: Public Domain\nFiles: pig.webp\n\n"
              "Copyright: Carol Example\nSource: https://example.org/owl.jpg\nLicense: All rights reserved\nFiles: owl.webp\n\n"
              "Copyright: Dan Example\nLicense: CC0-1.0\nFiles:\n tiny.webp\n twin.webp\n")
    erase = write_rcc({"gcompris/src/activities/erase/resource/README": readme.encode(),
                       "gcompris/src/activities/erase/resource/goat.webp": photo(1),
                       "gcompris/src/activities/erase/resource/pig.webp": photo(2),
                       "gcompris/src/activities/erase/resource/owl.webp": photo(3),
                       "gcompris/src/activities/erase/resource/tiny.webp": photo(4, (60, 40)),
                       "gcompris/src/activities/erase/resource/twin.webp": photo(1),
                       "gcompris/src/activities/erase/Erase.qml": b"import QtQuick 2.12"})
    details_readme = ("Copyright: GCompris\nLicense: Public domain\nFiles:\nStarry_background.webp\n"
                      "Comment: based on an original painting by Van Gogh, Public domain image.\n\n"
                      "Copyright: GCompris\nLicense: CC-BY-SA 4.0\nTower_background.webp\n"
                      "Comment: based on a photo by Erin Example, license CC-BY-SA 3.0, source at https://example.org/tower.jpg\n")
    details = write_rcc({"gcompris/src/activities/details/resource/image/README": details_readme.encode(),
                         "gcompris/src/activities/details/resource/image/Starry_background.webp": photo(5),
                         "gcompris/src/activities/details/resource/image/Tower_background.webp": photo(6)})
    board, pieces = jigsaw_fixture(Image.open(io.BytesIO(photo(7, (200, 140), "PNG"))).convert("RGB"), (240, 160))
    paintings = write_rcc({"gcompris/src/activities/paintings/resource/board/board1_0.qml": board.encode(),
                           "gcompris/src/activities/paintings/resource/image/README":
                               b"Copyright: Nicolas Pioch\nLicense: GPLv3 or later\nFiles:\n  piece_*.webp\n",
                           **{f"gcompris/src/activities/paintings/resource/{k}": v for k, v in pieces.items()}})
    rcc = "usr/share/gcompris-qt/rcc"
    mate_copyright = b"Files: nature/*.jpg\nCopyright: 2008, Fay Example <fay@example.org>\nLicense: GPL-2+\n"
    opencv_copyright = b"Files: *\nCopyright: 2000-2022, Intel Corporation\nLicense: Apache-2.0 AND BSD-3-Clause\n"
    contents = {
        "gcompris-qt-data": {f"{rcc}/erase.rcc": erase, f"{rcc}/details.rcc": details, f"{rcc}/paintings.rcc": paintings},
        "mate-backgrounds": {"usr/share/backgrounds/mate/nature/Lake.jpg": photo(9, fmt="JPEG"),
                             "usr/share/backgrounds/mate/abstract/Swirl.png": photo(10, fmt="PNG"),
                             "usr/share/doc/mate-backgrounds/copyright": mate_copyright},
        "opencv-doc": {"usr/share/doc/opencv-doc/examples/data/fruits.jpg": photo(11, fmt="JPEG"),
                       "usr/share/doc/opencv-doc/examples/data/baboon.jpg": photo(12, fmt="JPEG"),
                       "usr/share/doc/opencv-doc/copyright": opencv_copyright},
    }
    debs, pins = [], {}
    for name, files in contents.items():
        data = write_deb(files, package=name)
        path = tmp_path / f"{name}_1.0_all.deb"
        path.write_bytes(data)
        debs.append(path)
        pins[name] = PackagePin(name, "1.0", hashlib.sha256(data).hexdigest())
    specs = {
        "gcompris-qt-data": {"rcc_dir": rcc, "photo_activities": ["erase"], "paintings_activity": "paintings",
                             "details_activity": "details"},
        "mate-backgrounds": {"root": "usr/share/backgrounds/mate", "copyright": "usr/share/doc/mate-backgrounds/copyright",
                             "photos": ["nature/*.jpg"]},
        "opencv-doc": {"root": "usr/share/doc/opencv-doc/examples/data", "copyright": "usr/share/doc/opencv-doc/copyright",
                       "photos": ["fruits.jpg", "baboon.jpg", "missing.jpg"], "excluded": {"baboon.jpg": "unknown holder"}},
    }
    return debs, Sources(pins, specs, ())


def test_a_build_from_local_debs_records_every_image_and_what_it_left_out(tmp_path):
    debs, sources = fixture_packages(tmp_path)
    out = tmp_path / "corpus"
    images, left_out = build(out, debs=debs, sources=sources, min_held_out=0)
    corpus = read_corpus(out)
    by_id = {i.id: i for i in corpus.images}
    assert set(by_id) == {
        "gcompris-qt-data/erase/goat", "gcompris-qt-data/erase/pig", "gcompris-qt-data/details/Starry",
        "gcompris-qt-data/details/Tower", "gcompris-qt-data/paintings/jane-painter-a-test-landscape",
        "mate-backgrounds/nature/Lake", "opencv-doc/fruits"}
    goat = by_id["gcompris-qt-data/erase/goat"]
    assert (goat.kind, goat.licence, goat.author, goat.source_url) == (PHOTO, "CC-BY-SA-4.0", "Ann Example",
                                                                      "https://example.org/goat.jpg")
    assert goat.group == "https://example.org/goat.jpg" and goat.split == split_of(goat.group)
    assert goat.package_path.endswith("erase.rcc:gcompris/src/activities/erase/resource/goat.webp")
    starry, tower = by_id["gcompris-qt-data/details/Starry"], by_id["gcompris-qt-data/details/Tower"]
    assert (starry.kind, starry.author, starry.licence) == (PAINTING, "Vincent van Gogh", PUBLIC_DOMAIN)
    assert (tower.kind, tower.author, tower.source_url) == (PHOTO, "Erin Example", "https://example.org/tower.jpg")
    painting = by_id["gcompris-qt-data/paintings/jane-painter-a-test-landscape"]
    assert (painting.kind, painting.licence, painting.year, painting.width, painting.height) == (
        PAINTING, "GPL-3.0-or-later", "1888", 200, 140)
    assert by_id["mate-backgrounds/nature/Lake"].author == "Fay Example"
    assert by_id["opencv-doc/fruits"].licence == "Apache-2.0 AND BSD-3-Clause"
    reasons = {entry["path"].rsplit("/", 1)[-1]: entry["reason"] for entry in corpus.left_out}
    assert reasons["owl.webp"] == "unknown licence 'All rights reserved'"
    assert reasons["tiny.webp"].startswith("too small")
    assert reasons["twin.webp"] == "duplicate of gcompris-qt-data/erase/goat"
    assert reasons["baboon.jpg"] == "unknown holder" and reasons["missing.jpg"] == "not in the package"
    for image in corpus.images:  # every file is written as 8-bit RGB and matches its recorded hash
        data = corpus.path(image).read_bytes()
        assert hashlib.sha256(data).hexdigest() == image.sha256
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.mode == "RGB" and opened.size == (image.width, image.height)
    assert len(images) == 7 and len(left_out) == len(corpus.left_out)


def test_a_package_that_does_not_match_its_pin_stops_the_build_and_keeps_the_old_corpus(tmp_path):
    debs, sources = fixture_packages(tmp_path)
    out = tmp_path / "corpus"
    build(out, debs=debs, sources=sources, min_held_out=0)
    before = (out / "manifest.json").read_bytes()
    tampered = debs[1].read_bytes()
    debs[1].write_bytes(tampered[:-10] + b"0123456789")
    with pytest.raises(CorpusError, match="does not match the pinned mate-backgrounds"):
        build(out, debs=debs, sources=sources, min_held_out=0)
    assert (out / "manifest.json").read_bytes() == before
    images, left_out = build(out, debs=debs, sources=sources, skip_missing=True, min_held_out=0)
    assert not any(i.package == "mate-backgrounds" for i in images)
    assert any(e["reason"].startswith("package unavailable") for e in left_out)


def test_too_few_held_out_photos_writes_nothing(tmp_path):
    debs, sources = fixture_packages(tmp_path)
    with pytest.raises(CorpusError, match="held-out photos"):
        build(tmp_path / "corpus", debs=debs, sources=sources, min_held_out=50)
    assert not (tmp_path / "corpus").exists() and not (tmp_path / "corpus.partial").exists()


def test_the_command_line_reports_errors_in_one_line(tmp_path, capsys):
    truncated = tmp_path / "gcompris-qt-data_3.1-2_all.deb"
    truncated.write_bytes(b"!<arch>\n" + b"x" * 30)
    assert corpus_main(["build", "--out", str(tmp_path / "c"), "--deb", str(truncated)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "does not match the pinned gcompris-qt-data" in err and "Traceback" not in err
    assert corpus_main(["show", "--corpus", str(tmp_path / "none")]) == 1
    assert "python -m imaging.corpus build" in capsys.readouterr().err
    unknown = tmp_path / "someother_1.0_all.deb"
    unknown.write_bytes(write_deb({}))
    assert corpus_main(["build", "--out", str(tmp_path / "c"), "--deb", str(unknown)]) == 1
    assert "not a package the corpus is built from" in capsys.readouterr().err


def test_a_damaged_manifest_says_how_to_rebuild(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CorpusError, match="rebuild it"):
        read_corpus(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(CorpusError, match="unknown format"):
        read_corpus(tmp_path)


def test_the_pinned_sources_name_the_three_packages():
    from perceptual_studio.imaging.corpus.build import read_sources

    sources = read_sources()
    assert set(sources.pins) == {"gcompris-qt-data", "mate-backgrounds", "opencv-doc"}
    assert all(len(pin.sha256) == 64 for pin in sources.pins.values())


def test_a_packed_copy_keeps_the_records_and_the_split_with_smaller_files(tmp_path):
    from perceptual_studio.imaging.corpus.pack import pack

    debs, sources = fixture_packages(tmp_path)
    build(tmp_path / "corpus", debs=debs, sources=sources, min_held_out=0)
    corpus = read_corpus(tmp_path / "corpus")
    small = read_corpus(pack(corpus, tmp_path / "small", max_side=100))
    photos = {i.id: i for i in corpus.images if i.kind == PHOTO}
    assert {i.id for i in small.images} == set(photos)  # paintings are left out unless asked for
    for image in small.images:
        assert image.split == photos[image.id].split and image.licence == photos[image.id].licence
        assert max(image.width, image.height) <= 100 and image.file.endswith(".jpg")
        assert hashlib.sha256(small.path(image).read_bytes()).hexdigest() == image.sha256
