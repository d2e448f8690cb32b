"""Tests for zentrack._cache.materializers: cached outputs come back equal, and of the same type.

Each round trip runs the step once (a miss that writes the output) and once
more (a hit that reads it back); the counter shows the body ran only once.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest

import zentrack as zt
from tests.cache_steps import (
    RUNS,
    Point,
    make_point,
    run_step_process,
    states,
    zentrack_warnings,
)


def materializer_of(step: zt.Step, *args, **kwargs) -> str:
    """The materializer named in the meta.json of ``step(*args, **kwargs)``'s output."""
    records = zt.lookup(zt.fingerprint(step, *args, **kwargs))
    folder = Path(next(r.output_uri for r in records if r.output_uri))
    return str(json.loads((folder / "meta.json").read_text())["materializer"])


class Celsius:
    """A user type with a materializer of its own."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __eq__(self, other: object) -> bool:
        return type(other) is Celsius and self.degrees == other.degrees

    def __hash__(self) -> int:
        return hash(self.degrees)


#: What the Celsius materializer did, in order.
CELSIUS_IO: list[str] = []


def _save_celsius(value: Celsius, path: Path) -> None:
    CELSIUS_IO.append("save")
    path.write_text(f"{value.degrees!r} C")


def _load_celsius(path: Path) -> Celsius:
    CELSIUS_IO.append("load")
    return Celsius(float(path.read_text().removesuffix(" C")))


class Fahrenheit:
    """A user type whose registered loader always fails."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees


def _save_fahrenheit(value: Fahrenheit, path: Path) -> None:
    path.write_text(repr(value.degrees))


def _load_fahrenheit(path: Path) -> Fahrenheit:
    raise ValueError("this loader is broken")


