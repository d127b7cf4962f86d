"""Shared fixtures: the real models and photos in ../shared, loaded once per test session."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from clearsight.models import load_model

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
SAMPLES = SHARED / "data" / "imagenet-samples"
#: the command-line flags that load DeiT-Tiny from ../shared/models
DEIT_CLI = ["--model", "timm:deit_tiny_patch16_224", "--weights", str(MODELS / "deit_tiny_patch16_224.pth")]

torch.set_num_threads(max(1, torch.get_num_threads()))


def sample_rows() -> list[dict[str, str]]:
    with open(SAMPLES / "labels.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def one_thread():
    """Two OpenMP threads on a loaded 2-core machine make small ops ~100x slower; one thread is safe."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def labels() -> list[dict[str, str]]:
    """Rows of labels.csv: file, class_index, synset, name."""
    return sample_rows()


@pytest.fixture(scope="session")
def photo_paths(labels) -> list[Path]:
    return [SAMPLES / r["file"] for r in labels]


@pytest.fixture(scope="session")
def effnet():
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def deit():
    return load_model("timm:deit_tiny_patch16_224", weights=MODELS / "deit_tiny_patch16_224.pth")


@pytest.fixture(scope="session")
def mobilenet():
    return load_model("torchvision:mobilenet_v2", weights=MODELS / "mobilenet_v2.pth")


@pytest.fixture(scope="session")
def tiny_vit():
    """A 2-block, 32x32-pixel random timm ViT: for mechanics only, never for claims about real models."""
    import timm

    from clearsight.models import Preprocessing, wrap_model

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8,
                              depth=2, num_heads=2, embed_dim=16, num_classes=10)
    return wrap_model(model, Preprocessing(input_size=32), name="tiny-vit")


@pytest.fixture(scope="session")
def tiny_cnn():
    """A small random CNN on 32x32 images with 10 classes: for mechanics only."""
    from torch import nn

    from clearsight.models import Preprocessing, wrap_model

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )
    return wrap_model(model, Preprocessing(input_size=32), name="tiny-cnn")


@pytest.fixture()
def one_photo_folder(tmp_path, photo_paths) -> Path:
    """A folder holding the first sample photo alone, for commands that take a folder of images."""
    import shutil

    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(photo_paths[0], folder / photo_paths[0].name)
    return folder
