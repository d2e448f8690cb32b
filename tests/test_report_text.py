"""Tests for zentrack._report.text: the compare leaderboard, the runs list and one run as text.

Comparisons are built from :class:`zentrack.Run` objects where the layout is
what is tested (exact times and values), and recorded through the public API
where the store's part matters (run-level metrics, tags, CACHED steps).
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

import zentrack as zt
from zentrack._report.text import records_text, run_text, runs_text
from zentrack._step.values import MISSING

T0 = time.mktime((2024, 5, 3, 14, 2, 0, 0, 0, -1))


def make_run(
    i: int, *, took: float | None = 30.0, tags: dict[str, str] | None = None
) -> zt.Run[Any]:
    """A run started ``i`` minutes after :data:`T0`."""
    started = T0 + 60 * i
    return zt.Run(
        id=f"r{i}",
        pipeline="sweep",
        state="COMPLETE",
        steps=[],
        params={},
        config_path=None,
        started=started,
        ended=started + took if took is not None else None,
        tags=tags or {},
    )


def comparison(
    params: dict[str, list[Any]], metrics: dict[str, list[Any]], **run_options: Any
) -> zt.Comparison:
    """A comparison of as many runs as the columns have values."""
    count = len(next(iter({**params, **metrics}.values())))
    runs = [make_run(i, **run_options) for i in range(count)]
    return zt.Comparison(runs=runs, params=params, metrics=metrics)


SWEEP = comparison(
    {
        "load.n": [100, 100, 100, 100],
        "pipeline.lr": [0.1, 0.01, 0.001, 0.01],
        "train.lr": [0.1, 0.01, 0.001, 0.01],
        "train.optimizer": ["adam", "sgd", "adam", "adam"],
    },
    {
        "evaluate.accuracy": [0.912345, 0.95, math.nan, 0.93],
        "train.loss": [0.5, 0.25, 0.125, MISSING],
    },
)


def cells(text: str) -> list[list[str]]:
    """The table's lines split into whitespace-separated cells."""
    return [line.split() for line in text.splitlines()]


