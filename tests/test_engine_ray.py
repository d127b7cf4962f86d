"""The Ray engine on a real Ray cluster started here on loopback (``ray start --head`` in a subprocess, two CPUs):
the same results as the local engine on real photos, ``setup`` once per worker process, a worker killed
mid-unit costing only that unit, and user errors coming back as themselves.

Starting Ray and its two worker processes takes seconds, so one cluster serves the whole module and each run
is as small as the property it checks allows.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import clearsight
from clearsight.engine import EngineError, LocalEngine, RayEngine, Unit, UnitStore
from clearsight.errors import ClearsightError, ImageError

from .conftest import MODELS, SAMPLES

# Ray on Linux advertises the machine's outward address even when told 127.0.0.1; its Windows/macOS mode uses
# the loopback address for everything. Tests must talk to this machine over loopback only, so it is set before
# Ray is imported (its constants are read then) and passed to the head below.
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
os.environ.update(LOOPBACK_ONLY)
ray = pytest.importorskip("ray", reason="the Ray engine's tests need Ray: pip install -e '.[ray]'")
RAY = Path(sys.executable).with_name("ray")
DEIT = ("timm:deit_tiny_patch16_224", MODELS / "deit_tiny_patch16_224.pth")
PHOTOS = ["n01440764_tench.JPEG", "n01558993_robin.JPEG"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pythonpath() -> str:
    """This clearsight first, so that Ray's worker processes import the code under test."""
    return os.pathsep.join([str(Path(clearsight.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])


def _ours(temp_dir: str) -> list[int]:
    """The processes of the cluster this module started: their command line names its own temp dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if temp_dir in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def cluster():
    """A Ray head with 2 CPUs on this machine; yields its address. Its session files go to a short temp dir
    (Unix socket paths are limited to ~100 characters); on teardown the head and every process naming that
    dir are stopped, and nothing else."""
    if not RAY.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test Work classes travel by value
    temp_dir = tempfile.mkdtemp(prefix="csray", dir="/tmp")
    port = _free_port()
    # Ray >= 2.5x turns token authentication on when ~/.ray/auth_token exists (a local ray.init writes one); a
    # driver that names an address does not, unless RAY_AUTH_MODE was set before Ray was imported: so the test
    # cluster, short-lived and on this machine, runs without
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=_pythonpath(), RAY_AUTH_MODE="disabled",
               **LOOPBACK_ONLY)
    log = open(Path(temp_dir) / "head.log", "w+")
    head = subprocess.Popen(
        [str(RAY), "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
         "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in Path(log.name).read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        if ray.is_initialized():
            ray.shutdown()
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        time.sleep(1)
        for pid in _ours(temp_dir):  # anything left of this cluster
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()
        subprocess.run(["rm", "-rf", temp_dir], check=False)


# ---------------------------------------------------------------- Work run by the tests (picklable, by value)

class Explain:
    """Grad-CAM or rollout saliency of DeiT-Tiny on a real photo; the model is loaded in ``setup``."""

    def setup(self):
        return clearsight.load_model(DEIT[0], weights=DEIT[1])

    def compute(self, clf, unit):
        from clearsight.methods import build_explainer

        image = clf.prepare(SAMPLES / unit.image)
        explanation = build_explainer(unit.method, {}).explain(clf, image)
        return {"saliency": np.asarray(explanation.saliency), "target": np.asarray(explanation.target)}


class Marked:
    """Seeded random numbers per unit; ``setup`` and each attempt leave a file in ``folder`` naming the process,
    and the unit ``kill`` kills its own worker process (SIGKILL, as the kernel's OOM killer does) on its first
    attempt (``always``: on every attempt). A ``bad`` unit raises a user error."""

    def __init__(self, folder, kill=None, always=False):
        self.folder, self.kill, self.always = str(folder), kill, always

    def setup(self):
        Path(self.folder, f"setup-{os.getpid()}-{time.monotonic_ns()}").touch()
        return os.getpid()

    def compute(self, pid, unit):
        name = unit.image
        if name == "bad":
            raise ImageError("bad is not an image")
        attempts = len(list(Path(self.folder).glob(f"attempt-{name}-*")))
        Path(self.folder, f"attempt-{name}-{attempts}-{pid}").touch()
        if name == self.kill and (attempts == 0 or self.always):
            os.kill(os.getpid(), signal.SIGKILL)
        rng = np.random.default_rng(unit.options["seed"])
        return {"value": rng.normal(size=4), "pid": np.asarray(pid)}


def _units(n):
    return [Unit.make("marked", f"u{i}", "normal", {"seed": 100 + i}) for i in range(n)]


def _files(folder, prefix):
    return sorted(p.name for p in Path(folder).glob(prefix + "-*"))


# ---------------------------------------------------------------- tests that need no cluster

@pytest.mark.slow  # a fresh interpreter imports torch
def test_importing_the_engine_does_not_import_ray():
    code = "import sys, clearsight.engine; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=_pythonpath()))


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ClearsightError, match=r"pip install -e '\.\[ray\]'"):
        RayEngine()


def test_bad_settings_are_user_errors():
    for bad in ({"workers": 0}, {"threads_per_worker": 0}, {"max_retries": -1}):
        with pytest.raises(ClearsightError):
            RayEngine(**bad)


def test_a_finished_store_needs_no_cluster(tmp_path):
    """Stored units are loaded on the driver: Ray is not even started."""
    store, units = UnitStore(tmp_path / "store"), _units(3)
    expected = LocalEngine().run(Marked(tmp_path), units, store)
    seen = []
    results = RayEngine(address="127.0.0.1:1").run(Marked(tmp_path), units[::-1] + units, store,
                                                   progress=lambda u, cached: seen.append(cached))
    assert list(results) == units[::-1] and seen == [True] * 3 and not ray.is_initialized()
    assert all(np.array_equal(results[u]["value"], expected[u]["value"]) for u in units)


# ---------------------------------------------------------------- tests on the cluster

@pytest.mark.slow
def test_ray_equals_local_on_real_photos(cluster, tmp_path, one_thread):
    """Grad-CAM and rollout of DeiT-Tiny on 2 photos: bitwise the same maps on Ray as in this process. Both
    sides run one torch thread (the local side by the ``one_thread`` fixture, Ray's workers by
    ``threads_per_worker=1``), so every reduction adds in the same order and equality is exact."""
    units = [Unit.make("saliency", photo, method, {"model": DEIT[0]}) for photo in PHOTOS
             for method in ("gradcam", "rollout")]
    local = LocalEngine().run(Explain(), units)
    seen = []
    store = UnitStore(tmp_path / "store")
    remote = RayEngine(address=cluster, workers=2).run(Explain(), units, store,
                                                       progress=lambda u, cached: seen.append((u, cached)))
    assert list(remote) == units and sorted(seen, key=lambda s: units.index(s[0])) == [(u, False) for u in units]
    assert torch.get_num_threads() == 1  # the driver's setting untouched (fixture's value)
    for unit in units:
        assert remote[unit]["saliency"].shape == (224, 224)
        np.testing.assert_array_equal(remote[unit]["saliency"], local[unit]["saliency"])
        assert int(remote[unit]["target"]) == int(local[unit]["target"])
        np.testing.assert_array_equal(store.load(unit)["saliency"], local[unit]["saliency"])
    assert len(store.finished()) == len(units)


@pytest.mark.slow
def test_setup_runs_once_per_worker_and_results_do_not_depend_on_the_worker(cluster, tmp_path):
    units = _units(8)
    remote = RayEngine(address=cluster, workers=2).run(Marked(tmp_path), units + units[:3])
    setups = _files(tmp_path, "setup")
    assert len(setups) == 2  # two worker processes, eight units
    pids = {int(name.split("-")[1]) for name in setups}
    assert {int(remote[u]["pid"]) for u in units} <= pids and os.getpid() not in pids
    assert len(_files(tmp_path, "attempt")) == 8  # a unit listed twice is computed once
    # each unit's numbers come from its own seed, whichever process drew them
    (tmp_path / "local").mkdir()
    local = LocalEngine().run(Marked(tmp_path / "local"), units)
    for unit in units:
        np.testing.assert_array_equal(remote[unit]["value"], local[unit]["value"])


@pytest.mark.slow
def test_a_worker_killed_mid_unit_costs_only_that_unit(cluster, tmp_path):
    store, units = UnitStore(tmp_path / "store"), _units(6)
    seen = []
    results = RayEngine(address=cluster, workers=2).run(Marked(tmp_path, kill="u2"), units, store,
                                                        progress=lambda u, cached: seen.append(u))
    attempts = _files(tmp_path, "attempt")
    u2 = [a for a in attempts if a.startswith("attempt-u2-")]
    assert len(u2) == 2 and u2[0].split("-")[3] != u2[1].split("-")[3]  # killed, then done by a new process
    assert len(_files(tmp_path, "setup")) == 3  # the restarted worker loaded its context again
    assert sorted(seen, key=units.index) == units  # every unit reported once
    assert len(store.finished()) == 6  # and stored once
    for unit in units:
        expected = np.random.default_rng(unit.options["seed"]).normal(size=4)
        np.testing.assert_array_equal(store.load(unit)["value"], expected)
        np.testing.assert_array_equal(results[unit]["value"], expected)


@pytest.mark.slow
def test_user_errors_come_back_as_themselves_and_endless_deaths_name_the_unit(cluster, tmp_path):
    engine = RayEngine(address=cluster, workers=1, max_retries=1)
    with pytest.raises(ImageError, match="^bad is not an image$"):
        engine.run(Marked(tmp_path), [Unit.make("marked", "bad", "normal", {"seed": 1})])
    doomed = Unit.make("marked", "doomed", "normal", {"seed": 1})
    with pytest.raises(EngineError, match=r"unit marked/doomed/normal failed: its Ray worker died 2 times") as err:
        engine.run(Marked(tmp_path, kill="doomed", always=True), [doomed])
    assert "\n" not in str(err.value)
    assert sum("-doomed-" in a for a in _files(tmp_path, "attempt")) == 2



class Niceness:
    """Each unit gives the niceness of the process that computed it and that process's id."""

    def setup(self):
        return None

    def compute(self, context, unit):
        return {"nice": np.asarray(os.nice(0)), "pid": np.asarray(os.getpid())}


@pytest.mark.slow  # last in the module: the only test that starts a Ray of its own (seconds)
def test_a_ray_started_here_lives_for_the_with_block_and_its_workers_are_as_nice_as_this_process():
    """A reproduction runs many evaluations: inside ``with engine:`` the Ray the engine started stays up between
    runs (not restarted per evaluation) and is shut down when the block ends. Its workers run at this process's
    niceness, not Ray's default 15 (which hands a busy machine's CPU to every other program)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Niceness travels by value
    units = _units(2)
    with RayEngine(workers=1) as engine:
        first = engine.run(Niceness(), units[:1])
        assert ray.is_initialized()
        second = engine.run(Niceness(), units[1:])
        assert ray.is_initialized()
    assert not ray.is_initialized()
    for result in (first[units[0]], second[units[1]]):
        assert int(result["pid"]) != os.getpid() and int(result["nice"]) == os.nice(0)
