"""The unit progress bar of ``explain``, ``evaluate`` and ``reproduce``: units loaded from the store (or results
``explain`` kept) tick the bar but stay out of the estimate of the time left (a resumed run once announced
"3 s left" for hours of work), and the estimate is the pace of the computed units times the units still to
come."""

from __future__ import annotations

import io

from tqdm import tqdm

from clearsight.cli.progress import BAR_FORMAT, UnitBar, duration
from clearsight.evaluation import evaluate_curves

from .test_driver import images


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_counts_computed_units_only():
    clock, text = Clock(), io.StringIO()
    bar = UnitBar(tqdm(file=text, bar_format=BAR_FORMAT, mininterval=0), clock)
    bar.expect(100)
    for _ in range(90):  # a resumed run: 90 units found in the store in three seconds
        clock.now += 3 / 90
        bar.from_store("stored")
    assert bar.left() is None and "left" not in bar.bar.postfix
    clock.now += 120  # two minutes for the first computed unit
    bar("cartoonx")
    assert bar.left() == 9 * 120.0 and bar.bar.postfix == "cartoonx, 90 already done, ~18 min left"
    clock.now += 60  # two more in one minute: 3 units in 3 minutes, 7 to go
    bar("pixel-rde")
    bar("pixel-rde")
    assert bar.left() == 7 * 60.0
    bar.expect(10)  # 10 more planned with 7 of 100 open (a total that was a guess): 103, at the same pace
    assert bar.bar.total == 93 + 10 and bar.left() == 10 * 60.0
    bar.bar.close()


def test_a_total_set_up_front_is_kept_when_the_plan_fits_it():
    bar = UnitBar(tqdm(total=12, file=io.StringIO()))
    bar.expect(6)
    assert bar.bar.total == 12
    bar.bar.close()


def test_durations_read_like_a_wait():
    assert [duration(s) for s in (0.4, 40, 59.6, 600, 3599, 3600, 4 * 3600 + 5 * 60, -3)] == \
        ["0 s", "40 s", "1 min", "10 min", "1 h 00 min", "1 h 00 min", "4 h 05 min", "0 s"]


def test_the_driver_hands_stored_units_to_the_bar_as_such(tiny_vit, tmp_path):
    pics = images(2, seed=3)
    labels = [None, (int(tiny_vit.logits(pics[1][None]).argmax()) + 1) % 10]  # the second is misclassified
    kinds: list[tuple[str, str]] = []

    class Recording(UnitBar):
        def __call__(self, label: str) -> None:
            kinds.append(("computed", label))
            super().__call__(label)

        def from_store(self, label: str) -> None:
            kinds.append(("free", label))
            super().from_store(label)

    run = dict(names=["a", "b"], store=tmp_path)
    first = Recording(tqdm(file=io.StringIO()))
    evaluate_curves(tiny_vit, pics, labels, ["gradcam", "moxi-minus"], "deletion", progress=first, **run)
    assert sorted(kinds) == [("computed", "gradcam"), ("computed", "moxi-minus"),  # photo a: computed
                             ("free", "gradcam"), ("free", "moxi-minus")]  # photo b: skipped, no work
    assert first.computed == 2 and first.stored == 2 and first.bar.n == first.bar.total == 4
    kinds.clear()
    again = Recording(tqdm(file=io.StringIO()))
    evaluate_curves(tiny_vit, pics, labels, ["gradcam", "moxi-minus"], "deletion", progress=again, **run)
    assert [k for k, _ in kinds] == ["free"] * 4 and again.computed == 0 and again.left() is None
