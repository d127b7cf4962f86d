"""The papers' claims as data and the claims table (issue 14): fast, no model.

A synthetic "paper-like world" of summaries, written to the contract of
:mod:`clearsight.experiments.claims.summary` and shaped as the papers describe their results, must make every
tested claim hold; the same world with an ordering reversed must make that claim fail. Known-answer checks pin
the interpolation and each measure's arithmetic.
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest

from clearsight.errors import ClearsightError
from clearsight.experiments.claims import (
    CLAIMS,
    EXPERIMENTS,
    MEASURES,
    Check,
    ClaimError,
    claims_html,
    claims_of,
    claims_table,
    format_value,
    read_summary,
    results_markdown,
    value_at,
    write_results_md,
    write_summary,
)
from clearsight.experiments.claims.papers import UNITS
from clearsight.experiments.claims.summary import _ranks, early_mean

PAPERS = Path("/work/shared/papers")
PAPER_FILES = {"moxi": "moxi.md", "cartoonx": "cartoonx-reproduction.md"}


def curve(knots_x, knots_y, n=50):
    """A piecewise-linear curve sampled at n+1 equally spaced points (knots on the grid stay exact)."""
    return np.interp(np.linspace(0, 1, n + 1), knots_x, knots_y).tolist()


INSERTION = {
    "moxi": curve([0, .04, .2, 1], [0, .9, 1, 1]),
    "moxi-minus": curve([0, .04, .3, 1], [0, .3, .95, 1]),
    "shapley": curve([0, .04, .3, 1], [0, .25, .9, 1]),
    "gradcampp": curve([0, .04, .6, 1], [0, .03, .7, 1]),
    "gradcam": curve([0, .04, .6, 1], [0, .02, .6, 1]),
    "rollout": curve([0, .04, .6, 1], [0, .04, .55, 1]),
}
DELETION = {
    "moxi": curve([0, .1, .3, 1], [1, .16, 0, 0]),
    "moxi-minus": curve([0, .1, .5, 1], [1, .5, .1, 0]),
    "shapley": curve([0, .1, .5, 1], [1, .45, .1, 0]),
    "gradcampp": curve([0, .1, .6, 1], [1, .75, .2, 0]),
    "gradcam": curve([0, .1, .6, 1], [1, .79, .2, 0]),
    "rollout": curve([0, .1, .6, 1], [1, .79, .25, 0]),
}


def rd(keep: dict, randomize: dict) -> dict:
    return {"keep": {"mean": {m: curve(*k, n=100) for m, k in keep.items()}},
            "randomize": {"mean": {m: curve(*k, n=100) for m, k in randomize.items()}}}


def paper_world() -> dict[str, dict]:
    """Summaries of every experiment, shaped as the papers report their results."""
    vit = {"model": "deit-tiny", "architecture": "vit", "images": 180, "patches": 50,
           "insertion": {"accuracy": INSERTION}, "deletion": {"accuracy": DELETION}}
    cnn = {"model": "mobilenetv2", "architecture": "cnn", "images": 150, "patches": 50,
           "insertion": {"accuracy": {m: c for m, c in INSERTION.items() if m != "rollout"}},
           "deletion": {"accuracy": {m: c for m, c in DELETION.items() if m != "rollout"}}}
    common = {"model": "deit-tiny", "architecture": "vit", "images": 3}
    cx_keep = {"cartoonx": ([0, .1, .5, 1], [1, .25, .3, 0]), "pixel-rde": ([0, .1, .5, 1], [1, .27, .32, 0]),
               "random-wavelet": ([0, 1], [1, 0]), "random-pixel": ([0, 1], [1, 0])}
    cx_randomize = {"cartoonx": ([0, .1, 1], [0, .9, 1]), "pixel-rde": ([0, .1, 1], [0, .8, 1]),
                    "random-wavelet": ([0, 1], [0, 1]), "random-pixel": ([0, 1], [0, 1])}
    cnn_rd = rd(cx_keep, cx_randomize)
    vit_rd = rd({"cartoonx": ([0, .1, 1], [1, .4, 0]), "random-wavelet": ([0, 1], [1, 0])},
                {"cartoonx": ([0, .1, 1], [0, .7, 1]), "random-wavelet": ([0, 1], [0, 1])})
    cnn_rd["keep"]["normalized"] = {"cartoonx": curve([0, .1, 1], [100, 20, 0], n=100)}
    cnn_rd["randomize"]["normalized"] = {"cartoonx": curve([0, .1, 1], [0, 90, 100], n=100)}
    vit_rd["keep"]["normalized"] = {"cartoonx": curve([0, .1, 1], [100, 40, 0], n=100)}
    vit_rd["randomize"]["normalized"] = {"cartoonx": curve([0, .1, 1], [0, 70, 100], n=100)}
    ones = np.linspace(1, .1, 100)
    moxi = {
        "curves": [vit, cnn],
        "heatmaps": {**common, "steps": {
            "insertion": {"moxi": [2, 3, 4], "moxi-minus": [5, 6, 7], "gradcam": [10, 12, 14],
                          "rollout": [9, 9, 9], "shapley": [4, 5, 6]},
            "deletion": {"moxi": [3, 5, 7], "moxi-minus": [20, 30, 40], "gradcam": [15, 25, 35]}}},
        "class-discriminative": {**common, "figures": ["class-discriminative/bull-mastiff.png"]},
        "corruptions": {**common, "severity": 5, "corruptions": {
            name: {"accuracy": DELETION} for name in ("gaussian_noise", "fog", "contrast")}},
        "adversarial": {**common, "epsilon": 1.0, "step": 0.2,
                        "deletion": {"accuracy": {**DELETION, "rollout": curve([0, .1, .3, 1], [1, .1, 0, 0])}},
                        "perturbation_norms": {"rollout": np.linspace(10, 1, 50).tolist(),
                                               "moxi": (np.abs(np.linspace(-1, 1, 50)) + 1).tolist()}},
        "set-sum": {"model": "set-sum-cnn", "architecture": "cnn", "images": 200, "patches": 4,
                    "duplicate_rate": 0.496,
                    "insertion": {"accuracy": {"moxi": [0, .3, .8, 1, 1], "moxi-minus": [0, .3, .5, .7, 1],
                                               "shapley": [0, .3, .4, .6, 1]}}},
        "consistency": {**common, "classes": [10, 20, 100, 1000],
                        "insertion": {"auc": {
                            "moxi": {"10": .8, "20": .79, "100": .79, "1000": .78},
                            "rollout": {"10": .6, "20": .5, "100": .4, "1000": .3},
                            "gradcam": {"10": .5, "20": .45, "100": .4, "1000": .35},
                            "shapley": {"10": .7, "20": .65, "100": .6, "1000": .55}}},
                        "deletion": {"auc": {"moxi": {"10": .10, "20": .11, "100": .12, "1000": .12}}}},
        "runtime": {**common, "images": 20, "patches": 196,
                    "seconds": {"gradcam": [.1, .2], "rollout": [.01, .03], "shapley": [18, 18],
                                "moxi-insertion": [.6, .6], "moxi-deletion": [1.3, 1.4]},
                    "greedy_steps": {"insertion": [6] * 19 + [20], "deletion": [10] * 20}},
    }
    cartoonx = {
        "qualitative": {"model": "mobilenetv2", "images": 200, "figures": ["qualitative/grid.png"]},
        "rate-distortion": {"model": "mobilenetv2", "images": 200, **cnn_rd},
        "lambda": {"model": "mobilenetv2", "images": 20, "lambdas": [4, 8],
                   "distortion": {"cartoonx": {"4": .1, "8": .15}, "pixel-rde": {"4": .12, "8": .2}},
                   "sparsity": {"cartoonx": {"4": .3, "8": .2}, "pixel-rde": {"4": .5, "8": .4}}},
        "vit": {"model": "mobilenetv2 + deit-tiny", "images": 3, "cnn": {"model": "mobilenetv2", **cnn_rd},
                "vit": {"model": "deit-tiny", **vit_rd}, "sparsity": {"cnn": [.3, .3, .3], "vit": [.1, .2, .4]}},
        "inits": {"model": "mobilenetv2", "images": 3,
                  "loss": {"ones": ones.tolist(), "preoptimize": np.minimum(ones, .5).tolist(),
                           "foreground": (ones + .2).tolist(), "random": (ones + .1).tolist()},
                  "final": {"ones": [.1, .1, .12], "preoptimize": [.1, .1, .12], "foreground": [.3, .3, .3],
                            "random": [.05, .3, .1]}},
        "runtime": {"model": "mobilenetv2", "images": 2, "seconds": {"cartoonx": [96, 96], "pixel-rde": [75, 75]}},
    }
    # the world must be what results are stored as: plain JSON
    return json.loads(json.dumps({"moxi": moxi, "cartoonx": cartoonx}))


def rows_by_id(paper: str, summaries: dict) -> dict:
    return {r.claim.id: r for r in claims_table(paper, summaries, {e: f"clearsight reproduce {paper} --only {e}"
                                                                     for e in summaries})}


# ---- the claims as data ----

def test_every_claim_names_an_experiment_of_its_paper_a_known_measure_and_a_unique_id():
    assert len({c.id for c in CLAIMS}) == len(CLAIMS)
    for c in CLAIMS:
        assert c.experiment in EXPERIMENTS[c.paper], c.id
        assert c.where.startswith(("Sec.", "App.")), c.id
        assert c.statement and c.paper_value and c.paper_setting, c.id
        assert c.unit in UNITS, c.id
        assert c.architecture in (None, "vit", "cnn"), c.id
        if c.measure is None:
            assert c.holds.op == "by eye", c.id
        else:
            assert c.holds.op != "by eye", c.id
            inspect.signature(MEASURES[c.measure]).bind(None, **dict(c.args))  # the arguments fit
    for paper, experiments in EXPERIMENTS.items():  # every experiment has at least one claim
        assert {c.experiment for c in claims_of(paper)} == set(experiments)


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the papers' texts are not on this machine")
def test_every_number_in_a_paper_value_is_quoted_from_the_paper():
    texts = {p: (PAPERS / f).read_text() for p, f in PAPER_FILES.items()}
    for c in CLAIMS:
        for number in re.findall(r"\d+(?:\.\d+)?", c.paper_value):
            assert number in texts[c.paper], f"{c.id}: {number} is not in the {c.paper} paper"


def test_the_key_numbers_of_the_issue_are_claims():
    values = {c.id: c.paper_value for c in CLAIMS}
    assert values["moxi-ins4-moxi"] == "90%" and values["moxi-ins4-gradcam"] == "2%"
    assert values["moxi-ins4-rollout"] == "4%" and values["moxi-ins4-shapley"] == "25%"
    assert values["moxi-del10-moxi"] == "16%" and values["moxi-del10-gradcam"] == "approximately 79%"
    assert values["moxi-steps-insertion"].startswith("6") and values["moxi-steps-deletion"].startswith("10")
    assert "30x" in values["moxi-runtime-30x"]


# ---- measures: known answers ----

def test_value_at_interpolates_linearly_on_equally_spaced_points():
    y = (np.linspace(0, 1, 11) ** 2).tolist()  # 10 patches: x = 0, 0.1, ...
    assert value_at(y, 0.04) == pytest.approx(0.4 * 0.01, abs=1e-15)  # between j=0 (0) and j=1 (0.01)
    assert value_at(y, 0.5) == pytest.approx(0.25, abs=1e-15)  # a grid point: exact
    assert value_at(list(range(197)), 0.04) == pytest.approx(0.04 * 196)  # 196 patches: between j=7 and 8
    assert value_at(y, 1.0) == 1.0 and value_at(y, 0.0) == 0.0


def test_early_mean_and_ranks():
    assert early_mean(np.linspace(0, 1, 101), 0.25) == pytest.approx(0.125)
    assert early_mean(np.linspace(0, 1, 3), 0.25) == pytest.approx(0.125)  # end interpolated between points
    assert _ranks(np.array([1.0, 1.0, 2.0])).tolist() == [0.5, 0.5, 2.0]


def test_measures_give_the_known_answers_of_the_paper_world():
    world = paper_world()
    moxi, cx = rows_by_id("moxi", world["moxi"]), rows_by_id("cartoonx", world["cartoonx"])
    assert moxi["moxi-ins4-moxi"].value == pytest.approx(0.9)
    assert moxi["moxi-ins4-lead"].value == pytest.approx(0.9 - 0.25)  # ahead of the best rival, Shapley
    assert moxi["moxi-del10-gradcam"].value == pytest.approx(0.79)
    assert moxi["moxi-del10-lead"].value == pytest.approx(0.79 - 0.16)
    assert moxi["moxi-setsum-50"].value == pytest.approx(0.8 - 0.5)
    assert moxi["moxi-setsum-75"].value == pytest.approx(1.0 - 0.7)
    assert moxi["moxi-consistency-rollout"].value == pytest.approx((0.6 - 0.3) - (0.8 - 0.78))
    assert moxi["moxi-consistency-others"].value == pytest.approx((0.7 - 0.55) - (0.8 - 0.78))
    assert moxi["moxi-consistency-deletion"].value == pytest.approx(0.02)
    assert moxi["moxi-adv-rollout-aligned"].value == pytest.approx(-1.0)
    assert moxi["moxi-runtime-30x"].value == pytest.approx(30.0)
    assert moxi["moxi-runtime-not-as-fast"].value == pytest.approx(0.6 - 0.15)
    assert moxi["moxi-steps-under-4pct"].value == pytest.approx(0.95)
    assert moxi["moxi-heat-ins-fewer"].value == 2.0  # Shapley's median 5 minus MoXI's 3
    assert moxi["moxi-corrupt-all"].value == 1.0
    assert moxi["moxi-ins-monotone"].value == 0.0
    assert cx["cx-rd-keep-drop-cartoonx"].value == pytest.approx(0.25)
    assert cx["cx-rd-keep-rise-cartoonx"].value == pytest.approx(0.05)
    assert cx["cx-lambda-sparsity"].value == pytest.approx(-0.2)
    assert cx["cx-lambda-distortion"].value == pytest.approx(0.1 / 0.12)  # the larger of 0.1/0.12, 0.15/0.2
    assert cx["cx-vit-sparser"].value == pytest.approx(2 / 3)
    assert cx["cx-inits-reunite"].value == pytest.approx(1.0)
    assert cx["cx-runtime-ratio"].value == pytest.approx(96 / 75)


def test_every_claim_holds_in_a_world_shaped_as_the_papers_say():
    world = paper_world()
    for paper in ("moxi", "cartoonx"):
        for row in claims_table(paper, world[paper]):
            expected = "by eye" if row.claim.qualitative else "reported" if row.claim.holds.op == "report" else "yes"
            assert row.verdict == expected, (row.claim.id, row.value, row.note)
            assert row.model and row.images


def test_claims_fail_when_the_world_contradicts_them():
    world = paper_world()["moxi"]
    vit = world["curves"][0]
    vit["insertion"]["accuracy"]["moxi"], vit["insertion"]["accuracy"]["gradcam"] = (
        vit["insertion"]["accuracy"]["gradcam"], vit["insertion"]["accuracy"]["moxi"])
    world["runtime"]["seconds"]["moxi-insertion"] = [0.001]  # faster than Grad-CAM: not "about 30x" either
    rows = rows_by_id("moxi", world)
    for failing in ("moxi-ins4-moxi", "moxi-ins4-gradcam", "moxi-ins4-lead", "moxi-ins-auc", "moxi-runtime-30x",
                    "moxi-runtime-not-as-fast"):
        assert rows[failing].verdict == "no", failing
    assert rows["moxi-ins-auc"].value < 0
    assert rows["moxi-del-auc"].verdict == "yes"  # the deletion curves were left alone


@pytest.mark.parametrize(("check", "yes", "no"), [
    (Check(">", 0.0), 1e-9, 0.0),
    (Check(">=", 0.5), 0.5, 0.4999),
    (Check("<", 0.0), -1e-9, 0.0),
    (Check("<=", 1.05), 1.05, 1.0501),
    (Check("approx", 0.9, 0.1), 0.8, 0.7999),
    (Check("approx", 0.9, 0.1), 1.0, 1.0001),
    (Check("factor", 30.0, 2.0), 15.0, 14.99),
    (Check("factor", 30.0, 2.0), 60.0, 60.01),
])
def test_holds_on_both_sides_of_the_threshold(check, yes, no):
    assert check.holds(yes) is True
    assert check.holds(no) is False
    assert check.holds(float("nan")) is False


def test_untested_checks_refuse_a_number_and_bad_checks_are_refused():
    with pytest.raises(ValueError):
        Check("by eye").holds(1.0)
    with pytest.raises(ValueError):
        Check("~", 1.0)
    with pytest.raises(ValueError):
        Check("factor", 30.0, 0.5)
    assert Check("approx", 0.9, 0.1).describe("percent") == "within 10.0 points of 90.0%"
    assert format_value(0.123, "points") == "+12.3 points" and format_value(29.83, "ratio") == "29.8x"


# ---- not measured: never omitted, never faked ----

def test_missing_summaries_give_not_measured_rows_for_every_claim():
    for paper in ("moxi", "cartoonx"):
        rows = claims_table(paper, {})
        assert [r.claim.id for r in rows] == [c.id for c in claims_of(paper)]
        assert all(r.verdict == "not measured" and r.value is None for r in rows)
        assert all("has not run" in r.note for r in rows)


def test_a_cnn_run_measures_the_cnn_claims_only_and_a_missing_method_is_not_measured():
    world = paper_world()["moxi"]
    cnn = world["curves"][1]
    rows = rows_by_id("moxi", {"curves": cnn})
    assert rows["moxi-cnn-ins-auc"].verdict == "yes" and rows["moxi-cnn-ins-auc"].model == "mobilenetv2"
    assert rows["moxi-ins4-moxi"].verdict == "not measured" and "ViT" in rows["moxi-ins4-moxi"].note
    # a ViT run without rollout: the rollout claim says which method is missing, the others are measured
    vit = world["curves"][0]
    del vit["insertion"]["accuracy"]["rollout"]
    rows = rows_by_id("moxi", {"curves": vit})
    assert rows["moxi-ins4-rollout"].verdict == "not measured" and "rollout" in rows["moxi-ins4-rollout"].note
    assert rows["moxi-ins4-lead"].verdict == "yes"  # compared with the rivals the run has
    assert rows["moxi-ins4-moxi"].verdict == "yes"


def test_a_malformed_summary_is_not_measured_and_bad_input_is_a_user_error():
    rows = rows_by_id("moxi", {"runtime": {"model": "m", "seconds": {"shapley": "fast", "moxi-insertion": [1]}}})
    assert rows["moxi-runtime-30x"].verdict == "not measured" and "could not be read" in rows["moxi-runtime-30x"].note
    with pytest.raises(ClaimError, match="unknown paper"):
        claims_table("gradcam", {})
    with pytest.raises(ClaimError, match="no experiment 'lambda' in the moxi"):
        claims_table("moxi", {"lambda": {}})
    with pytest.raises(ClearsightError, match="must be a dict"):
        claims_table("moxi", {"curves": "results.json"})


# ---- results.md and the HTML section ----

HOSTILE = "evil | <script>alert(1)</script> `x` *bold* \n second line & [link](http://x)"


def table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_results_md_has_every_claim_escapes_odd_text_and_is_written_atomically(tmp_path):
    world = paper_world()["moxi"]
    world["curves"][0]["model"] = HOSTILE
    del world["runtime"]
    rows = claims_table("moxi", world, {"curves": "clearsight reproduce moxi --only curves | tee `log`"},
                        deviations=[HOSTILE])
    path = write_results_md(tmp_path / "out" / "results.md", rows, {"clearsight": "0.1", "images": HOSTILE})
    text = path.read_text()
    assert text == results_markdown(rows, {"clearsight": "0.1", "images": HOSTILE})
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.md"]  # no temporary file left
    for c in claims_of("moxi"):
        assert f"**{c.id}**" in text
    not_run = sum(c.experiment == "runtime" for c in claims_of("moxi"))
    assert "\n".join(table_lines(text)).count("**not measured**") == not_run
    assert "## runtime" in text and "## Deviations from the papers' setting" in text
    assert "<script>" not in text and "&lt;script&gt;" in text
    unescaped_pipes = re.compile(r"(?<!\\)\|")
    lines = table_lines(text)
    assert lines and all(len(unescaped_pipes.findall(line)) == 11 for line in lines)  # 10 columns, odd text too
    assert all("\n" not in line for line in lines)
    assert "`` clearsight reproduce moxi --only curves \\| tee `log` ``" in text  # fenced past its backticks


def test_results_md_deviations_default_to_the_papers_list():
    rows = claims_table("cartoonx", {})
    text = results_markdown(rows)
    assert "DeiT-Tiny" in text and "Titan RTX" in text
    assert "6 claims" not in text.splitlines()[0]


def test_claims_html_escapes_every_text():
    world = paper_world()["cartoonx"]
    world["rate-distortion"]["model"] = HOSTILE
    world["qualitative"]["figures"] = ['"><img src=x onerror=alert(1)>']
    rows = claims_table("cartoonx", world, {"lambda": HOSTILE}, deviations=[HOSTILE])
    out = claims_html(rows)
    assert "<script>" not in out and "<img" not in out and "&lt;script&gt;" in out
    assert out.startswith('<section class="claims" id="claims">') and out.endswith("</section>")
    assert out.count("<tr>") == len(rows) + len(EXPERIMENTS["cartoonx"])  # a header row per experiment
    assert all(f"<b>{c.id}</b>" in out for c in claims_of("cartoonx"))


def test_summaries_round_trip_through_json_and_rebuild_the_same_table(tmp_path):
    world = paper_world()["moxi"]
    world["runtime"]["seconds"]["shapley"] = np.array([18.0, 18.0], dtype=np.float32)  # numpy, as a driver has
    world["runtime"]["greedy_steps"]["deletion"] = tuple(np.int64(10) for _ in range(20))
    paths = {e: write_summary(tmp_path / f"{e}.json", s) for e, s in world.items()}
    back = {e: read_summary(p) for e, p in paths.items()}
    direct, stored = claims_table("moxi", world), claims_table("moxi", back)
    assert [(r.claim.id, r.verdict, r.value) for r in stored] == [(r.claim.id, r.verdict, r.value) for r in direct]
    # NaN is not JSON: it is stored as null and the claim on that curve is not measured, not faked
    world["curves"][0]["insertion"]["accuracy"]["moxi"][2] = float("nan")
    row = rows_by_id("moxi", {"curves": read_summary(write_summary(tmp_path / "nan.json", world["curves"][0]))})
    assert row["moxi-ins4-moxi"].verdict == "not measured" and "not a curve" in row["moxi-ins4-moxi"].note
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ClaimError, match="cannot read"):
        read_summary(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ClaimError, match="not an experiment summary"):
        read_summary(tmp_path / "list.json")
