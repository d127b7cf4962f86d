"""Reading images from disk into RGB, robustly.

Photos arrive in every flavour: grayscale, palette, RGBA, 16-bit PNGs, CMYK JPEGs, WebP, phone pictures
whose orientation lives in EXIF. This module turns each into an 8-bit RGB ``PIL.Image`` the right way up,
and turns every failure (missing, unreadable, truncated, not an image, smaller than a patch) into an
:class:`~clearsight.errors.ImageError` that says which file and why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

#: Smallest side we accept: one ViT patch. Anything smaller cannot be explained meaningfully.
MIN_SIDE = 16

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

PathLike = str | os.PathLike


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, scaling 16-bit and float data instead of clipping it."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16"):
            arr = arr / 65535.0
        elif img.mode == "I":
            hi = 65535.0 if arr.max() > 255 else 255.0
            arr = arr / hi
        else:  # float images: assume [0,1] when they fit, otherwise rescale by their range
            lo, hi = float(arr.min()), float(arr.max())
            if lo < 0 or hi > 1:
                arr = (arr - lo) / max(hi - lo, 1e-12)
        arr8 = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white so transparent regions do not become arbitrary colours.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: PathLike | Image.Image) -> Image.Image:
    """Open an image file (or take a PIL image) and return it as 8-bit RGB, EXIF-rotated.

    Raises :class:`ImageError` for a missing path, a directory, a file that is not an image, a truncated
    file, or an image smaller than ``MIN_SIDE`` pixels on a side.
    """
    if isinstance(source, Image.Image):
        img = source
        name = "<PIL image>"
    else:
        path = Path(source)
        name = str(path)
        check_image_file(path)
        try:
            with Image.open(path) as opened:
                check_pixel_count(opened, name)
                opened.load()  # force decoding now so truncated files fail here, not later
                img = opened.copy()
                img.info.update(opened.info)
                exif = opened.getexif()
        except UnidentifiedImageError:
            raise ImageError(f"{name} is not an image file Pillow can read") from None
        except Image.DecompressionBombError:
            raise ImageError(f"image {name} has more pixels than Pillow opens safely (a decompression bomb?)") from None
        except PermissionError:
            raise ImageError(f"cannot read image {name}: permission denied") from None
        except (OSError, SyntaxError, ValueError) as err:
            raise ImageError(f"cannot read image {name}: {err} (is the file truncated or corrupt?)") from None
        if exif and exif.get(0x0112, 1) != 1:
            img.info["exif"] = exif.tobytes()
            img = ImageOps.exif_transpose(img)
    try:
        if isinstance(source, Image.Image):
            img = ImageOps.exif_transpose(img)
        rgb = _to_rgb(img)
    except (OSError, ValueError) as err:
        raise ImageError(f"cannot convert image {name} to RGB: {err}") from None
    w, h = rgb.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"image {name} is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    return rgb


#: the most pixels an image may have: Pillow's own decompression-bomb limit (twice ``Image.MAX_IMAGE_PIXELS``,
#: 178 million), checked from the header before any pixel is decoded, so that a small file claiming
#: 20000x20000 pixels is refused without gigabytes of memory
MAX_PIXELS = 2 * 89_478_485


def check_image_file(path: PathLike, what: str = "image") -> Path:
    """``path`` when it names a regular file; an :class:`ImageError` naming the problem otherwise. Named pipes
    and devices are refused before they are opened (opening a FIFO waits for a writer forever)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImageError(f"{what} not found: {path}") from None
    except OSError as err:
        raise ImageError(f"cannot read {what} {path}: {err.strerror or err}") from None
    if stat.S_ISDIR(mode):
        raise ImageError(f"{path} is a folder, not {'an image' if what == 'image' else 'a'} file")
    if not stat.S_ISREG(mode):
        raise ImageError(f"{what} {path} is not a regular file (a named pipe or device?)")
    return path


def check_pixel_count(img: Image.Image, name: str) -> None:
    """Refuse an opened (not yet decoded) image whose header claims more than :data:`MAX_PIXELS` pixels."""
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"image {name} claims {w}x{h} pixels, more than {MAX_PIXELS // 1_000_000} million: "
                         "refused as a possible decompression bomb")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float tensor ``(3,H,W)`` in [0,1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A ``(3,H,W)`` tensor in [0,1] as an ``(H,W,3)`` uint8 array, for saving and plotting."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name; a clear error if there are none."""
    path = Path(folder)
    if not path.is_dir():
        raise ImageError(f"not a folder of images: {path}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}")
    return files


def bundled_sample() -> Path:
    """Path of the sample photo shipped with clearsight (scikit-image's 'chelsea', CC0)."""
    return Path(__file__).parent / "data" / "chelsea.jpg"