class TestStep:
    """Step outputs through the built-in materializers."""

    def test_json_output_round_trips(self):
        """A dict of tracked values is stored as JSON and comes back equal, types kept."""
        calls = []
        value = {"rows": [1, 2.0, True, None, "x"], "nested": {"n": [[1], [2.5]]}}

        @zt.step
        def table(n=1):
            calls.append(n)
            return value

        first, second = table(), table()
        expected = (value, value, [1], "json", ["COMPLETE", "CACHED"])
        actual = (first, second, calls, materializer_of(table), states("table"))
        assert expected == actual
        assert [type(x) for x in value["rows"]] == [type(x) for x in second["rows"]]

    def test_json_output_keeps_dict_key_order(self):
        """A served dict iterates in the order the step built it, like the one it returned."""

        @zt.step
        def columns(n=1):
            return {"zeta": 1, "alpha": 2, "mid": {"b": 1, "a": 2}}

        first, second = columns(), columns()
        expected = (["zeta", "alpha", "mid"], ["b", "a"])
        actual = (list(second), list(second["mid"]))
        assert (list(first), list(first["mid"])) == expected
        assert expected == actual

    def test_tuple_output_stays_a_tuple(self):
        """A returned tuple (with nested tuples and lists) is a tuple again when served."""
        calls = []

        @zt.step
        def pair(n=2):
            calls.append(n)
            return (n, [n, (n, "x")], {"t": (1, 2)})

        first, second = pair(), pair()
        expected = ((2, [2, (2, "x")], {"t": (1, 2)}), [2], (tuple, list, tuple, tuple))
        actual = (
            second,
            calls,
            (type(second), type(second[1]), type(second[1][1]), type(second[2]["t"])),
        )
        assert first == expected[0]
        assert expected == actual

    def test_special_floats_round_trip(self):
        """NaN, infinities and -0.0 are served as they were returned."""

        @zt.step
        def odd(n=0):
            return [float("nan"), float("inf"), float("-inf"), -0.0, 1e-320]

        odd()
        served = odd()
        expected = (["nan", "inf", "-inf", "-0.0", "1e-320"], ["COMPLETE", "CACHED"])
        actual = ([repr(x) for x in served], states("odd"))
        assert expected == actual

    def test_bytes_output_round_trips(self):
        """bytes are stored raw and served as equal bytes."""
        calls = []

        @zt.step
        def payload(n=3):
            calls.append(n)
            return bytes(range(256)) * n

        first, second = payload(), payload()
        expected = (bytes(range(256)) * 3, bytes, [3], "bytes", ["COMPLETE", "CACHED"])
        actual = (second, type(second), calls, materializer_of(payload), states("payload"))
        assert first == expected[0]
        assert expected == actual

    def test_numpy_output_keeps_dtype_shape_and_values(self):
        """An ndarray is served with the same dtype, shape and values."""
        calls = []

        @zt.step
        def grid(rows=2, cols=3):
            calls.append((rows, cols))
            return np.arange(rows * cols, dtype=np.float32).reshape(rows, cols) / 7

        first, second = grid(), grid()
        expected = (
            (np.ndarray, np.dtype(np.float32), (2, 3), first.tolist()),
            [(2, 3)],
            "numpy",
            ["COMPLETE", "CACHED"],
        )
        actual = (
            (type(second), second.dtype, second.shape, second.tolist()),
            calls,
            materializer_of(grid),
            states("grid"),
        )
        assert expected == actual

    def test_numpy_structured_dtype_round_trips(self):
        """A structured array keeps its field names and types."""

        @zt.step
        def records(n=2):
            return np.array([(i, i / 2) for i in range(n)], dtype=[("id", "<i4"), ("w", "<f8")])

        first, second = records(), records()
        expected = (first.dtype, first.tolist(), ["COMPLETE", "CACHED"])
        actual = (second.dtype, second.tolist(), states("records"))
        assert expected == actual

    @pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
    def test_numpy_subclass_keeps_its_type(self):
        """An np.matrix output is served as an np.matrix, not a plain ndarray."""

        @zt.step
        def identity(n=2):
            return np.matrix(np.eye(n))

        first, second = identity(), identity()
        expected = (np.matrix, np.matrix, ["COMPLETE", "CACHED"])
        actual = (type(first), type(second), states("identity"))
        assert expected == actual

    def test_masked_array_is_cached_with_its_mask(self, caplog):
        """A masked array is served from the cache with its mask, without a warning."""
        calls = []

        @zt.step
        def masked(n=3):
            calls.append(n)
            return np.ma.masked_array(np.arange(n), mask=[i == 1 for i in range(n)])

        with caplog.at_level(logging.INFO, logger="zentrack"):
            masked()
            second = masked()
        expected = ([3], [0, None, 2], [])
        actual = (calls, second.tolist(), zentrack_warnings(caplog.records))
        assert expected == actual

    def test_custom_object_falls_back_to_pickle(self):
        """An object with no materializer of its own is pickled and served equal."""
        first, second = make_point(x=3.0, y=4.0), make_point(x=3.0, y=4.0)
        expected = (Point(3.0, 4.0), Point, ["make_point"], "pickle", ["COMPLETE", "CACHED"])
        actual = (
            second,
            type(second),
            RUNS,
            materializer_of(make_point, x=3.0, y=4.0),
            states("make_point"),
        )
        assert first == expected[0]
        assert expected == actual

    def test_pickled_output_is_served_in_a_fresh_process(self, run_python, store_path):
        """A pickled output written by another interpreter is served here, equal."""
        run_step_process(run_python, store_path, "tests.cache_steps:make_point", {"x": 5.0})
        served = make_point(x=5.0)
        expected = (Point(5.0, 2.0), [], ["COMPLETE", "CACHED"])
        actual = (served, RUNS, states("make_point"))
        assert expected == actual

    @pytest.mark.parametrize(
        "make",
        [lambda: lambda: 1, threading.Lock],
        ids=["lambda", "lock"],
    )
    def test_unstorable_output_is_returned_with_a_warning(self, caplog, make, store_path):
        """An output nothing can store is still returned; a warning; COMPLETE; reruns next time."""
        calls = []
        made = []

        @zt.step
        def build(n=1):
            calls.append(n)
            made.append(make())
            return made[-1]

        with caplog.at_level(logging.INFO, logger="zentrack"):
            first = build()
            second = build()
        warnings = zentrack_warnings(caplog.records)
        artifacts = store_path.parent / "artifacts"
        expected = (True, True, [1, 1], 2, True, ["COMPLETE", "COMPLETE"], [])
        actual = (
            first is made[0],
            second is made[1],
            calls,
            len(warnings),
            all("'build'" in w for w in warnings),
            states("build"),
            [p.name for p in artifacts.rglob("*") if p.is_file() or p.suffix == ".tmp"],
        )
        assert expected == actual

    def test_output_of_unstorable_call_has_no_uri(self):
        """A call whose output could not be stored records no output location."""

        @zt.step
        def build(n=1):
            return threading.Lock()

        build()
        zt.flush()
        expected = [None]
        assert expected == [r.output_uri for r in zt.find(step="build")]


