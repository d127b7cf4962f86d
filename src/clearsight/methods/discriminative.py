"""Class-discriminative MoXI deletion (paper appendix F, Fig. 5; SPEC C.10): why class t, not the prediction?

When the target t is the model's prediction this is plain MoXI deletion. Otherwise deletion runs in two
phases on the same image:

1. greedily delete patches under the switched reward ``log-odds(pred) - odds(t)`` (the paper's formula
   as written; ``target_term="log-odds"`` uses ``log-odds(t)`` instead) until t becomes the prediction:
   these patches speak for the prediction and against t;
2. switch to the ordinary reward ``log-odds(t)`` and keep deleting until t stops being predicted.

The phase-2 patches are what makes the model see t; they are the ones highlighted.
"""

from __future__ import annotations

from typing import Literal

import torch

from ..errors import MethodError
from ..parts import PatchGame
from ..scores import ScoreFn, log_odds
from .greedy import GreedyResult, failure_rule, greedy, prediction_rule

TargetTerm = Literal["odds", "log-odds"]


def switched_reward(predicted: int, target_term: TargetTerm = "odds") -> ScoreFn:
    """Phase-1 reward: log-odds of the prediction minus the odds (or log-odds) of the target."""
    if target_term not in ("odds", "log-odds"):
        raise MethodError(f"target_term must be 'odds' or 'log-odds'; got {target_term!r}")

    def reward(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
        against = log_odds(logits, target)
        if target_term == "odds":
            against = against.exp()  # p/(1-p) = exp(log-odds), finite unless p_t rounds to 1
        return log_odds(logits, predicted) - against

    return reward


def discriminative_deletion(game: PatchGame, predicted: int, target_term: TargetTerm = "odds",
                            full_order: bool = False) -> tuple[GreedyResult, tuple[int, int]]:
    """Both phases on ``game`` (whose target is t); returns the joined result and the phase-2 step range.

    ``result.extra["phase"]`` says which phase chose each patch. When phase 1 never makes t the prediction,
    phase 2 is empty and nothing is highlighted.
    """
    phase1_game = game.with_score(switched_reward(predicted, target_term))
    first = greedy(phase1_game, "deletion", prediction_rule(game.target))
    game.passes += phase1_game.passes
    if first.stop is None:
        first.extra["phase"] = torch.ones(len(first.order), dtype=torch.int8).numpy()
        n1 = len(first.order)
        return first, (n1, n1)
    start = torch.zeros(game.num_players, dtype=torch.bool, device=game.clf.device)
    start[first.order.to(start.device)] = True
    second = greedy(game, "deletion", failure_rule(game.target), full_order, start=start)
    n1, n2 = len(first.order), len(second.order)
    joined = GreedyResult(
        order=torch.cat([first.order, second.order]),
        scores=torch.cat([first.scores, second.scores]),
        predictions=torch.cat([first.predictions, second.predictions]),
        probabilities=torch.cat([first.probabilities, second.probabilities]),
        stop=None if second.stop is None else n1 + second.stop,
        extra={"phase": torch.cat([torch.ones(n1), torch.full((n2,), 2.0)]).to(torch.int8).numpy()},
    )
    end = n1 + (second.stop if second.stop is not None else n2)
    return joined, (n1, end)
