"""The unit store and the local engine: one file per unit, reused when present, never shared by two units."""

from __future__ import annotations

import numpy as np

from clearsight.engine import LocalEngine, Unit, UnitStore


class Squares:
    """Work whose result is a known function of the unit; counts setups and computations."""

    def __init__(self) -> None:
        self.setups = 0
        self.computed: list[Unit] = []

    def setup(self):
        self.setups += 1
        return {"offset": 1.0}

    def compute(self, context, unit):
        self.computed.append(unit)
        x = float(unit.options["x"])
        return {"value": np.asarray(x * x + context["offset"])}


def units(n: int) -> list[Unit]:
    return [Unit.make("squares", f"img{i}.jpg", "m", {"x": i}) for i in range(n)]


def test_units_with_any_difference_get_distinct_keys_and_files(tmp_path):
    store = UnitStore(tmp_path)
    variants = [Unit.make("e", "a.jpg", "m", {"x": 1}), Unit.make("e", "a.jpg", "m", {"x": 2}),
                Unit.make("e", "a.jpg", "m2", {"x": 1}), Unit.make("f", "a.jpg", "m", {"x": 1}),
                Unit.make("e", "a?jpg", "m", {"x": 1}), Unit.make("e", "a_jpg", "m", {"x": 1})]
    assert len({u.key() for u in variants}) == len(variants)
    assert len({store.path(u) for u in variants}) == len(variants)
    # settings given in another order are the same unit
    assert Unit.make("e", "a", "m", {"p": 1, "q": 2}) == Unit.make("e", "a", "m", {"q": 2, "p": 1})


def test_local_engine_computes_each_unit_once_and_resumes_from_the_store(tmp_path):
    store, work = UnitStore(tmp_path), Squares()
    seen = []
    results = LocalEngine().run(work, units(4) + units(2), store, progress=lambda u, cached: seen.append(cached))
    assert [float(r["value"]) for r in results.values()] == [1.0, 2.0, 5.0, 10.0]
    assert len(work.computed) == 4 and work.setups == 1 and seen == [False] * 4
    assert len(store.finished()) == 4

    again = Squares()
    results = LocalEngine().run(again, units(5), store)
    assert again.computed == [units(5)[4]]  # only the new unit
    assert [float(r["value"]) for r in results.values()] == [1.0, 2.0, 5.0, 10.0, 17.0]


def test_a_damaged_or_foreign_file_is_recomputed(tmp_path):
    store, work = UnitStore(tmp_path), Squares()
    unit = units(1)[0]
    LocalEngine().run(work, [unit], store)
    store.path(unit).write_bytes(b"not an npz")
    assert store.load(unit) is None
    other = Unit.make("squares", unit.image, unit.method, {"x": 7})
    store.save(other, {"value": np.asarray(50.0)})
    store.path(other).replace(store.path(unit))  # a file copied under another unit's name
    assert store.load(unit) is None
    assert float(LocalEngine().run(work, [unit], store)[unit]["value"]) == 1.0
