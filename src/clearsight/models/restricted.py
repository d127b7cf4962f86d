"""The same model with its output restricted to K classes: the offline stand-in for the MoXI paper's
consistency experiment (Fig. 7), which trained models on 10, 20, 100 and 1000 ImageNet classes.

The restriction keeps K rows of the classification head (the target's and K-1 others drawn with a seed), so
the model predicts among those K classes only; every fast path (token dropping, attention masking) still
applies because the architecture is unchanged, only its last linear layer is smaller.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import MethodError


def class_subset(num_classes: int, target: int, k: int, seed: int) -> list[int]:
    """``k`` classes, the ``target`` among them, the others a seeded random choice; sorted."""
    if not 1 <= k <= num_classes:
        raise MethodError(f"a restriction keeps between 1 and {num_classes} classes; got {k}")
    others = [c for c in torch.randperm(num_classes, generator=torch.Generator().manual_seed(seed)).tolist()
              if c != target]
    return sorted([target, *others[: k - 1]])


def _head(model: nn.Module, num_classes: int) -> str:
    """The name of the last linear layer that produces the ``num_classes`` logits."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not names:
        raise MethodError("no linear classification head found to restrict (the consistency experiment needs one)")
    return names[-1]


def restrict_classes(clf, target: int, k: int, seed: int):
    """(a classifier over ``k`` classes, the target's index among them). The user's model is not touched: the
    restricted classifier holds a copy whose head keeps the chosen rows."""
    from .registry import wrap_model

    classes = class_subset(clf.num_classes, int(target), int(k), seed)
    if k == clf.num_classes:
        return clf, int(target)
    model = copy.deepcopy(clf.model)
    name = _head(model, clf.num_classes)
    old = model.get_submodule(name)
    new = nn.Linear(old.in_features, len(classes), bias=old.bias is not None).to(old.weight.device, old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[classes])
        if old.bias is not None:
            new.bias.copy_(old.bias[classes])
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)
    restricted = wrap_model(model, clf.preprocessing, name=f"{clf.name} ({k} classes)", device=str(clf.device),
                            class_names=[clf.class_name(c) for c in classes])
    return restricted, classes.index(int(target))