class TestLeaderboard:
    """``Comparison.to_text`` with runs as rows."""

    def test_rows(self):
        """One row per run: state, start, duration, the params that differ, then metrics."""
        expected = [
            ["run", "state", "started", "took", "lr", "optimizer", "|", "accuracy", "loss"],
            ["r0", "COMPLETE", "14:02:00", "30", "s", "0.1", "adam", "|", "0.9123", "0.5"],
            ["r1", "COMPLETE", "14:03:00", "30", "s", "0.01", "sgd", "|", "0.95", "0.25"],
            ["r2", "COMPLETE", "14:04:00", "30", "s", "0.001", "adam", "|", "NaN", "0.125"],
            ["r3", "COMPLETE", "14:05:00", "30", "s", "0.01", "adam", "|", "0.93", "-"],
            ["same", "in", "all", "4", "runs:", "load.n=100"],
        ]
        assert expected == cells(SWEEP.to_text())

    def test_best_ranks_highest_accuracy_first_nan_last(self):
        """``best`` puts the best run on top with a rank; NaN and missing come last, unranked."""
        rows = cells(SWEEP.to_text(best="accuracy", only_differing=True))
        expected = [["#", "run"], ["1", "r1"], ["2", "r3"], ["3", "r0"], ["r2"]]
        assert expected == [row[:2] if row[0] != "r2" else row[:1] for row in rows]

    def test_best_loss_is_lowest_first(self):
        """A loss is better low; ``descending=True`` says higher is better instead."""
        def order(text: str) -> list[str]:
            return [next(c for c in row if c.startswith("r")) for row in cells(text)[1:5]]

        low = order(SWEEP.to_text(best="train.loss"))
        high = order(SWEEP.to_text(best="loss", descending=True))
        assert (low, high) == (["r2", "r1", "r0", "r3"], ["r0", "r1", "r2", "r3"])

    @pytest.mark.parametrize(
        ("sort", "descending", "order"),
        [
            ("lr", False, ["r2", "r1", "r3", "r0"]),
            ("lr", True, ["r0", "r1", "r3", "r2"]),
            ("optimizer", True, ["r1", "r0", "r2", "r3"]),
            ("train.loss", True, ["r0", "r1", "r2", "r3"]),
            ("started", True, ["r3", "r2", "r1", "r0"]),
            ("run", False, ["r0", "r1", "r2", "r3"]),
        ],
    )
    def test_sort(self, sort, descending, order):
        """``sort`` orders by any column, ties in the comparison's order; missing last."""
        text = SWEEP.to_text(sort=sort, descending=descending, only_differing=True)
        assert order == [row[0] for row in cells(text)[1:]]

    def test_precision(self):
        """``precision`` sets the significant digits of every number."""
        rows = cells(SWEEP.to_text(precision=2, only_differing=True))
        assert [row[-2] for row in rows[1:]] == ["0.91", "0.95", "NaN", "0.93"]

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"best": "f1"}, r"--best 'f1' is not a metric of these runs; use one of the keys "),
            ({"sort": "depth"}, r"--sort 'depth' is not a param or metric.*'started'"),
            ({"best": "lr"}, r"--best 'lr' is not a metric"),
            ({"sort": "lr", "best": "loss"}, "not both"),
            ({"precision": 0}, "precision must be an int from 1 to 17"),
            ({"runs_as": "diagonal"}, "runs_as must be"),
        ],
    )
    def test_bad_options(self, options, message):
        """Unknown columns and bad options are ValueErrors that list what would do."""
        with pytest.raises(ValueError, match=message):
            SWEEP.to_text(**options)

    def test_ambiguous_name(self):
        """A name two steps log must be given by its key."""
        both = comparison({"a.x": [1, 2]}, {"a.score": [1.0, 2.0], "b.score": [3.0, 4.0]})
        with pytest.raises(ValueError, match="'score' is logged by several steps"):
            both.to_text(best="score")

    def test_tags_column_and_missing_duration(self):
        """Runs with tags get a tags column; a run still going has no duration."""
        runs = [make_run(0, tags={"data": "v2"}), make_run(1, took=None)]
        both = zt.Comparison(runs=runs, params={"p.x": [1, 2]}, metrics={"p.m": [0.5, 0.7]})
        expected = [
            ["run", "state", "started", "took", "tags", "x", "|", "m"],
            ["r0", "COMPLETE", "14:02:00", "30", "s", "data=v2", "1", "|", "0.5"],
            ["r1", "COMPLETE", "14:03:00", "2", "|", "0.7"],
        ]
        assert expected == cells(both.to_text(runs_as="rows"))

    def test_shared_tags_below(self):
        """A tag every run has goes on the line below; the column shows the others."""
        runs = [make_run(0, tags={"team": "a", "data": "v1"}), make_run(1, tags={"team": "a"})]
        both = zt.Comparison(runs=runs, params={"p.x": [1, 2]}, metrics={"p.m": [0.5, 0.7]})
        lines = both.to_text(runs_as="rows").splitlines()
        expected = (["data=v1", "1"], "same in both runs: tag team=a")
        assert expected == (lines[1].split()[5:7], lines[-1])

    def test_text_values(self):
        """Strings as they are, quoted where a column mixes types; long ones cut to 24."""
        mixed = comparison(
            {"p.name": ["a" * 30, "b"], "p.mixed": ["1", 1]}, {"p.m": [1.0, 2.0]}
        )
        rows = cells(mixed.to_text(runs_as="rows"))
        expected = (["a" * 23 + "\u2026", "b"], ["'1'", "1"])
        assert expected == ([r[5] for r in rows[1:]], [r[6] for r in rows[1:]])

    def test_ints_and_floats_apart(self):
        """A column holding 1 and 1.0 (which differ) shows them as Python writes them."""
        typed = comparison({"p.x": [1, 1.0], "p.y": [0.123456, 0.5]}, {"p.m": [1.0, 2.0]})
        rows = cells(typed.to_text(runs_as="rows"))
        expected = (["1", "1.0"], ["0.1235", "0.5"])
        assert expected == ([r[5] for r in rows[1:]], [r[6] for r in rows[1:]])

    def test_dates_when_runs_span_days(self):
        """Runs started on several days show the date too."""
        runs = [make_run(0), make_run(60 * 24)]
        both = zt.Comparison(runs=runs, params={"p.x": [1, 2]}, metrics={"p.m": [0.5, 0.7]})
        rows = cells(both.to_text(runs_as="rows"))
        expected = [["2024-05-03", "14:02:00"], ["2024-05-04", "14:02:00"]]
        assert expected == [r[2:4] for r in rows[1:]]

    def test_limit(self):
        """``limit`` (the repr's cap) shows the first runs and says how many are left."""
        from zentrack._report.text import comparison_text

        lines = comparison_text(SWEEP, limit=2, only_differing=True).splitlines()
        assert (len(lines) - 1, lines[-1]) == (3, "... and 2 more runs")


