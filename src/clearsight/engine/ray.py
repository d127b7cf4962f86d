"""The Ray engine: the same units, the same store, the same results as :class:`LocalEngine`, computed by
worker processes on a Ray cluster (or on a Ray started here).

Each worker is a Ray actor that calls :meth:`Work.setup` once (the model is loaded once per process, not once
per unit) and then computes the units it is sent. Results come back to the driver, which alone writes the
one :class:`UnitStore`, so a unit is stored once, atomically, even when a retry computed it twice.

A worker killed mid-unit (out of memory, a lost node) costs only that unit: Ray restarts the actor, which runs
``setup`` again, and retries the unit, up to ``max_retries`` times; a unit whose worker dies beyond that ends
the run with one line naming the unit. Errors a user causes in ``setup`` or ``compute`` (a
:class:`ClearsightError`) come back as that same error, not as a Ray traceback.

Ray is an optional extra: importing this module does not import Ray; making a :class:`RayEngine` without it
raises a :class:`ClearsightError` saying how to install it.
"""

from __future__ import annotations

import logging
import os
import pickle
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ClearsightError
from .local import Progress, pending
from .units import Unit, UnitStore, Work

#: units sent ahead to each worker, so it never waits for the driver between two units
IN_FLIGHT_PER_WORKER = 2
#: seconds to wait for a cluster's head to accept a connection before saying it cannot be reached
CONNECT_TIMEOUT = 5.0

INSTALL_HINT = "pip install -e '.[ray]' in the clearsight source folder"


class EngineError(ClearsightError):
    """A run could not finish: Ray is missing or unreachable, or a unit's worker kept dying."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise EngineError(f"the Ray engine needs Ray: {INSTALL_HINT}") from err
    return ray


class _Failure:
    """An exception raised by the user's ``setup`` or ``compute`` on a worker, carried back as a value so that
    the driver re-raises the exception itself rather than Ray's wrapper around it."""

    def __init__(self, error: BaseException) -> None:
        self.remote_traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        try:  # an exception class that cannot be unpickled (custom __init__) comes back as its text
            pickle.loads(pickle.dumps(error))
            self.error: BaseException | None = error
        except Exception:
            self.error = None
        self.kind = type(error).__name__
        self.user = isinstance(error, ClearsightError)
        self.message = str(error)

    def reraise(self, unit: Unit) -> None:
        if self.error is not None:
            error = self.error
        elif self.user:
            error = ClearsightError(self.message)
        else:
            error = RuntimeError(f"{self.kind}: {self.message}")
        if not self.user and hasattr(error, "add_note"):  # a bug, not a user mistake: keep where it happened
            error.add_note(f"while computing {unit.describe()} on a Ray worker:\n{self.remote_traceback}")
        raise error


class _Worker:
    """The body of one Ray actor: ``setup`` once (lazily, so that its errors come back like ``compute``'s,
    and again after Ray restarts a dead worker), then one unit per call.

    The work (every unit's task, photos included: megabytes) is not a constructor argument: Ray cannot
    always rebuild a restarted actor whose constructor arguments sat in its object store (ray-project/ray
    #53727; it logs an error for every such actor). Each call carries a reference to it instead, inside a
    list so that Ray passes the reference rather than the value, and the actor fetches the work once."""

    def __init__(self, threads: int) -> None:
        import torch  # the worker's own thread count; the driver's is left as it was

        torch.set_num_threads(threads)
        self.work: Work | None = None
        self.context: Any = None

    def compute(self, work_ref: list[Any], unit: Unit) -> dict[str, np.ndarray] | _Failure:
        try:
            if self.work is None:
                import ray

                work = ray.get(work_ref[0])
                self.context = work.setup()
                self.work = work
            return {k: np.asarray(v) for k, v in self.work.compute(self.context, unit).items()}
        except Exception as error:
            return _Failure(error)


