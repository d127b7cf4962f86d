"""MoXI (Sumiyasu et al., 2024): the group of patches that moves the model's confidence most, found greedily.

Insertion (Algorithm 1) starts from no patch and adds, at each step, the patch that maximises the score of
the kept set; deletion (Algorithm 2) starts from the full image and removes the patch whose removal lowers
the score most. Maximising f(S_{k-1} + b) is maximising the self-context Shapley value of b plus its
interaction with S_{k-1} (paper Eq. 4-7); MoXI(-) (``interactions=False``) ranks patches by the first step
alone, i.e. by self-context (insertion) or full-context (deletion) Shapley values.

Differences from the reference code, none of which changes the result:
- each step scores only the |N|-k+1 remaining candidates (the reference scored all N and overwrote the
  chosen ones with -inf / +inf); ties still go to the lowest patch index, as ``torch.argmax`` did;
- ``explain`` stops at the first success (insertion: the target is predicted, with probability at least
  ``tau``) or failure (deletion: the target is no longer predicted), as the paper's runtime table and heatmaps
  do; ``full_order=True`` runs all N steps (the curves need it), as the reference always did;
- ``tau`` (paper appendix E) is implemented; the released code lacked it;
- ``screen="bf16"`` (an option) scores each step in bf16 first and re-scores only its possible winners in fp32
  (:class:`~clearsight.methods.greedy.Screening`): the fp32 pick, for less fp32 work when candidates are far
  apart;
- ``explain`` of several photos runs their steps in lockstep, in shared model passes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import MethodError
from ..explanation import Explanation
from ..models import Classifier, resize_map
from ..parts import PatchGame, PatchGrid, TokenDrop, evaluate_together
from ..parts.absence import TimmTokenEncoder
from .base import CostMeter, Explainer, RunControl, resolve_target, single_image
from .discriminative import discriminative_deletion
from .greedy import (
    GreedyResult,
    Mode,
    Screening,
    StopRule,
    calibrate_bound,
    check_mode,
    coalition_after,
    failure_rule,
    greedy,
    greedy_together,
    prediction_rule,
    success_rule,
)
from .progress import progress_bar

__all__ = ["MoXI", "GreedyResult", "Mode", "StopRule", "check_mode", "coalition_after", "failure_rule", "greedy",
           "greedy_together", "order_heat", "prediction_rule", "scan_order", "single_patch_coalitions",
           "single_patch_scores", "success_rule"]

#: how a greedy step may be screened (see :class:`MoXI`)
SCREENS = ("none", "bf16")
#: MoXI(-)'s cumulative sets are scored in blocks of this many steps until the stop point is found.
_SCAN_BLOCK = 16


def single_patch_coalitions(game: PatchGame, mode: Mode) -> torch.Tensor:
    """MoXI(-)'s one batch: {i} for insertion, N \\ {i} for deletion, for every patch i."""
    eye = torch.eye(game.num_players, dtype=torch.bool, device=game.clf.device)
    return coalition_after(eye, mode)


def single_patch_scores(game: PatchGame, mode: Mode) -> torch.Tensor:
    """MoXI(-)'s scores: f({i}) for insertion, f(N \\ {i}) for deletion, for every patch i."""
    return game.value(single_patch_coalitions(game, mode))


def scan_order(game: PatchGame, order: torch.Tensor, mode: Mode, stop_rule: StopRule | None,
               full_order: bool) -> GreedyResult:
    """Score the cumulative sets along a fixed ``order`` (MoXI(-)), in blocks, until the stop rule holds."""
    n = order.numel()
    ranks = torch.empty(n, dtype=torch.long, device=order.device)
    ranks[order] = torch.arange(n, device=order.device)
    scores, preds, probs = [], [], []
    stop: int | None = None
    for start in range(0, n, _SCAN_BLOCK):
        steps = torch.arange(start + 1, min(n, start + _SCAN_BLOCK) + 1, device=order.device)
        selected = ranks[None, :] < steps[:, None]
        values, logits = game.evaluate(coalition_after(selected, mode))
        for j in range(steps.numel()):
            scores.append(float(values[j]))
            preds.append(int(logits[j].argmax()))
            probs.append(float(logits[j].float().softmax(-1)[game.target]))
            if stop is None and stop_rule is not None and stop_rule(logits[j]):
                stop = int(steps[j])
        if stop is not None and not full_order:
            break
    k = len(scores) if full_order or stop is None else stop
    return GreedyResult(order.cpu(), torch.tensor(scores[:k]), torch.tensor(preds[:k]), torch.tensor(probs[:k]),
                        stop)


def order_heat(order: torch.Tensor, used: int, n: int) -> torch.Tensor:
    """SPEC C.9: the t-th patch of the first ``used`` gets ``used - t`` (earliest hottest), scaled to max 1."""
    heat = torch.zeros(n)
    if used > 0:
        heat[order[:used].cpu()] = torch.arange(used, 0, -1, dtype=torch.float32) / used
    return heat


