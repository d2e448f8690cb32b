"""Tests for zentrack._store.mlmd: records as plain MLMD executions, exact values, store errors."""

from __future__ import annotations

import gc
import json
import math
import re
import sqlite3

import pytest

import zentrack as zt
from tests.steps_for_tests import TrainerStep, keep, train
from tests.strategies import typed
from zentrack.exceptions import StoreError

PROP_FINGERPRINT = "zentrack.fingerprint"
PROP_RECORD = "zentrack.record"
PROP_ERROR = "zentrack.error"


class Boom(Exception):
    """The error a failing step raises."""


def executions_of(store, step):
    """Every execution of ``step`` in a plain MLMD store."""
    return store.get_executions_by_type(f"zentrack.step.{step}")


def native(value):
    """Return (field name, field value) of a plain MLMD Value."""
    field = value.WhichOneof("value")
    return field, getattr(value, field) if field else None


def state_name(execution):
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2.Execution.State.Name(execution.last_known_state)


class TestPlainMLMDReading:
    def test_seed_trainer_params_are_native_custom_properties(self, plain_store):
        """Every TrainerStep parameter is a custom property in MLMD's native type."""
        TrainerStep(batch_size=32, lr=0.001, hidden_layers=[64, 32], metrics=["acc"]).run([1])
        zt.flush()
        (execution,) = executions_of(plain_store(), "TrainerStep")
        props = execution.custom_properties
        expected = {
            "batch_size": ("int_value", 32),
            "dropout_chance": ("double_value", 0.0),
            "epochs": ("int_value", 1),
            "hidden_activation": ("string_value", "relu"),
            "hidden_layers": ("string_value", "[64, 32]"),
            "last_activation": ("string_value", "sigmoid"),
            "loss": ("string_value", "mse"),
            "lr": ("double_value", 0.001),
            "metrics": ("string_value", '["acc"]'),
            "output_units": ("int_value", 1),
        }
        actual = {name: native(props[name]) for name in props if "." not in name}
        assert expected == actual

    def test_zentrack_properties_state_and_external_id(self, plain_store):
        """zentrack's own properties are dotted names; the first execution of a fingerprint
        has the fingerprint as external_id."""
        trainer = TrainerStep()
        fingerprint = zt.fingerprint(trainer, [1, 2])
        trainer.run([1, 2])
        (record,) = zt.find(step="TrainerStep")
        (execution,) = executions_of(plain_store(), "TrainerStep")
        props = execution.custom_properties
        stored = json.loads(props[PROP_RECORD].string_value)
        expected = (
            {PROP_FINGERPRINT, PROP_RECORD},
            fingerprint,
            "COMPLETE",
            fingerprint,
            True,
            record.execution_id,
            {"batch_size": 1, "lr": 0.01},
        )
        actual = (
            {name for name in props if "." in name},
            props[PROP_FINGERPRINT].string_value,
            state_name(execution),
            execution.external_id,
            bool(execution.external_id),
            execution.id,
            {k: stored["p"][k] for k in ("batch_size", "lr")},
        )
        assert expected == actual

    def test_failed_call_has_state_and_error(self, plain_store):
        """A failed call is FAILED with zentrack.error; the caller gets the same exception."""
        error = Boom("diverged at epoch 3")

        @zt.step
        def fit(lr=0.1):
            raise error

        with pytest.raises(Boom) as info:
            fit(lr=10.0)
        zt.flush()
        (execution,) = executions_of(plain_store(), "fit")
        props = execution.custom_properties
        expected = (True, "FAILED", "Boom: diverged at epoch 3", ("double_value", 10.0))
        actual = (
            info.value is error,
            state_name(execution),
            props[PROP_ERROR].string_value,
            native(props["lr"]),
        )
        assert expected == actual

    def test_awkward_values_have_documented_native_form(self, plain_store):
        """Scalars beyond MLMD's range are strings, others native, never an empty Value."""
        keep(value=2**70)
        keep(value=-(2**63))
        keep(value=float("nan"))
        keep(value=-float("inf"))
        keep(value=True)
        keep(value="a\0b")
        keep(value="mlmd-struct::abc")
        keep(value=None)
        keep(value={"b": (1, 2.5), "a": None})
        keep(value=1e-7)
        zt.flush()
        executions = sorted(executions_of(plain_store(), "keep"), key=lambda e: e.id)
        expected = [
            ("string_value", "1180591620717411303424"),
            ("int_value", -(2**63)),
            ("string_value", "nan"),
            ("string_value", "-inf"),
            ("bool_value", True),
            ("string_value", '"a\\u0000b"'),
            ("string_value", '"mlmd-struct::abc"'),
            ("string_value", "null"),
            ("string_value", '{"a": null, "b": [1, 2.5]}'),
            ("double_value", 0.0),
        ]
        assert expected == [native(e.custom_properties["value"]) for e in executions]

    def test_no_value_is_ever_empty(self, plain_store):
        """Every custom property zentrack writes has a value field set."""
        TrainerStep(hidden_layers=[1, (2, None)], metrics={"a": float("nan")}).run([1])
        keep(value="")
        keep(value=0)
        keep(value=0.0)
        keep(value=False)
        zt.flush()
        store = plain_store()
        executions = store.get_executions_by_type("zentrack.step.TrainerStep")
        executions += store.get_executions_by_type("zentrack.step.keep")
        empty = [
            (e.id, name)
            for e in executions
            for name, value in e.custom_properties.items()
            if value.WhichOneof("value") is None
        ]
        expected = (5, [])
        assert expected == (len(executions), empty)

    def test_fingerprint_context_lists_the_executions(self, plain_store):
        """The zentrack.Fingerprint context named by the fingerprint holds its executions."""
        data = [1, 2, 3]
        fingerprint = zt.fingerprint(train, data, lr=0.5)
        train(data, lr=0.5)
        train(data, lr=0.5)
        train(data, lr=0.6)
        zt.flush()
        store = plain_store()
        context = store.get_context_by_type_and_name("zentrack.Fingerprint", fingerprint)
        executions = store.get_executions_by_context(context.id)
        expected = [fingerprint, fingerprint]
        actual = [e.custom_properties[PROP_FINGERPRINT].string_value for e in executions]
        assert expected == actual


