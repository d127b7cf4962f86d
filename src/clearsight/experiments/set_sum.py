"""The visual SET-SUM task (MoXI paper section 4.1 and appendix A; SPEC C.14): where Shapley values fail and
interactions do not.

An image is a 2x2 grid of handwritten digits; its label is the sum of the *distinct* digits. On test images
whose largest digit appears twice, the two copies are redundant: each has a large Shapley value (either one
alone adds the largest digit to the sum), so an insertion order by Shapley values inserts both copies first
and wastes a step, while MoXI, which scores each candidate together with the patches already inserted, sees
that the second copy adds nothing and inserts a new digit instead. With four cells and at most three distinct
digits, MoXI's first three patches should already give the full sum.

Adaptations (the paper's data and model are not available offline on a 2-core CPU):

- digits are scikit-learn's bundled 8x8 handwritten digits (``load_digits``, 1,797 images, no download)
  upsampled to 16x16, not MNIST's 28x28; a composite is 32x32 with 16x16 cells (4 players). The digit images
  are split in half, so test composites are built from digits the model never saw;
- the model is a small CNN with global max pooling (a "digit d is somewhere" detector per
  channel), not a ResNet-18, trained in a few minutes on a CPU; grey composites are fed as 3 equal channels;
- the loss is cross-entropy plus the squared error between the softmax expectation of the sum and the true
  sum, both divided by the largest possible sum (30), so neither term dominates;
- absence is the zero fill, for the explanations and the curves alike, as in the paper.

Training data: the four digits are drawn uniformly (about half the composites hold a repeated digit); test
data: the largest digit twice, the other two cells smaller digits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import MethodError
from ..methods.capabilities import can

CELL = 16  #: pixels per side of a digit cell
SIZE = 2 * CELL  #: pixels per side of a composite
MAX_SUM = 9 + 8 + 7 + 6  #: the largest sum of four distinct digits
NUM_CLASSES = MAX_SUM + 1
METHODS = ("moxi", "moxi-minus", "shapley")  #: the methods the paper compares on SET-SUM


@dataclass
class DigitPool:
    """Digit images ``(n,16,16)`` in [0,1] and their classes ``(n,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def sample(self, digits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One random image of each digit in ``digits`` (any shape), stacked as ``(*digits.shape,16,16)``."""
        flat = digits.reshape(-1)
        picks = torch.empty_like(flat)
        for d in range(10):
            where = (flat == d).nonzero().squeeze(1)
            if where.numel():
                candidates = (self.labels == d).nonzero().squeeze(1)
                picks[where] = candidates[torch.randint(len(candidates), (where.numel(),), generator=generator)]
        return self.images[picks].reshape(*digits.shape, CELL, CELL)


def digit_pools(seed: int = 0) -> tuple[DigitPool, DigitPool]:
    """scikit-learn's 8x8 digits, upsampled to 16x16 and split in half at random: (train pool, test pool)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise MethodError("SET-SUM uses scikit-learn's bundled digits: pip install -e '.[digits]'") from err
    data = load_digits()
    images = torch.as_tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    images = F.interpolate(images, size=(CELL, CELL), mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)
    labels = torch.as_tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    return DigitPool(images[order[:half]], labels[order[:half]]), DigitPool(images[order[half:]], labels[order[half:]])


def set_sum_labels(digits: torch.Tensor) -> torch.Tensor:
    """The sum of the distinct digits of each row of ``(n,4)`` ``digits``."""
    present = F.one_hot(digits, 10).amax(1)  # (n,10): is digit d in the composite?
    return present @ torch.arange(10)


@dataclass
class SetSumData:
    """Composites ``(n,3,32,32)`` in [0,1], their digits ``(n,4)`` (cells in reading order) and labels."""

    images: torch.Tensor
    digits: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def make_set_sum(pool: DigitPool, n: int, seed: int = 0, largest_twice: bool = False) -> SetSumData:
    """``n`` composites from ``pool``: four uniform digits, or (``largest_twice``, the paper's test set) the
    largest digit m in 1..9 in two random cells and two digits below m in the others."""
    g = torch.Generator().manual_seed(seed)
    if largest_twice:
        largest = torch.randint(1, 10, (n, 1), generator=g)
        others = (torch.rand(n, 2, generator=g) * largest).long()  # uniform in 0..m-1
        cells = torch.cat([largest, largest, others], 1)
        shuffle = torch.argsort(torch.rand(n, 4, generator=g), 1)
        digits = cells.gather(1, shuffle)
    else:
        digits = torch.randint(0, 10, (n, 4), generator=g)
    tiles = pool.sample(digits, g)  # (n,4,16,16)
    grey = torch.cat([torch.cat([tiles[:, 0], tiles[:, 1]], 2), torch.cat([tiles[:, 2], tiles[:, 3]], 2)], 1)
    return SetSumData(grey[:, None].expand(-1, 3, -1, -1).contiguous(), digits, set_sum_labels(digits))


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class SetSumNet(nn.Module):
    """A small CNN for 32x32 composites: three 3x3 convolutions (16, 32, 64 channels) with 2x2 max pooling
    between them (receptive field 18 pixels: one digit cell), global max pooling (a feature says "this digit
    shape is somewhere", which is what a sum of *distinct* digits needs), then a two-layer head over the 31
    possible sums. About 3 million multiply-adds an image: trains on a CPU in a few minutes."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(_conv(3, width), nn.MaxPool2d(2), _conv(width, 2 * width), nn.MaxPool2d(2),
                                      _conv(2 * width, 4 * width))
        self.head = nn.Sequential(nn.Linear(4 * width, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax(dim=(2, 3)))


def set_sum_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus the squared error of the expected sum, both sums divided by :data:`MAX_SUM`."""
    expected = logits.softmax(1) @ torch.arange(NUM_CLASSES, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, labels) + F.mse_loss(expected / MAX_SUM, labels.to(logits.dtype) / MAX_SUM)


def train_set_sum(data: SetSumData, epochs: int = 4, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                  progress: Callable[[int, float], None] | None = None) -> SetSumNet:
    """Train a :class:`SetSumNet` on ``data`` with Adam and a cosine schedule; ``progress(epoch, mean loss)``
    after each epoch. Seeded: the same data and seed give the same weights (on one machine)."""
    torch.manual_seed(seed)
    model = SetSumNet()
    steps = epochs * ((len(data) + batch_size - 1) // batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(data), generator=g)
        total = 0.0
        for start in range(0, len(data), batch_size):
            batch = order[start:start + batch_size]
            loss = set_sum_loss(model(data.images[batch]), data.labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        if progress:
            progress(epoch + 1, total / len(data))
    return model.eval()


def set_sum_classifier(model: nn.Module, device: str = "cpu"):
    """A :class:`~clearsight.models.Classifier` for a SET-SUM model: 32x32 inputs in [0,1], no normalisation
    (so the zero fill is black, as in the paper), classes named by their sum."""
    from ..models import Preprocessing, wrap_model

    preprocessing = Preprocessing(input_size=SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), normalize=False)
    return wrap_model(model, preprocessing, name="set-sum", device=device,
                      class_names=[f"sum {i}" for i in range(NUM_CLASSES)])


def save_model(model: nn.Module, path: str | Path) -> Path:
    from ..explanation import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(model.state_dict(), f))
    return path


def load_model(path: str | Path) -> SetSumNet:
    """A trained :class:`SetSumNet` from ``path`` (loaded with ``weights_only=True``)."""
    model = SetSumNet()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def accuracy(clf, data: SetSumData) -> float:
    """Share of composites whose sum the model predicts."""
    return float((clf.logits(data.images).argmax(1) == data.labels).float().mean())


def evaluate_set_sum(clf, data: SetSumData, methods: Sequence[str] = METHODS, rounds: int = 200, seed: int = 0,
                     progress: Callable[[str], None] | None = None, store: str | Path | None = None):
    """Insertion curves of ``methods`` over ``data`` with 16x16 patches and the zero fill: 5 points, after
    0, 1, 2, 3 and 4 patches (0/25/50/75/100 %), top-1 accuracy over the composites the model gets right.

    Returns :class:`~clearsight.evaluation.CurveResults` named ``set-sum-insertion``.
    """
    from ..evaluation import evaluate_curves

    # the zero fill for every method that plays the patch game; sampling methods take the rounds and seed
    options: dict[str, dict[str, Any]] = {m: {"absence": "fill:black"} if can(m, "patch_game") else {}
                                          for m in methods}
    if "shapley" in options:
        options["shapley"].update(rounds=rounds, seed=seed)
    results = evaluate_curves(clf, list(data.images), [int(v) for v in data.labels], methods, "insertion",
                              names=[f"composite{i:05d}" for i in range(len(data))], absence="fill:black",
                              method_options=options, patch_size=CELL, progress=progress, store=store)
    results.name = "set-sum-insertion"
    results.xlabel = "% of the four digit cells inserted"
    return results


@dataclass
class SetSumRun:
    """What :func:`reproduce_set_sum` produced: the model file, test accuracies and the insertion curves."""

    model_path: Path
    accuracy_uniform: float
    accuracy_largest_twice: float
    curves: Any  # CurveResults


def check_set_sum(train_size: int, epochs: int, test_size: int, rounds: int, methods: Sequence[str]) -> None:
    """Refuse settings :func:`reproduce_set_sum` cannot run, before any training."""
    if train_size < 1 or epochs < 1 or test_size < 1 or rounds < 1:
        raise MethodError("SET-SUM needs positive --train-size, --epochs, --test-size and --rounds")
    from ..methods import METHODS as REGISTERED

    # any method that orders patches of a CNN at the cost of one explanation: not rollout (ViTs only), not the
    # RDE optimisers (minutes per image, and a mask over pixels, not cells)
    unknown = [m for m in methods if m not in REGISTERED or can(m, "needs_token_model") or can(m, "rde")]
    if unknown or not methods:
        raise MethodError(f"SET-SUM compares moxi, moxi-minus and shapley (gradcam, gradcampp also work); got "
                          f"{', '.join(unknown) or 'none'}")


def reproduce_set_sum(out: str | Path, train_size: int = 30000, epochs: int = 10, test_size: int = 200,
                      seed: int = 0, rounds: int = 200, methods: Sequence[str] = METHODS,
                      train_progress: Callable[[int, float], None] | None = None,
                      progress: Callable[[str], None] | None = None) -> SetSumRun:
    """The whole experiment in ``out``: train the model (or reuse the one trained with the same settings),
    measure its accuracy on held-out digits, and write the insertion curves of ``methods`` on ``test_size``
    composites whose largest digit appears twice (``set-sum-insertion_*.csv``, ``.json``, ``.png``).

    Everything is seeded by ``seed``; finished per-composite curves are kept in ``out/runs``, so an
    interrupted run resumes.
    """
    from ..checkpoints import fingerprint

    check_set_sum(train_size, epochs, test_size, rounds, methods)
    out = Path(out)
    train_pool, test_pool = digit_pools(seed)
    settings = {"train_size": train_size, "epochs": epochs, "seed": seed, "model": "SetSumNet-16"}
    model_path = out / f"set_sum_model-{fingerprint(settings)[:12]}.pt"
    if model_path.exists():
        model = load_model(model_path)
    else:
        model = train_set_sum(make_set_sum(train_pool, train_size, seed=seed + 1), epochs=epochs, seed=seed,
                              progress=train_progress)
        save_model(model, model_path)
    clf = set_sum_classifier(model)
    test = make_set_sum(test_pool, test_size, seed=seed + 3, largest_twice=True)
    uniform = make_set_sum(test_pool, max(test_size, 1000), seed=seed + 2)
    curves = evaluate_set_sum(clf, test, methods, rounds=rounds, seed=seed, progress=progress, store=out / "runs")
    curves.settings.update(settings, test_size=test_size, digits="scikit-learn load_digits, 16x16")
    curves.save(out)
    return SetSumRun(model_path, accuracy(clf, uniform), accuracy(clf, test), curves)
