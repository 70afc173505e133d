"""Tests for imaging.io: every input kind and Pillow mode becomes 8-bit RGB, and bad uploads fail clearly.

All images are generated inside the tests (tmp_path or in memory); nothing is downloaded.
"""

from __future__ import annotations

import io
import logging
import pathlib
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, features

from perceptual_studio import settings
from perceptual_studio.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageInputError,
    image_to_tensor,
    load_image,
    load_image_tensor,
    resize_to_max_side,
    save_image,
    tensor_to_image,
)

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A minimal PNG built by hand, so headers can claim any size and any bit depth Pillow cannot write."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw_rows))
        + _png_chunk(b"IEND", b"")
    )


def _noise_rgb(height: int = 64, width: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _pixel(image: Image.Image, x: int = 0, y: int = 0) -> tuple[int, int, int]:
    return image.getpixel((x, y))


def _opened(path: pathlib.Path) -> Image.Image:
    """Pillow's own view of a written file (mode, info, frame count), with the file closed again."""
    with Image.open(path) as image:
        getattr(image, "n_frames", 1)  # animated formats count frames lazily, from the open file
        return image


def _assert_rgb(image: Image.Image, size: tuple[int, int]) -> None:
    assert isinstance(image, Image.Image)
    assert image.mode == "RGB"
    assert image.size == size


# ---- modes -------------------------------------------------------------------------------------------


def test_rgb_png_loads_exactly_from_path_bytes_and_stream(tmp_path: pathlib.Path) -> None:
    array = _noise_rgb()
    path = tmp_path / "noise.png"
    Image.fromarray(array).save(path)
    data = path.read_bytes()
    for source in (path, str(path), data, bytearray(data), io.BytesIO(data)):
        image = load_image(source)
        _assert_rgb(image, (48, 64))
        np.testing.assert_array_equal(np.asarray(image), array)


def test_file_object_opened_by_caller_is_left_open(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "noise.png"
    Image.fromarray(_noise_rgb()).save(path)
    with path.open("rb") as stream:
        load_image(stream)
        assert not stream.closed


def test_greyscale_l(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (10, 6), 77).save(path)
    image = load_image(path)
    _assert_rgb(image, (10, 6))
    assert _pixel(image) == (77, 77, 77)


def test_one_bit(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bits.png"
    bits = Image.new("1", (8, 4), 0)
    bits.putpixel((1, 0), 1)
    bits.save(path)
    image = load_image(path)
    assert _pixel(image, 0, 0) == (0, 0, 0)
    assert _pixel(image, 1, 0) == WHITE


def test_la_composites_over_white(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "grey_alpha.png"
    array = np.zeros((4, 4, 2), dtype=np.uint8)
    array[..., 0] = 0
    array[0, 0, 1] = 255  # opaque black
    array[0, 1, 1] = 0  # fully transparent
    Image.fromarray(array).save(path)
    assert _opened(path).mode == "LA"
    image = load_image(path)
    assert _pixel(image, 0, 0) == (0, 0, 0)
    assert _pixel(image, 1, 0) == WHITE


def test_rgba_composites_over_white(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rgba.png"
    array = np.zeros((2, 3, 4), dtype=np.uint8)
    array[0, 0] = (255, 0, 0, 255)
    array[0, 1] = (255, 0, 0, 0)
    array[0, 2] = (0, 0, 0, 128)
    Image.fromarray(array).save(path)
    image = load_image(path)
    assert _pixel(image, 0, 0) == RED
    assert _pixel(image, 1, 0) == WHITE
    grey = _pixel(image, 2, 0)
    assert all(126 <= channel <= 128 for channel in grey)


def test_palette_with_transparency_composites_over_white(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "palette.png"
    palette_image = Image.new("P", (4, 2), 0)
    palette_image.putpalette([0, 0, 255] + [255, 0, 0] + [0] * (254 * 3))
    palette_image.putpixel((1, 0), 1)
    palette_image.save(path, transparency=0)
    reopened = _opened(path)
    assert reopened.mode == "P" and "transparency" in reopened.info
    image = load_image(path)
    assert _pixel(image, 0, 0) == WHITE  # index 0 (blue) is transparent
    assert _pixel(image, 1, 0) == RED


def test_palette_without_transparency(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "palette.gif"
    palette_image = Image.new("P", (4, 2), 0)
    palette_image.putpalette([0, 0, 255] + [0] * (255 * 3))
    palette_image.save(path)
    assert _pixel(load_image(path)) == (0, 0, 255)


def test_cmyk_jpeg(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    assert _opened(path).mode == "CMYK"
    image = load_image(path)
    _assert_rgb(image, (16, 16))
    red, green, blue = _pixel(image, 8, 8)
    assert red > 230 and green < 25 and blue < 25


def test_ycbcr_image() -> None:
    ycbcr = Image.new("RGB", (5, 5), RED).convert("YCbCr")
    red, green, blue = _pixel(load_image(ycbcr))
    assert red > 245 and green < 10 and blue < 10


def test_16bit_grey_png_scales_full_range(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "grey16.png"
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    Image.fromarray(ramp).save(path)
    assert _opened(path).mode.startswith("I")
    array = np.asarray(load_image(path))
    assert array.min() == 0 and array.max() == 255
    assert len(np.unique(array)) > 200  # a clipping convert would make almost everything 255
    # Mid-grey stays mid-grey.
    assert abs(int(array[0, 128, 0]) - 128) <= 1


def test_16bit_big_endian_and_32bit_integer_grey() -> None:
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16).reshape(8, 8)
    big_endian = Image.frombytes("I;16B", (8, 8), ramp.astype(">u2").tobytes())
    array = np.asarray(load_image(big_endian))
    assert array.min() == 0 and array.max() == 255

    wide = Image.fromarray(np.linspace(-5_000_000, 9_000_000, 64).astype(np.int32).reshape(8, 8))
    assert wide.mode == "I"
    array = np.asarray(load_image(wide))
    assert array.min() == 0 and array.max() == 255


def test_16bit_rgb_png(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "rgb16.png"
    row = b"\x00" + np.tile(np.array([65535, 40000, 0], dtype=">u2"), 5).tobytes()
    path.write_bytes(_png_bytes(5, 3, 16, 2, row * 3))
    image = load_image(path)
    _assert_rgb(image, (5, 3))
    red, green, blue = _pixel(image)
    assert red == 255 and abs(green - 40000 / 257) <= 1 and blue == 0


@pytest.mark.parametrize(
    ("values", "expected_min", "expected_max"),
    [(np.linspace(0.0, 1.0, 64), 0, 255), (np.linspace(-3.0, 7.0, 64), 0, 255)],
)
def test_float_grey_mode_f(values: np.ndarray, expected_min: int, expected_max: int) -> None:
    image = Image.fromarray(values.astype(np.float32).reshape(8, 8))
    assert image.mode == "F"
    array = np.asarray(load_image(image))
    assert array.min() == expected_min and array.max() == expected_max


def test_premultiplied_modes() -> None:
    transparent = Image.frombytes("RGBa", (1, 1), bytes([0, 0, 0, 0]))
    assert _pixel(load_image(transparent)) == WHITE
    half_black = Image.frombytes("La", (1, 1), bytes([0, 128]))
    assert all(126 <= channel <= 128 for channel in _pixel(load_image(half_black)))


def test_exif_orientation_is_applied(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "phone.jpg"
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = RED
    array[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    image = load_image(path)
    _assert_rgb(image, (20, 40))
    top, bottom = _pixel(image, 10, 5), _pixel(image, 10, 35)
    assert top[0] > 200 and top[2] < 50  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 50


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_image_gives_first_frame(tmp_path: pathlib.Path, suffix: str) -> None:
    if suffix == ".webp" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    path = tmp_path / f"animated{suffix}"
    frames = [Image.new("RGB", (8, 8), colour) for colour in (RED, (0, 0, 255), (0, 255, 0))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    assert _opened(path).n_frames == 3
    red, green, blue = _pixel(load_image(path), 4, 4)
    assert red > 240 and green < 15 and blue < 15


def test_pil_input_is_not_mutated_or_returned() -> None:
    original = Image.new("RGB", (6, 4), RED)
    loaded = load_image(original)
    assert loaded is not original
    loaded.putpixel((0, 0), WHITE)
    assert _pixel(original) == RED


# ---- numpy inputs (what Gradio hands over) -------------------------------------------------------------


def test_numpy_uint8_rgb_exact() -> None:
    array = _noise_rgb()
    image = load_image(array)
    _assert_rgb(image, (48, 64))
    np.testing.assert_array_equal(np.asarray(image), array)
    image.putpixel((0, 0), (1, 2, 3))
    np.testing.assert_array_equal(array, _noise_rgb())  # the caller's array is not shared


def test_numpy_uint8_rgba_composites_over_white() -> None:
    array = np.zeros((2, 2, 4), dtype=np.uint8)
    array[0, 0] = (255, 0, 0, 255)
    array[0, 1] = (255, 0, 0, 0)
    image = load_image(array)
    assert _pixel(image, 0, 0) == RED
    assert _pixel(image, 1, 0) == WHITE


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_numpy_uint8_grey(shape: tuple[int, ...]) -> None:
    array = np.full(shape, 90, dtype=np.uint8)
    image = load_image(array)
    _assert_rgb(image, (7, 5))
    assert _pixel(image) == (90, 90, 90)


def test_numpy_uint16_scales_full_range() -> None:
    grey = np.linspace(0, 65535, 100).round().astype(np.uint16).reshape(10, 10)
    array = np.asarray(load_image(grey))
    assert array.min() == 0 and array.max() == 255
    colour = np.stack([grey, np.zeros_like(grey), np.full_like(grey, 65535)], axis=-1)
    array = np.asarray(load_image(colour))
    assert array[..., 0].max() == 255 and array[..., 1].max() == 0 and array[..., 2].min() == 255


def test_numpy_float_and_python_ints() -> None:
    floats = np.full((3, 3, 3), 0.5, dtype=np.float64)
    assert _pixel(load_image(floats)) == (128, 128, 128)
    ints = np.array([[0, 255], [10, 20]])  # int64 from Python ints: 8-bit values, not 16-bit
    assert _pixel(load_image(ints), 1, 0) == WHITE


def test_numpy_bad_shape_and_zero_size() -> None:
    with pytest.raises(ImageInputError, match=r"has shape \(3, 4, 5, 6\)"):
        load_image(np.zeros((3, 4, 5, 6), dtype=np.uint8))
    with pytest.raises(ImageInputError, match="zero size"):
        load_image(np.zeros((0, 4, 3), dtype=np.uint8))


def test_zero_size_pil_image() -> None:
    with pytest.raises(ImageInputError, match=r"zero size \(0 x 0 pixels\)"):
        load_image(Image.new("RGB", (0, 0)))


# ---- pixel limits and decompression bombs -------------------------------------------------------------


def test_default_limit_is_40_megapixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERCEPTUAL_MAX_PIXELS", raising=False)
    assert DEFAULT_MAX_PIXELS == 40_000_000


def test_oversized_image_is_refused_before_decoding(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERCEPTUAL_MAX_PIXELS", raising=False)
    path = tmp_path / "huge.png"
    # 8000 x 6000 = 48 MP: above our 40 MP default but below Pillow's own 89 MP warning.
    path.write_bytes(_png_bytes(8000, 6000, 1, 0, b"\x00" * (1 + 1000)))

    def refuse_decode(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse_decode)
    with pytest.raises(
        ImageInputError,
        match=r"'huge\.png' is 8000 x 6000 = 48\.0 megapixels, above the limit of 40\.0 megapixels",
    ):
        load_image(path)


@pytest.mark.parametrize("side", [10_000, 20_000])  # 100 MP trips Pillow's warning, 400 MP its error
def test_pillow_decompression_bomb_checks_become_input_errors(tmp_path: pathlib.Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(side, side, 1, 0, b"\x00" * (1 + side // 8)))
    with pytest.raises(ImageInputError, match=r"'bomb\.png' declares \d+\.\d megapixels, above the limit of \d+\.\d megapixels"):
        load_image(path, max_pixels=10**12)


def test_real_one_bit_bomb_with_default_limit(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bomb.png"
    Image.new("1", (8_000, 8_000)).save(path)  # 64 MP of zeros compresses to a few kilobytes
    assert path.stat().st_size < 100_000
    with pytest.raises(ImageInputError, match="above the limit of 40.0 megapixels"):
        load_image(path)


def test_limit_from_argument_and_environment(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    image = Image.new("RGB", (20, 10))
    with pytest.raises(ImageInputError, match=r"20 x 10 = 0\.0002 megapixels, above the limit of 0\.0001"):
        load_image(image, max_pixels=100)
    monkeypatch.setenv("PERCEPTUAL_MAX_PIXELS", "100")  # read at call time, not import time
    with pytest.raises(ImageInputError, match="above the limit"):
        load_image(image)
    assert load_image(image, max_pixels=200).size == (20, 10)
    # An unusable value: settings.py's one behaviour, a warning naming it, then the default (40 MP).
    monkeypatch.setenv("PERCEPTUAL_MAX_PIXELS", "lots")
    monkeypatch.setattr(settings, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="perceptual_studio.settings"):
        assert load_image(image).size == (20, 10)
    assert "PERCEPTUAL_MAX_PIXELS='lots'" in caplog.text


def test_limit_applies_to_numpy_input() -> None:
    with pytest.raises(ImageInputError, match="The image array is 30 x 20"):
        load_image(np.zeros((20, 30, 3), dtype=np.uint8), max_pixels=500)


# ---- broken inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["PNG", "JPEG"])
def test_truncated_image(tmp_path: pathlib.Path, file_format: str) -> None:
    data = io.BytesIO()
    Image.fromarray(_noise_rgb(128, 128)).save(data, file_format)
    path = tmp_path / f"cut.{file_format.lower()}"
    path.write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    with pytest.raises(ImageInputError, match=rf"'cut\.{file_format.lower()}' is truncated or corrupt"):
        load_image(path)


@pytest.mark.parametrize("length", [8, 20])
def test_png_cut_inside_header(tmp_path: pathlib.Path, length: int) -> None:
    data = io.BytesIO()
    Image.fromarray(_noise_rgb()).save(data, "PNG")
    path = tmp_path / "stub.png"
    path.write_bytes(data.getvalue()[:length])
    # Only the signature survives, yet the message still says "truncated" rather than "not an image".
    with pytest.raises(ImageInputError, match=r"'stub\.png' (looks like a PNG file but )?is truncated or corrupt"):
        load_image(path)


def test_truncated_images_are_not_globally_allowed() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", b"just some text, not pixels\n"),
        ("paper.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
        ("model.pth", b"PK\x03\x04" + b"\x00" * 64),
    ],
)
def test_non_image_file(tmp_path: pathlib.Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(
        ImageInputError,
        match=re.escape(f"'{name}' is not a recognised image. Supported formats: PNG, JPEG, WebP, BMP, TIFF, GIF"),
    ):
        load_image(path)


def test_unsupported_pillow_format_is_not_opened(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "icon.ico"
    Image.new("RGB", (16, 16), RED).save(path)
    with pytest.raises(ImageInputError, match="is not a recognised image"):
        load_image(path)


def test_empty_inputs(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"'empty\.png' is empty \(0 bytes\)"):
        load_image(path)
    with pytest.raises(ImageInputError, match=r"The image is empty"):
        load_image(b"")


def test_missing_path_and_folder(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ImageInputError, match=r"'.*nowhere\.png' was not found"):
        load_image(tmp_path / "nowhere.png")
    with pytest.raises(ImageInputError, match="is a folder"):
        load_image(tmp_path)


def test_no_image_and_wrong_type() -> None:
    with pytest.raises(ImageInputError, match="No image was provided"):
        load_image(None)
    with pytest.raises(TypeError):
        load_image(12345)


def test_file_name_from_stream_is_used(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"definitely not an image")
    with path.open("rb") as stream, pytest.raises(ImageInputError, match=r"'upload\.bin'"):
        load_image(stream)


# ---- tensors -----------------------------------------------------------------------------------------


def test_image_to_tensor_layout() -> None:
    array = _noise_rgb(9, 7)
    tensor = image_to_tensor(Image.fromarray(array))
    assert tensor.shape == (1, 3, 9, 7)
    assert tensor.dtype == torch.float32
    assert tensor.is_contiguous()
    assert 0.0 <= tensor.min() and tensor.max() <= 1.0
    assert tensor[0, 0, 2, 3].item() == pytest.approx(array[2, 3, 0] / 255)


def test_round_trip_is_exact_for_uint8() -> None:
    array = _noise_rgb(33, 17)
    image = tensor_to_image(image_to_tensor(Image.fromarray(array)))
    _assert_rgb(image, (17, 33))
    np.testing.assert_array_equal(np.asarray(image), array)


def test_tensor_to_image_accepts_3d_bfloat16_and_clamps() -> None:
    tensor = torch.rand(3, 5, 4).to(torch.bfloat16)
    image = tensor_to_image(tensor)
    _assert_rgb(image, (4, 5))
    expected = (tensor.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(np.asarray(image), expected)

    wild = torch.tensor([[[-1.0, 2.0, float("nan")]]] * 3)
    assert np.asarray(tensor_to_image(wild))[0].tolist() == [[0, 0, 0], [255, 255, 255], [0, 0, 0]]


def test_tensor_to_image_does_not_modify_its_input() -> None:
    tensor = torch.full((1, 3, 2, 2), 0.5)
    tensor_to_image(tensor)
    assert torch.all(tensor == 0.5)


def test_tensor_to_image_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="batch of 2"):
        tensor_to_image(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        tensor_to_image(torch.rand(1, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        tensor_to_image(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_load_image_tensor(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "grey.png"
    Image.new("L", (6, 3), 51).save(path)
    tensor = load_image_tensor(path)
    assert tensor.shape == (1, 3, 3, 6)
    assert torch.allclose(tensor, torch.full_like(tensor, 0.2))


# ---- resizing and saving -----------------------------------------------------------------------------


def test_resize_to_max_side() -> None:
    image = Image.new("RGB", (400, 100))
    resized = resize_to_max_side(image, 200)
    assert resized.size == (200, 50)
    tall = resize_to_max_side(Image.new("RGB", (30, 3000)), 256)
    assert tall.size == (3, 256)
    assert resize_to_max_side(image, 1000) is image  # never upscales
    assert resize_to_max_side(image, None) is image
    with pytest.raises(ValueError):
        resize_to_max_side(image, 0)


def test_save_image_png_round_trip_and_parent_creation(tmp_path: pathlib.Path) -> None:
    array = _noise_rgb()
    path = save_image(Image.fromarray(array), tmp_path / "a" / "b" / "out.png")
    assert path == tmp_path / "a" / "b" / "out.png" and path.is_file()
    np.testing.assert_array_equal(np.asarray(load_image(path)), array)


def test_save_image_tensor_as_jpeg(tmp_path: pathlib.Path) -> None:
    tensor = torch.zeros(1, 3, 8, 8)
    tensor[:, 0] = 1.0
    path = save_image(tensor, str(tmp_path / "out.JPEG"))
    with Image.open(path) as saved:
        assert saved.format == "JPEG" and saved.mode == "RGB" and saved.size == (8, 8)
    red, green, blue = _pixel(load_image(path), 4, 4)
    assert red > 245 and green < 10 and blue < 10


def test_save_image_flattens_alpha_and_rejects_unknown_suffix(tmp_path: pathlib.Path) -> None:
    rgba = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    path = save_image(rgba, tmp_path / "flat.jpg")
    assert _pixel(load_image(path)) == pytest.approx(WHITE, abs=2)
    with pytest.raises(ValueError, match=r"\.png, \.jpg or \.jpeg"):
        save_image(rgba, tmp_path / "out.tiff")