ROUND_TRIP_VALUES = {
    "none": None,
    "int": 1,
    "float": 1.0,
    "bool": True,
    "tiny": 1e-7,
    "third": 1 / 3,
    "negative_zero": -0.0,
    "nan": float("nan"),
    "inf": float("inf"),
    "negative_inf": -float("inf"),
    "huge_int": 2**70,
    "huge_negative_int": -(2**80),
    "long_string": "x" * 100_000,
    "unicode": "ünïcødé ✓ 日本語 🎉",
    "backslashes": "C:\\new\\table\\",
    "struct_prefix": "mlmd-struct::eyJ9",
    "nul_byte": "before\0after",
    "tuple": (64, 32),
    "nested": {"a": [1, 1.0, True, None, (2, [3.5, {"b": ()}])], "c": {"d": "e"}},
    "tuple_key": {"__tuple__": [1, 2]},
    "dict_key": {"__dict__": {"__tuple__": (1,)}},
    "empty": [],
}


class TestRoundTripThroughStore:
    @pytest.mark.parametrize("label", sorted(ROUND_TRIP_VALUES))
    def test_value_reads_back_exactly(self, label):
        """A parameter value written by a call reads back with its exact value and type."""
        value = ROUND_TRIP_VALUES[label]
        fingerprint = zt.fingerprint(keep, value)
        keep(value)
        zt.flush()
        found = [r.params["value"] for r in zt.find(step="keep")]
        looked_up = [r.params["value"] for r in zt.lookup(fingerprint)]
        expected = [typed(value)] * 2
        assert expected == [typed(v) for v in found + looked_up]

    def test_distinct_types_stay_distinct(self):
        """1, 1.0 and True are stored and read back as int, float and bool."""
        for value in (1, 1.0, True):
            keep(value)
        expected = [int, float, bool]
        assert expected == [type(r.params["value"]) for r in zt.find(step="keep")]

    def test_negative_zero_keeps_its_sign(self):
        """-0.0 reads back with a negative sign."""
        keep(-0.0)
        (record,) = zt.find(step="keep")
        expected = -1.0
        assert expected == math.copysign(1.0, record.params["value"])

    def test_lone_surrogate_string_is_stored(self):
        """A str with a lone surrogate (a valid Python str) is stored and read back."""
        keep("bad \ud800 text")
        keep("fine")
        expected = ["bad \ud800 text", "fine"]
        assert expected == [r.params["value"] for r in zt.find(step="keep")]

    def test_parameter_named_like_a_tag_is_stored(self):
        """A step whose only parameter is named __dict__ records and reads back."""

        @zt.step
        def tagged(__dict__=1):
            return None

        tagged()
        expected = [{"__dict__": 1}]
        assert expected == [r.params for r in zt.find(step="tagged")]


