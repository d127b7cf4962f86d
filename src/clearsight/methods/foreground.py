"""Foreground maps for the ``foreground`` mask initialisation of CartoonX and Pixel RDE (SPEC B.5).

Either OpenCV's GrabCut on the image the model sees (the optional ``grabcut`` extra), or a mask the user
gives (an array or an image file). The reference ran GrabCut on the full-resolution file with the rectangle's
width and height swapped; here the rectangle is ``(x, y, w, h) = (1, 1, W-2, H-2)`` on the model's input.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from ..errors import InputShapeError, MethodError


def require_grabcut() -> None:
    """Fail with the install hint when OpenCV (the ``grabcut`` extra) is missing: callers about to run many
    explanations check first instead of failing at the first ``foreground`` one."""
    try:
        import cv2  # noqa: F401
    except ImportError:
        raise MethodError("init 'foreground' without a mask needs OpenCV for GrabCut: "
                          "pip install -e '.[grabcut]', or pass foreground_mask") from None


def grabcut(image: torch.Tensor, iterations: int = 3, seed: int = 0) -> torch.Tensor:
    """Binary ``(H,W)`` foreground of a ``(3,H,W)`` image in [0,1] by GrabCut (1 = definite/probable fg)."""
    require_grabcut()
    import cv2
    h, w = image.shape[-2:]
    if h < 8 or w < 8:
        raise InputShapeError(f"GrabCut needs an image of at least 8x8 pixels, got {h}x{w}")
    rgb = (image.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    labels = np.zeros((h, w), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(seed)
    cv2.grabCut(bgr, labels, (1, 1, w - 2, h - 2), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
    fg = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return torch.from_numpy(fg).to(image.device)


def load_mask(source: Any, size: tuple[int, int]) -> torch.Tensor:
    """A user-given foreground mask (array, tensor or image file) as a binary ``(H,W)`` tensor."""
    if isinstance(source, (str, os.PathLike)):
        from PIL import Image

        from ..io import check_image_file, check_pixel_count

        check_image_file(source, "foreground mask")  # a FIFO would hang the open
        try:
            with Image.open(source) as img:
                check_pixel_count(img, str(source))
                arr = np.asarray(img.convert("L").resize((size[1], size[0]), Image.NEAREST), dtype=np.float32) / 255
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise InputShapeError(f"cannot read the foreground mask {source}: {err}") from None
        return torch.from_numpy(arr > 0.5)
    arr = torch.as_tensor(np.asarray(source) if not isinstance(source, torch.Tensor) else source).float()
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputShapeError(f"a foreground mask must be (H,W); got shape {tuple(arr.shape)}")
    if tuple(arr.shape) != tuple(size):
        arr = torch.nn.functional.interpolate(arr[None, None], size=size, mode="nearest")[0, 0]
    return arr > 0.5


def foreground_map(image: torch.Tensor, given: Any = None, seed: int = 0) -> torch.Tensor:
    """The user's mask when given, else GrabCut on ``image``; binary ``(H,W)`` on the image's device."""
    size = (image.shape[-2], image.shape[-1])
    fg = load_mask(given, size) if given is not None else grabcut(image, seed=seed)
    if not bool(fg.any()):
        raise MethodError("the foreground map is empty; give a mask with some foreground or use another init")
    return fg.to(image.device)