class MoXI(Explainer):
    """MoXI insertion or deletion, with interactions (greedy) or without (MoXI(-)).

    Args:
        mode: ``insertion`` (Algorithm 1: the smallest group that makes the model predict the target) or
            ``deletion`` (Algorithm 2: the smallest group whose removal makes it change its mind).
        interactions: False gives MoXI(-), one batch of single-patch (insertion) or leave-one-out
            (deletion) scores, ranked.
        full_order: compute all N steps instead of stopping at the first success / failure.
        tau: insertion stops only once the target's probability is at least ``tau`` (appendix E).
        score: the reward: ``log-odds`` (default), ``probability``, ``log-probability``, ``logit``.
        absence: ``auto`` (token dropping for ViTs, mean fill otherwise), ``token-drop``, ``fill[:KIND]``,
            ``attention-mask[:K]`` (see :func:`clearsight.parts.make_absence`).
        patch_size: pixels per patch side (default: the ViT's patch, 16 for CNNs).
        target_term: class-discriminative deletion (a target other than the prediction, SPEC C.10):
            ``odds`` (the paper's formula as written) or ``log-odds``.
        screen: ``bf16`` scores each greedy step with a bfloat16 copy of the ViT first and re-scores in fp32
            only the candidates within a measured bound of the bf16 best (:class:`~clearsight.methods.greedy.
            Screening`): the fp32 order, with token dropping on a standard timm ViT. It saves fp32 work only
            where bf16 is native (a GPU, a CPU with AVX512-BF16 or AMX) and a step's candidates are far apart;
            on DeiT-Tiny bf16's error is as large as deletion candidates' differences, so it is off (``none``)
            by default. The explanation records the share it re-scored (``settings["screening"]``).

    A deletion explanation for a target other than the model's prediction is class-discriminative: see
    :mod:`clearsight.methods.discriminative`.
    """

    #: capabilities the evaluation reads: its own patch order (per mode), and the patch game's options
    gives_order = True
    #: screening picks the fp32 order: it changes the cost of a result, not the result
    neutral_settings = ("screen",)
    modes = ("insertion", "deletion")
    patch_game = True

    def __init__(self, mode: Mode = "insertion", interactions: bool = True, full_order: bool = False,
                 tau: float = 0.0, score: str = "log-odds", absence: str = "auto", patch_size: int | None = None,
                 target_term: str = "odds", screen: str = "none") -> None:
        self.mode = check_mode(mode)
        if screen not in SCREENS:
            raise MethodError(f"screen must be one of {', '.join(SCREENS)}; got {screen!r}")
        if screen == "bf16" and not interactions:
            raise MethodError("screen applies to MoXI's greedy steps; moxi-minus takes none (use method moxi)")
        self.screen = screen
        self.interactions = bool(interactions)
        self.full_order = bool(full_order)
        if not 0.0 <= float(tau) <= 1.0:
            raise MethodError(f"tau is a probability in [0,1]; got {tau}")
        self.tau = float(tau)
        self.score = score
        self.absence = absence
        self.patch_size = patch_size
        self.target_term = target_term

    @property
    def name(self) -> str:  # type: ignore[override]
        return "moxi" if self.interactions else "moxi-minus"

    # -------------------------------------------------------------------------------------- pieces
    def game(self, clf: Classifier, image: torch.Tensor, target: int) -> PatchGame:
        grid = PatchGrid.for_classifier(clf, self.patch_size)
        return PatchGame(clf, image, target, score=self.score, absence=self.absence, grid=grid)

    def screenings(self, games: list[PatchGame]) -> list[Screening] | None:
        """One :class:`Screening` per game when this explainer screens its steps on this model, else None."""
        if self.screen == "none":
            return None
        clf = games[0].clf
        if not (isinstance(games[0].absence, TokenDrop) and games[0].absence.precision == "fp32"
                and TimmTokenEncoder.supports(clf)):
            raise MethodError("screen='bf16' needs token dropping (absence auto or token-drop) on a standard timm "
                              f"ViT; {clf.name} with absence {games[0].absence.describe()} cannot screen")
        screens = []
        for game in games:
            cheap = PatchGame(clf, game.image, game.target, score=self.score, absence=TokenDrop(precision="bf16"),
                              grid=game.grid)
            screens.append(Screening(cheap, calibrate_bound(game, cheap, self.mode)))
        return screens

    def stop_rule(self, target: int) -> StopRule:
        return success_rule(target, self.tau) if self.mode == "insertion" else failure_rule(target)

    def run(self, game: PatchGame, progress: bool = False) -> GreedyResult:
        """The order and the score after every step, for the game's target (``progress``: a bar of the
        greedy steps, at most one per patch, on stderr)."""
        return self.run_together([game], progress)[0]

    def run_together(self, games: list[PatchGame], progress: bool = False) -> list[GreedyResult]:
        """:meth:`run` for several images, sharing model passes across them (each result equals its own run)."""
        rules = [self.stop_rule(g.target) for g in games]
        if self.interactions:
            with progress_bar(progress, sum(g.num_players for g in games), f"{self.name} {self.mode}",
                              "step") as update:
                return greedy_together(games, self.mode, rules, self.full_order, progress=update,
                                       screens=self.screenings(games))
        scored = evaluate_together(games, [single_patch_coalitions(g, self.mode) for g in games])
        results = []
        for game, rule, (single, _) in zip(games, rules, scored):
            order = torch.argsort(single, descending=self.mode == "insertion", stable=True)
            result = scan_order(game, order, self.mode, rule, self.full_order)
            result.extra["patch_scores"] = single.cpu().numpy()
            results.append(result)
        return results

    # ------------------------------------------------------------------------------------- explain
    def explain_one(self, clf: Classifier, image: torch.Tensor, target: int | str | None = None,
                    run: RunControl = RunControl()) -> Explanation:
        image = single_image(clf, image)
        meter = CostMeter(clf)
        with meter.measure():
            logits = clf.logits(image[None])
            target, prob = resolve_target(clf, logits, target)
            predicted = int(logits[0].argmax())
            game = self.game(clf, image, target)
            if self.mode == "deletion" and target != predicted:
                if not self.interactions:
                    raise MethodError("class-discriminative deletion (a target other than the prediction) needs "
                                      "interactions: use method moxi, not moxi-minus")
                result, highlighted = discriminative_deletion(game, predicted, self.target_term, self.full_order)
            else:
                result = self.run(game, progress=run.progress)
                highlighted = (0, result.stop if result.stop is not None else len(result.order))
        return self._explanation(clf, image, target, prob, result, highlighted, game.grid, meter.as_dict())

    def explain_batch(self, clf: Classifier, images: list[torch.Tensor], targets: list[int | str | None],
                      run: RunControl = RunControl()) -> list[Explanation]:
        """Explain several photos with their greedy steps (MoXI(-): their single-patch scores) sharing model
        passes: step k of every photo runs in the same batches, which fills the small early insertion steps.
        Each explanation equals the photo's own; its cost is its own passes, with the wall time shared in
        proportion. A class-discriminative deletion (target other than the prediction) runs on its own."""
        meter = CostMeter(clf)
        prepared = []
        with meter.measure():
            for image, wanted in zip(images, targets):
                image = single_image(clf, image)
                logits = clf.logits(image[None])
                target, prob = resolve_target(clf, logits, wanted)
                prepared.append((image, target, prob, int(logits[0].argmax())))
        shared = [i for i, (_, target, _, predicted) in enumerate(prepared)
                  if self.mode == "insertion" or target == predicted]
        out: list[Explanation | None] = [None] * len(images)
        for i in sorted(set(range(len(images))) - set(shared)):
            out[i] = self.explain_one(clf, images[i], targets[i], run)
        if shared:
            with meter.measure():
                games = [self.game(clf, prepared[i][0], prepared[i][1]) for i in shared]
                results = self.run_together(games, progress=run.progress)
            passes = {i: 1 + g.passes for i, g in zip(shared, games)}
            total = sum(passes.values())
            for i, game, result in zip(shared, games, results):
                image, target, prob, _ = prepared[i]
                cost = {"seconds": meter.seconds * passes[i] / total, "passes": float(passes[i])}
                highlighted = (0, result.stop if result.stop is not None else len(result.order))
                out[i] = self._explanation(clf, image, target, prob, result, highlighted, game.grid, cost)
        return [e for e in out if e is not None]

    def _explanation(self, clf: Classifier, image: torch.Tensor, target: int, prob: float, result: GreedyResult,
                     highlighted: tuple[int, int], grid: PatchGrid, cost: dict[str, float]) -> Explanation:
        first, last = highlighted
        heat = order_heat(result.order[first:], last - first, grid.size)
        heat_grid = grid.to_grid(heat)
        saliency = resize_map(heat_grid, (grid.height, grid.width))
        arrays = {"grid": heat_grid.numpy(), "predictions": result.predictions.numpy(),
                  "probabilities": result.probabilities.numpy(), **result.extra}
        settings = {**self.settings(), "grid": list(grid.shape), "stop_step": result.stop,
                    "success": result.stop is not None, "highlighted": [first, last],
                    **({"screening": result.screening} if result.screening is not None else {})}
        return Explanation(
            method=self.name, target=target, target_name=clf.class_name(target), model=clf.name,
            saliency=saliency.numpy().astype(np.float32), score=prob, order=result.order.numpy(),
            order_scores=result.scores.numpy(), arrays=arrays, cost=cost, settings=settings,
        )

    def figure(self, image: torch.Tensor, explanation: Explanation, predicted: tuple[str, float] | None = None):
        from ..viz.heatmap import order_figure

        return order_figure(image, explanation, predicted)