class TestColumnsLayout:
    """More columns than runs: one row per param and metric, one column per run."""

    def test_transposed_with_marks(self):
        """Differing params and metrics are marked ``*``; the same metric value is not."""
        few = comparison(
            {"p.a": [1, 2], "p.b": [3, 3], "p.c": [5, 6]},
            {"q.score": [0.5, 0.75], "q.flat": [1.0, 1.0]},
        )
        expected = [
            ["r0", "r1"],
            ["state", "COMPLETE", "COMPLETE"],
            ["took", "30", "s", "30", "s"],
            ["*", "p.a", "1", "2"],
            ["p.b", "3", "3"],
            ["*", "p.c", "5", "6"],
            ["*", "metric:q.score", "0.5", "0.75"],
            ["metric:q.flat", "1", "1"],
        ]
        assert expected == cells(few.to_text())

    def test_only_differing_and_forced_layout(self):
        """``only_differing`` drops same-valued params; ``runs_as="columns"`` forces the layout."""
        rows = cells(SWEEP.to_text(only_differing=True, runs_as="columns"))
        expected = ["r0", "r1", "r2", "r3"], [], ["pipeline.lr", "train.lr"]
        actual = (
            rows[0],
            [r for r in rows if "load.n" in r],
            [r[1] for r in rows if r[0] == "*" and "metric:" not in r[1]][:2],
        )
        assert expected == actual


class TestRecordedRuns:
    """The text views of runs recorded in the store."""

    def test_runs_list(self):
        """``runs_text``: durations, key metrics (the run's own first), tags and the note."""

        @zt.step
        def fit(lr: float = 0.1) -> None:
            zt.log_metrics(loss=1 - lr, f1=0.25)

        @zt.pipeline(tags={"team": "vision"})
        def training(lr: float = 0.1) -> None:
            fit(lr=lr)
            zt.log_metrics(accuracy=0.9)

        run = training()
        run.note("first try\nmore")
        (line,) = runs_text(zt.runs()).splitlines()[1:]
        expected = [
            run.id,
            "training",
            "COMPLETE",
            "1",
            "accuracy=0.9",
            "f1=0.25",
            "loss=0.9",
            "team=vision",
            '"first',
            'try"',
        ]
        fields = line.split()
        assert expected == [*fields[:3], fields[6], *fields[7:]]

    def test_run_and_cached_steps(self):
        """``run_text`` shows the run's fields and its steps; a CACHED step says whose output."""

        @zt.step
        def prepare(n: int = 3) -> int:
            return n

        @zt.pipeline
        def twice(n: int = 3) -> int:
            return prepare(n=n)

        first = twice()
        second = twice()
        text = run_text(zt.get_run(second.id))
        original = first.steps[0].execution_id
        expected = (True, True, True, f"CACHED (of {original})")
        actual = (
            text.startswith(f"run       {second.id}\npipeline  twice ("),
            "params    n=3" in text,
            "steps (1):" in text,
            cells(text)[-1][2] + " " + cells(text)[-1][3] + " " + cells(text)[-1][4],
        )
        assert expected == actual

    def test_records(self):
        """``records_text``: no records says so."""
        assert records_text([]) == "no records"
