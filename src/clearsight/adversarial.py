"""L2 projected gradient descent: the adversarial images of the MoXI paper's adversarial deletion curves
(SPEC C.12).

The paper attacks with untargeted L2 PGD at epsilon 1.0 and step 0.2 and leaves the rest open; we take the
common choice: 10 steps, no random start, pixels in [0,1] (so epsilon is measured on the model's input before
its normalisation, the same for every model). Each step moves along the normalised gradient of the
cross-entropy of the true class, then projects back onto the epsilon ball around the photo and onto [0,1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import MethodError


def pgd_l2(clf, image: torch.Tensor, target: int, epsilon: float = 1.0, step: float = 0.2, steps: int = 10
           ) -> torch.Tensor:
    """An adversarial copy of ``image`` (``(3,H,W)`` in [0,1]) with ``||x_adv - image||_2 <= epsilon`` that
    raises the model's cross-entropy for class ``target``; every step is one forward and backward pass.

    Deterministic: no random start, so the same photo and model always give the same perturbation.
    """
    if epsilon <= 0 or step <= 0 or steps < 1:
        raise MethodError(f"PGD needs epsilon > 0, step > 0 and at least one step; got {epsilon}, {step}, {steps}")
    target = clf.check_target(target)
    clean = clf.check_images(image)[:1].detach().float()
    labels = torch.tensor([target], device=clean.device)
    adversarial = clean.clone()
    for _ in range(steps):
        adversarial.requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(clf(adversarial).float(), labels)
            (grad,) = torch.autograd.grad(loss, adversarial)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            adversarial = adversarial + step * grad / norm
            delta = adversarial - clean
            scale = (epsilon / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
            adversarial = (clean + delta * scale).clamp(0, 1)
    return adversarial[0].detach()
