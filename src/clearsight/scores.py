"""What is explained: a scalar score per image for a target class, computed from logits.

MoXI's reward is the log-odds ``log p_y / (1 - p_y)``; computed naively it overflows to ``inf`` for a
confident model, so it is taken stably as ``z_y - logsumexp_{c != y} z_c``. The other scores are offered for
comparison with papers that use them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import MethodError

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _target_column(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    target = torch.as_tensor(target, device=logits.device).long()
    if target.ndim == 0:
        target = target.expand(logits.shape[0])
    return target


def log_odds(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """``log p_y/(1-p_y)`` per row, as ``z_y - logsumexp(z_others)`` (finite even when p_y rounds to 1)."""
    logits = logits.float()
    y = _target_column(logits, target)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return z_y - torch.logsumexp(others, dim=1)


def probability(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """Softmax probability of the target class."""
    y = _target_column(logits, target)
    return logits.float().softmax(1).gather(1, y[:, None]).squeeze(1)


def log_probability(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """Log-softmax of the target class."""
    y = _target_column(logits, target)
    return logits.float().log_softmax(1).gather(1, y[:, None]).squeeze(1)


def logit(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """The raw logit of the target class."""
    y = _target_column(logits, target)
    return logits.float().gather(1, y[:, None]).squeeze(1)


SCORES: dict[str, ScoreFn] = {
    "log-odds": log_odds,
    "probability": probability,
    "log-probability": log_probability,
    "logit": logit,
}


def get_score(name: str | ScoreFn) -> ScoreFn:
    """Look up a score by name (``log-odds``, ``probability``, ``log-probability``, ``logit``)."""
    if callable(name):
        return name
    try:
        return SCORES[name]
    except KeyError:
        raise MethodError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}") from None