class RayEngine:
    """Runs :class:`Work` on Ray actors, one per worker process, with ``threads_per_worker`` torch threads each.

    ``address`` (default: ``RAY_ADDRESS`` when set) names an existing cluster (``"auto"``, ``"HOST:6379"``,
    ``"ray://HOST:10001"``; its workers run at the niceness its ``ray start`` gave them, 15 unless
    ``RAY_worker_niceness`` said otherwise). Without it a new Ray with ``workers * threads_per_worker`` CPUs
    (workers as nice as this process) is started in this process and shut down after the run, or, inside
    ``with engine:``, when the block ends (a reproduction runs many evaluations; starting Ray for each would
    cost seconds every time). A Ray the caller already initialised is used as it is and left running.
    ``workers`` defaults to the cluster's CPUs divided by ``threads_per_worker``; ``max_retries`` is how often a
    unit is retried after its worker process died.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, threads_per_worker: int = 1,
                 max_retries: int = 3) -> None:
        self._ray = _import_ray()
        if workers is not None and workers < 1:
            raise EngineError(f"workers must be at least 1, got {workers}")
        if threads_per_worker < 1:
            raise EngineError(f"threads_per_worker must be at least 1, got {threads_per_worker}")
        if max_retries < 0:
            raise EngineError(f"max_retries must be 0 or more, got {max_retries}")
        self.address = address if address is not None else (os.environ.get("RAY_ADDRESS") or None)  # Ray's own
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self.max_retries = max_retries
        self._started = False  # this engine initialised the Ray it uses (and must shut it down)
        self._kept = False  # inside ``with engine:``: a Ray it started stays up until the block ends

    def __enter__(self) -> RayEngine:
        self._kept = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._kept = False
        self.close()

    def close(self) -> None:
        """Shut down the Ray this engine started (a Ray someone else started is left running)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def check_address(self) -> None:
        """Refuse, in one line, a cluster address whose head does not accept a connection: ``ray.init`` on a
        wrong host or port does not fail, it retries for good (seen with Ray 2.x: "Failed to connect to GCS
        ... within 5 seconds", again and again). ``auto`` and no address are left to Ray."""
        if self.address is None or self.address in ("auto", "local"):
            return
        reach_head(self.address, CONNECT_TIMEOUT)

    def _connect(self) -> None:
        """Initialise Ray unless it already is (then this engine owns it, and :meth:`close` shuts it down)."""
        ray = self._ray
        if ray.is_initialized():
            return
        self.check_address()
        try:
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=True)
            else:
                cpus = (self.workers or os.cpu_count() or 1) * self.threads_per_worker
                # Ray's own notices about a Ray that lives only for this run (it started, its token) are noise
                # beside the run's progress bar; its errors and the workers' output still come through. Ray
                # runs its workers at nice 15: on a busy machine they would get a few percent of a core beside
                # any other program (the local engine gets its share), so they run as nice as this one. "local":
                # a new Ray even where `ray start` left one running (ray.init() alone would join that one)
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=True,
                         logging_level=logging.ERROR, _system_config={"worker_niceness": 0})
        except Exception as err:  # unreachable, refused, timed out starting (Ray raises bare Exceptions too)
            raise EngineError(f"cannot start or reach Ray (address {self.address}): {_first_line(err)}") from err
        self._started = True

    def _worker_count(self, todo: int) -> int:
        if self.workers is not None:
            return min(self.workers, todo)
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        return max(1, min(todo, cpus // self.threads_per_worker))

    def run(self, work: Work, units: Sequence[Unit], store: UnitStore | None = None,
            progress: Progress | None = None) -> dict[Unit, dict[str, np.ndarray]]:
        """The arrays of every unit (stored ones loaded, the others computed on Ray and stored here), keyed by
        unit in the order of ``units``; a unit listed twice is computed once."""
        done, todo = pending(units, store)
        for unit in done:
            if progress:
                progress(unit, True)
        if todo:
            self._connect()
            try:
                self._compute(work, todo, store, done, progress)
            finally:
                if not self._kept:
                    self.close()
        return {unit: done[unit] for unit in dict.fromkeys(units)}

    def _compute(self, work: Work, todo: list[Unit], store: UnitStore | None,
                 done: dict[Unit, dict[str, np.ndarray]], progress: Progress | None) -> None:
        ray = self._ray
        actor_class = ray.remote(_Worker).options(
            num_cpus=self.threads_per_worker,
            max_restarts=-1,  # a dead worker always comes back; what bounds the cost is each unit's retries
            max_task_retries=self.max_retries,
        )
        actors = [actor_class.remote(self.threads_per_worker) for _ in range(self._worker_count(len(todo)))]
        shared = [ray.put(work)]  # held here until the run ends: every worker fetches the work from it
        queue = list(reversed(todo))
        running: dict[Any, tuple[Unit, Any]] = {}

        def submit(actor: Any) -> None:
            unit = queue.pop()
            running[actor.compute.remote(shared, unit)] = (unit, actor)

        try:
            for _ in range(IN_FLIGHT_PER_WORKER):
                for actor in actors:
                    if queue:
                        submit(actor)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                unit, actor = running.pop(ready[0])
                try:
                    arrays = ray.get(ready[0])
                except ray.exceptions.RayActorError as err:
                    raise EngineError(
                        f"unit {unit.describe()} failed: its Ray worker died {self.max_retries + 1} times "
                        f"(killed, out of memory, or its node was lost); {_first_line(err)}") from None
                except ray.exceptions.RayError as err:  # e.g. its result lost with its node
                    raise EngineError(f"unit {unit.describe()} failed on Ray: {_first_line(err)}") from None
                if isinstance(arrays, _Failure):
                    arrays.reraise(unit)
                if store is not None:
                    store.save(unit, arrays)
                done[unit] = arrays
                if progress:
                    progress(unit, False)
                if queue:
                    submit(actor)
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)


def reach_head(address: str, timeout: float) -> None:
    """Open (and close) a TCP connection to a Ray address (``HOST:PORT`` or ``ray://HOST:PORT``), or raise
    :class:`EngineError` saying why not."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EngineError(f"Ray address {address!r} should be HOST:PORT (the head's GCS port, 6379 unless "
                          "`ray start --head --port` said otherwise), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err) or type(err).__name__)
        raise EngineError(f"cannot reach Ray at {address}: {why}; is the head node up (`ray start --head`) and "
                          "is that its address?") from None


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
