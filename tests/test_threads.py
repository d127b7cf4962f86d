"""Thread choice: ``auto`` follows the idle cores, and a run leaves torch's thread count as it found it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from clearsight.errors import ClearsightError
from clearsight.threads import choose_threads, idle_cores, usable_cores, using_threads


def test_using_threads_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with using_threads(other) as chosen:
        assert chosen == other and torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), using_threads(other):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("bad", [0, -1, "many", 2.5, True, ""])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ClearsightError, match="threads"):
        choose_threads(bad)


def test_auto_takes_one_thread_when_every_core_is_busy():
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(usable_cores())]
    try:
        time.sleep(0.5)
        assert idle_cores() < usable_cores() - 0.5
        assert choose_threads("auto") == 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert 1 <= choose_threads("auto") <= usable_cores()
    assert choose_threads(None) is None and choose_threads("3") == 3
