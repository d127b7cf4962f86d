"""Image loading: every common flavour becomes 8-bit RGB the right way up; bad files raise ImageError."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clearsight.errors import ImageError
from clearsight.io import bundled_sample, list_images, load_image, to_tensor


@pytest.fixture()
def rgb_array() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(40, 60, 3), dtype=np.uint8)


def test_bundled_sample_loads():
    img = load_image(bundled_sample())
    assert img.mode == "RGB" and min(img.size) >= 224


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
def test_rgb_formats(tmp_path, rgb_array, fmt, ext):
    path = tmp_path / f"x.{ext}"
    Image.fromarray(rgb_array).save(path, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (60, 40)
    if fmt != "JPEG":
        assert np.array_equal(np.asarray(img), rgb_array)


def test_grayscale_png_is_replicated(tmp_path, rgb_array):
    gray = rgb_array[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    arr = np.asarray(load_image(tmp_path / "g.png"))
    assert arr.shape == (40, 60, 3)
    assert all(np.array_equal(arr[..., c], gray) for c in range(3))


def test_sixteen_bit_png_scales_not_clips(tmp_path):
    values = np.linspace(0, 65535, 40 * 60).reshape(40, 60).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    arr = np.asarray(load_image(tmp_path / "d.png"))[..., 0].astype(int)
    assert arr.min() == 0 and arr.max() == 255
    assert np.all(np.diff(arr.ravel()) >= 0)  # monotone: 16-bit values were scaled, not wrapped


def test_palette_and_rgba(tmp_path, rgb_array):
    Image.fromarray(rgb_array).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").mode == "RGB"
    rgba = np.dstack([rgb_array, np.zeros((40, 60), np.uint8)])  # fully transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    arr = np.asarray(load_image(tmp_path / "a.png"))
    assert np.all(arr == 255)  # transparent pixels composite onto white


def test_exif_orientation_is_applied(tmp_path, rgb_array):
    img = Image.fromarray(rgb_array)  # 60 wide, 40 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").size == (40, 60)


def test_cmyk_jpeg(tmp_path, rgb_array):
    Image.fromarray(rgb_array).convert("CMYK").save(tmp_path / "c.jpg")
    assert load_image(tmp_path / "c.jpg").mode == "RGB"


@pytest.mark.parametrize("case", ["missing", "folder", "text", "truncated", "tiny", "empty"])
def test_bad_files_raise_clear_errors(tmp_path, rgb_array, case):
    path = tmp_path / "bad.jpg"
    if case == "folder":
        path = tmp_path
    elif case == "text":
        path.write_text("this is not an image")
    elif case == "truncated":
        Image.fromarray(np.tile(rgb_array, (8, 8, 1))).save(path, quality=95)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif case == "tiny":
        Image.fromarray(rgb_array[:8, :8]).save(path)
    elif case == "empty":
        path.write_bytes(b"")
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(path) in str(info.value) or case == "folder"


def test_to_tensor_range(rgb_array):
    t = to_tensor(Image.fromarray(rgb_array))
    assert t.shape == (3, 40, 60) and float(t.min()) >= 0 and float(t.max()) <= 1


def test_list_images(tmp_path, rgb_array):
    with pytest.raises(ImageError):
        list_images(tmp_path)
    Image.fromarray(rgb_array).save(tmp_path / "b.PNG")
    Image.fromarray(rgb_array).save(tmp_path / "a.jpeg")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_images(tmp_path)] == ["a.jpeg", "b.PNG"]