LAZY_IMPORT_SCRIPT = """
import sys
import zentrack
import zentrack as zt

@zt.step
def fit(data, lr=0.1):
    return lr

zt.fingerprint(fit, b"data", lr=0.2)
heavy = {"ml_metadata", "numpy", "pandas", "google"}
print(sorted({name.split(".")[0] for name in sys.modules} & heavy))
"""


class TestLazyImport:
    def test_import_and_fingerprint_do_not_load_mlmd(self, run_python):
        """import zentrack and fingerprinting load neither MLMD, protobuf, numpy nor pandas."""
        done = run_python(LAZY_IMPORT_SCRIPT)
        expected = (0, "[]")
        assert expected == (done.returncode, done.stdout.strip()), done.stderr


def bad_store(tmp_path, name="bad"):
    """The path of a store in a new directory, not yet created."""
    directory = tmp_path / name
    directory.mkdir()
    return directory / "metadata.sqlite"


def make_mlmd_file(path):
    """Write a real MLMD SQLite store with some executions, and close it."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    store = metadata_store.MetadataStore(config)
    type_id = store.put_execution_type(pb.ExecutionType(name="other"))
    store.put_executions([pb.Execution(type_id=type_id, name=f"e{i}") for i in range(300)])
    del store
    gc.collect()


def garbage(path):
    path.write_bytes(b"this is not an sqlite database\n" * 200)


def truncated(path):
    make_mlmd_file(path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def other_application(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    connection.execute("INSERT INTO users (name) VALUES ('ada')")
    connection.commit()
    connection.close()


BROKEN_STORES = {"garbage": garbage, "truncated": truncated, "other_application": other_application}


class TestStoreErrors:
    @pytest.mark.parametrize("kind", sorted(BROKEN_STORES))
    def test_read_raises_store_error_naming_the_path(self, tmp_path, kind):
        """lookup and find on a broken store raise StoreError (a RuntimeError) naming it."""
        path = bad_store(tmp_path)
        BROKEN_STORES[kind](path)
        zt.init(path)
        for read in (lambda: zt.lookup("0" * 64), lambda: zt.find(step="train")):
            with pytest.raises(StoreError) as info:
                read()
            expected = (True, True)
            assert expected == (isinstance(info.value, RuntimeError), str(path) in str(info.value))

    @pytest.mark.parametrize("kind", sorted(BROKEN_STORES))
    def test_flush_raises_store_error_and_keeps_the_record(self, tmp_path, kind):
        """A flush to a broken store raises StoreError; the record waits for a good store."""
        path = bad_store(tmp_path)
        BROKEN_STORES[kind](path)
        zt.init(path)
        train(b"data", lr=0.5)
        with pytest.raises(StoreError, match=re.escape(str(path))):
            zt.flush()
        path.rename(path.with_name("broken.sqlite"))
        expected = (1, [{"lr": 0.5, "epochs": 1}])
        actual = (zt.flush(), [r.params for r in zt.find(step="train")])
        assert expected == actual

    def test_missing_directory_raises_store_error_on_init(self, tmp_path):
        """Choosing a store whose directory does not exist raises StoreError naming it."""
        path = tmp_path / "missing" / "twice" / "metadata.sqlite"
        with pytest.raises(StoreError) as info:
            zt.init(path)
        expected = (True, True)
        assert expected == (isinstance(info.value, RuntimeError), str(path) in str(info.value))
