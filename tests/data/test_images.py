"""read_image and image_size on every awkward kind of file, each written with Pillow into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rcnn_cli.data import image_size, read_image
from rcnn_cli.errors import DataError


def _gradient(width: int = 40, height: int = 30) -> np.ndarray:
    """uint8 [H, W, 3] with distinct rows and columns, so a rotation is visible."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 6, yy * 8, (xx + yy) * 3], axis=2).astype(np.uint8)


def test_rgb_png_is_returned_exactly(tmp_path: Path) -> None:
    pixels = _gradient()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out, pixels)


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = _gradient()[:, :, 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (30, 40, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], gray)


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    pixels = _gradient()
    alpha = np.full(pixels.shape[:2], 7, dtype=np.uint8)
    Image.fromarray(np.dstack([pixels, alpha]), mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), pixels)


def test_palette_image(tmp_path: Path) -> None:
    Image.fromarray(_gradient()).convert("P").save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8


def test_16bit_png_keeps_the_top_8_bits(tmp_path: Path) -> None:
    values = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 54).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = read_image(tmp_path / "deep.png")
    expected = (values.astype(np.int64) // 257).astype(np.uint8)
    assert out.shape == (30, 40, 3)
    np.testing.assert_array_equal(out[:, :, 0], expected)
    assert out.max() > 200  # a 16-bit range is scaled down, not clipped to white


def test_cmyk_jpeg(tmp_path: Path) -> None:
    red = np.zeros((30, 40, 3), dtype=np.uint8)
    red[:, :, 0] = 255
    Image.fromarray(red).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    out = read_image(tmp_path / "cmyk.jpg")
    assert out.shape == (30, 40, 3)
    mean = out.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 200 and mean[1] < 50 and mean[2] < 50, mean  # still red, not inverted


@pytest.mark.parametrize(
    ("orientation", "rotate"), [(6, Image.Transpose.ROTATE_270), (3, Image.Transpose.ROTATE_180)]
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, rotate: Image.Transpose) -> None:
    pixels = _gradient()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "rot.png", exif=exif)
    out = read_image(tmp_path / "rot.png")
    expected = np.asarray(Image.fromarray(pixels).transpose(rotate))
    np.testing.assert_array_equal(out, expected)
    if (
        orientation == 6
    ):  # displayed rotated 90 degrees clockwise: the stored bottom-left pixel is at the top-left
        assert out.shape == (40, 30, 3)
        np.testing.assert_array_equal(out[0, 0], pixels[-1, 0])
        np.testing.assert_array_equal(out[0, -1], pixels[0, 0])
    # The header-only size agrees with the decoded, oriented image.
    assert image_size(tmp_path / "rot.png") == (out.shape[1], out.shape[0])


def test_zero_byte_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")


def test_truncated_jpeg_names_the_file(tmp_path: Path) -> None:
    Image.fromarray(_gradient(200, 150)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.jpg: cannot decode image \(truncated or corrupt\)"):
        read_image(tmp_path / "cut.jpg")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello, not a JPEG")
    with pytest.raises(DataError, match=r"notes\.jpg: not an image"):
        read_image(tmp_path / "notes.jpg")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.png: no such image file"):
        read_image(tmp_path / "nope.png")


def test_huge_image_is_refused_from_its_header(tmp_path: Path) -> None:
    # A 1-bit PNG of 12000 x 10000 = 120 megapixels is a few kB on disk; decoding it as RGB
    # would need 360 MB. It must be refused before any pixel is decoded.
    Image.new("1", (12000, 10000)).save(tmp_path / "huge.png")
    assert (tmp_path / "huge.png").stat().st_size < 100_000
    with pytest.raises(
        DataError, match=r"huge\.png: image is 12000x10000 = 120\.0 megapixels, above the limit"
    ):
        read_image(tmp_path / "huge.png")
    with pytest.raises(DataError, match="megapixels"):
        image_size(tmp_path / "huge.png")
    # The limit is an option.
    assert image_size(tmp_path / "huge.png", max_pixels=None) == (12000, 10000)


def test_small_pixel_limit(tmp_path: Path) -> None:
    Image.fromarray(_gradient()).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="above the limit"):
        read_image(tmp_path / "a.png", max_pixels=1000)
    assert read_image(tmp_path / "a.png", max_pixels=1200).shape == (30, 40, 3)


def test_beyond_pillows_own_bomb_limit_is_still_a_clear_error(tmp_path: Path) -> None:
    Image.new("1", (20000, 10000)).save(tmp_path / "bomb.png")  # 200 Mpx: Pillow itself refuses to open it
    with pytest.raises(DataError, match=r"bomb\.png: image too large"):
        read_image(tmp_path / "bomb.png", max_pixels=None)
