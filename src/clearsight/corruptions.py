"""Common image corruptions (ImageNet-C, Hendrycks & Dietterich 2019) for the MoXI paper's corruption
deletion curves (SPEC C.11).

The paper corrupts each 224x224 photo with the ``imagecorruptions`` package at severity 5 and pastes the
corrupted image's patches into the clean one in each method's deletion order. That package no longer runs on
current scikit-image (its blurs pass the removed ``multichannel`` argument) and imports ``pkg_resources``, and
it draws from NumPy's global random state. This module re-implements, in NumPy and PyTorch, the corruptions
that need no external assets, with the package's constants and formulas for severities 1-5:

- noise: ``gaussian_noise``, ``shot_noise``, ``impulse_noise``, ``speckle_noise``;
- blur: ``gaussian_blur``, ``defocus_blur``;
- weather: ``fog`` (diamond-square plasma fractal);
- digital: ``brightness``, ``contrast``, ``saturate``, ``pixelate``, ``jpeg_compression``.

Every random draw comes from ``numpy.random.RandomState(seed)`` in the order the package makes them from
the global state, so ``gaussian_noise``, ``shot_noise``, ``speckle_noise`` and ``fog`` give the package's
exact output after ``numpy.random.seed(seed)``. Not available: ``glass_blur``, ``motion_blur``,
``zoom_blur``, ``snow``, ``frost`` (needs the package's frost photos), ``elastic_transform``, ``spatter``.

Images are uint8 ``(H,W,3)`` arrays, as the package takes them, or ``(3,H,W)`` float tensors in [0,1]
(:func:`corrupt_tensor`, which quantises to uint8 first, as the paper's pipeline does).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ImageError, MethodError

SEVERITIES = (1, 2, 3, 4, 5)
#: the package's corruptions this module does not implement, named in the error a user gets for them
NOT_IMPLEMENTED = ("glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "elastic_transform", "spatter")


# ----------------------------------------------------------------------------------------------- noise
def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (0.08, 0.12, 0.18, 0.26, 0.38)[severity - 1]
    x = x / 255.0
    return np.clip(x + rng.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (60, 25, 12, 5, 3)[severity - 1]
    x = x / 255.0
    return np.clip(rng.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """Salt and pepper: a fraction ``c`` of all values (each channel on its own) set to 0 or 1, half each
    (scikit-image's ``random_noise(mode='s&p')``, which the package calls)."""
    c = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    x = x / 255.0
    flipped = rng.random_sample(x.shape) < c
    salt = rng.random_sample(x.shape) < 0.5
    x = np.where(flipped & salt, 1.0, x)
    x = np.where(flipped & ~salt, 0.0, x)
    return np.clip(x, 0, 1) * 255


def speckle_noise(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (0.15, 0.2, 0.35, 0.45, 0.6)[severity - 1]
    x = x / 255.0
    return np.clip(x + x * rng.normal(size=x.shape, scale=c), 0, 1) * 255


# ------------------------------------------------------------------------------------------------ blur
def _filter(x: np.ndarray, kernel: np.ndarray, padding: str, dtype: torch.dtype = torch.float64) -> np.ndarray:
    """Correlate each channel of ``(H,W,C)`` ``x`` with a 2-D ``kernel`` (same size out)."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[:, None].to(dtype)
    k = torch.from_numpy(np.ascontiguousarray(kernel)).to(dtype)[None, None]
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    t = F.pad(t, (pw, pw, ph, ph), mode=padding)
    return F.conv2d(t, k)[:, 0].double().numpy().transpose(1, 2, 0)


def _gaussian_kernel_1d(sigma: float, radius: int) -> np.ndarray:
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """scikit-image's ``gaussian(sigma=c)``: truncated at 4 sigma, edges extended ('nearest'); one pass per
    axis, as SciPy filters."""
    c = (1, 2, 3, 4, 6)[severity - 1]
    k = _gaussian_kernel_1d(c, int(4.0 * c + 0.5))
    rows = _filter(x / 255.0, k[None, :], "replicate")
    return np.clip(_filter(rows, k[:, None], "replicate"), 0, 1) * 255


def _disk(radius: int, alias_blur: float) -> np.ndarray:
    """The package's defocus kernel: a normalised disk, anti-aliased by OpenCV's ``GaussianBlur`` (3x3 up to
    radius 8, else 5x5; reflect-101 edges)."""
    half = 8 if radius <= 8 else radius
    size = 3 if radius <= 8 else 5
    grid = np.arange(-half, half + 1)
    X, Y = np.meshgrid(grid, grid)
    disk = ((X**2 + Y**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    k = _gaussian_kernel_1d(alias_blur, size // 2)
    return _filter(disk[:, :, None], np.outer(k, k), "reflect")[:, :, 0]


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """A disk-shaped (out-of-focus) blur; single precision, like the package's kernel (OpenCV's float32)."""
    radius, alias = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[severity - 1]
    return np.clip(_filter(x / 255.0, _disk(radius, alias), "reflect", torch.float32), 0, 1) * 255


# --------------------------------------------------------------------------------------------- weather
def plasma_fractal(mapsize: int, wibbledecay: float, rng: np.random.RandomState) -> np.ndarray:
    """A ``(mapsize, mapsize)`` height map in [0,1] by the diamond-square algorithm (mapsize a power of two).

    The random offsets of each refinement shrink by ``wibbledecay``: the larger it is, the smoother the fog.
    """
    if mapsize & (mapsize - 1):
        raise MethodError(f"the plasma fractal's size must be a power of two; got {mapsize}")
    heights = np.empty((mapsize, mapsize), dtype=np.float64)
    heights[0, 0] = 0
    step = mapsize
    wibble = 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = heights[0:mapsize:step, 0:mapsize:step]  # squares: centre = mean of 4 corners
        square = corners + np.roll(corners, shift=-1, axis=0)
        square += np.roll(square, shift=-1, axis=1)
        heights[half:mapsize:step, half:mapsize:step] = wibbled_mean(square)
        centres = heights[half:mapsize:step, half:mapsize:step]  # diamonds: mean of 2 corners + 2 centres
        corners = heights[0:mapsize:step, 0:mapsize:step]
        left = centres + np.roll(centres, 1, axis=0) + corners + np.roll(corners, -1, axis=1)
        heights[0:mapsize:step, half:mapsize:step] = wibbled_mean(left)
        top = centres + np.roll(centres, 1, axis=1) + corners + np.roll(corners, -1, axis=0)
        heights[half:mapsize:step, 0:mapsize:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibbledecay
    heights -= heights.min()
    return heights / heights.max()


def fog(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    strength, decay = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[severity - 1]
    h, w = x.shape[:2]
    mapsize = 1 << (max(h, w) - 1).bit_length()
    x = x / 255.0
    peak = x.max()
    x = x + strength * plasma_fractal(mapsize, decay, rng)[:h, :w][..., None]
    return np.clip(x * peak / (peak + strength), 0, 1) * 255


# --------------------------------------------------------------------------------------------- digital
def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """``(H,W,3)`` RGB in [0,1] to HSV in [0,1] (hue as a fraction of a turn; scikit-image's convention)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    top = rgb.max(-1)
    spread = top - rgb.min(-1)
    safe = np.where(spread == 0, 1.0, spread)
    # where two channels tie for the maximum, blue wins over green over red (scikit-image's order)
    hue = np.where(top == b, 4.0 + (r - g) / safe, np.where(top == g, 2.0 + (b - r) / safe, (g - b) / safe))
    hue = np.where(spread == 0, 0.0, (hue / 6.0) % 1.0)
    saturation = np.where(top == 0, 0.0, spread / np.where(top == 0, 1.0, top))
    return np.stack([hue, saturation, top], -1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_hsv`."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    sector = sector.astype(int) % 6
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    channels = [np.choose(sector, [c[i] for c in choices]) for i in range(3)]
    return np.stack(channels, -1)


def brightness(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]
    hsv = rgb_to_hsv(x / 255.0)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def contrast(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (0.4, 0.3, 0.2, 0.1, 0.05)[severity - 1]
    x = x / 255.0
    means = x.mean(axis=(0, 1), keepdims=True)
    return np.clip((x - means) * c + means, 0, 1) * 255


def saturate(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    scale, shift = ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))[severity - 1]
    hsv = rgb_to_hsv(x / 255.0)
    hsv[..., 1] = np.clip(hsv[..., 1] * scale + shift, 0, 1)
    return np.clip(hsv_to_rgb(hsv), 0, 1) * 255


def pixelate(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    c = (0.6, 0.5, 0.4, 0.3, 0.25)[severity - 1]
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((int(w * c), int(h * c)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST), dtype=np.float64)


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    quality = (25, 18, 15, 10, 7)[severity - 1]
    buffer = io.BytesIO()
    Image.fromarray(x).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float64)


Corruption = Callable[[np.ndarray, int, np.random.RandomState], np.ndarray]
CORRUPTIONS: dict[str, Corruption] = {f.__name__: f for f in (
    gaussian_noise, shot_noise, impulse_noise, speckle_noise, gaussian_blur, defocus_blur, fog, brightness,
    contrast, saturate, pixelate, jpeg_compression)}


def check_corruption(name: str, severity: int = 5) -> str:
    """``name`` if it is a corruption this module implements and ``severity`` is 1..5, else a clear error."""
    if name not in CORRUPTIONS:
        extra = (f" ({name} needs assets or code of the imagecorruptions package and is not implemented)"
                 if name in NOT_IMPLEMENTED else "")
        raise MethodError(f"unknown corruption {name!r}{extra}; use one of {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise MethodError(f"a corruption's severity is an integer 1..5; got {severity!r}")
    return name


def corrupt(image: np.ndarray, name: str, severity: int = 5, seed: int = 0) -> np.ndarray:
    """``image`` (uint8 ``(H,W,3)``) with corruption ``name`` at ``severity`` (1..5), as uint8.

    Like the package, the corrupted floats are truncated to uint8, and images must be at least 32x32.
    """
    check_corruption(name, severity)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"corrupt() takes a uint8 (H,W,3) image; got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < 32:
        raise ImageError(f"corruptions need images of at least 32x32 pixels; got {image.shape[1]}x{image.shape[0]}")
    out = CORRUPTIONS[name](image, severity, np.random.RandomState(seed))
    return np.uint8(out)


def corrupt_tensor(image: torch.Tensor, name: str, severity: int = 5, seed: int = 0) -> torch.Tensor:
    """A ``(3,H,W)`` float image in [0,1], quantised to uint8, corrupted by :func:`corrupt`, back in [0,1]."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ImageError(f"corrupt_tensor() takes a (3,H,W) image; got shape {tuple(image.shape)}")
    pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    out = corrupt(pixels, name, severity, seed)
    return torch.from_numpy(out).permute(2, 0, 1).to(image.device, torch.float32) / 255.0