class TestRegisterMaterializer:
    """``zt.register_materializer``: user types with their own file format."""

    def test_registered_type_round_trips_through_it(self):
        """The registered save and load are used, and the served value is equal."""
        zt.register_materializer(
            Celsius, save=_save_celsius, load=_load_celsius, filename="temperature.txt"
        )
        CELSIUS_IO.clear()
        calls = []

        @zt.step
        def warm(degrees=21.5):
            calls.append(degrees)
            return Celsius(degrees)

        first, second = warm(), warm()
        expected = (
            Celsius(21.5),
            Celsius,
            [21.5],
            ["save", "load"],
            f"{Celsius.__module__}.Celsius",
            ["COMPLETE", "CACHED"],
        )
        actual = (
            second,
            type(second),
            calls,
            CELSIUS_IO,
            materializer_of(warm),
            states("warm"),
        )
        assert first == expected[0]
        assert expected == actual

    def test_name_and_filename_are_used(self):
        """name= is stored in meta.json and filename= names the data file."""
        zt.register_materializer(
            Celsius,
            save=_save_celsius,
            load=_load_celsius,
            name="celsius-v1",
            filename="temperature.txt",
        )

        @zt.step
        def cold(degrees=-3.0):
            return Celsius(degrees)

        cold()
        records = zt.lookup(zt.fingerprint(cold))
        folder = Path(records[0].output_uri)
        expected = ("celsius-v1", "-3.0 C", Celsius(-3.0))
        actual = (
            materializer_of(cold),
            (folder / "temperature.txt").read_text(),
            cold(),
        )
        assert expected == actual

    def test_failing_loader_is_a_miss_with_a_warning(self, caplog):
        """A registered loader that raises makes the call run again, with a warning."""
        zt.register_materializer(Fahrenheit, save=_save_fahrenheit, load=_load_fahrenheit)
        calls = []

        @zt.step
        def hot(degrees=99.0):
            calls.append(degrees)
            return Fahrenheit(degrees)

        hot()
        with caplog.at_level(logging.INFO, logger="zentrack"):
            served = hot()
        expected = (99.0, [99.0, 99.0], 1, ["COMPLETE", "COMPLETE"])
        actual = (served.degrees, calls, len(zentrack_warnings(caplog.records)), states("hot"))
        assert expected == actual

    def test_rejects_a_non_type(self):
        """register_materializer() needs a type as its first argument."""
        with pytest.raises(TypeError, match="takes a type"):
            zt.register_materializer("Celsius", save=_save_celsius, load=_load_celsius)

    @pytest.mark.parametrize("name", ["json", "bytes", "numpy", "parquet", "pickle"])
    def test_rejects_a_built_in_name(self, name):
        """A user materializer may not take a built-in's name: stored outputs stay readable."""

        @zt.step
        def table(n: int = 2) -> dict[str, list[float]]:
            return {"a": [float(i) for i in range(n)]}

        table()
        with pytest.raises(ValueError, match="built-in"):
            zt.register_materializer(Celsius, save=_save_celsius, load=_load_celsius, name=name)
        expected = ({"a": [0.0, 1.0]}, "json", ["COMPLETE", "CACHED"])
        assert expected == (table(), materializer_of(table), states("table"))

    @pytest.mark.parametrize("filename", ["", "..", "sub/out.bin", "meta.json"])
    def test_rejects_a_filename_that_is_not_a_plain_file(self, filename):
        """The data file lives in the entry folder beside meta.json: a plain, other name."""
        with pytest.raises(ValueError, match="plain file name"):
            zt.register_materializer(
                Celsius, save=_save_celsius, load=_load_celsius, filename=filename
            )
