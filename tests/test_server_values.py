"""Tests for zentrack._store.server_values: the stored form of names and values on SQL servers.

These need no server: they pin the encoding and its properties (exact
round trip, names that stay apart under MySQL's case-insensitive
comparison, nothing PostgreSQL rejects).  ``tests/test_servers.py`` runs
the same forms against real servers.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import typed
from zentrack._store import schema as _store
from zentrack._store.location import Location, check_location, parse
from zentrack._store.server import connection_config
from zentrack._store.server_values import (
    FIXED,
    HEADS,
    MYSQL,
    MYSQL_PART_BYTES,
    NAME_MAX,
    PARTS,
    POSTGRESQL,
    Codec,
    decode_name,
    encode_name,
    encode_text,
)
from zentrack.exceptions import StoreError

BACKENDS = {"postgresql": POSTGRESQL, "mysql": MYSQL}

#: name -> (stored on PostgreSQL, stored on MySQL)
PINNED = {
    "lr": ("lr", "lr"),
    "LR": ("LR", "~^L^R"),
    "zentrack.step.train": ("zentrack.step.train", "zentrack.step.train"),
    "zentrack.step.TrainerStep": ("zentrack.step.TrainerStep", "zentrack.step.~^Trainer^Step"),
    "zentrack.step.back\\slash": ("zentrack.step.~back%5Cslash", "zentrack.step.back\\slash"),
    "zentrack.PipelineRun": ("zentrack.PipelineRun", "zentrack.PipelineRun"),
    "zentrack.pipelinerun": ("zentrack.pipelinerun", "~zentrack.pipelinerun"),
    "zentrack.PipelineRun/0a1b": ("zentrack.PipelineRun/0a1b", "zentrack.PipelineRun/0a1b"),
    "zentrack.Pipeline/Train": ("zentrack.Pipeline/Train", "zentrack.Pipeline/~^Train"),
    "zentrack.metric.a\0b": ("zentrack.metric.~a%00b", "zentrack.metric.~a%00b"),
    "zentrack.fingerprint": ("zentrack.fingerprint", "zentrack.fingerprint"),
    "café": ("café", "~caf%C3%A9"),
    "train ": ("train ", "~train%20"),
    "~home": ("~~home", "~~home"),
    "a#parts": ("~a%23parts", "~a%23parts"),
    "50%": ("50%", "50%"),
    "mlmd-struct::x": ("mlmd-struct::x", "mlmd-struct::x"),
}


class TestEncodeName:
    @pytest.mark.parametrize("name", sorted(PINNED))
    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_pinned_forms(self, name, kind):
        """The stored form of typical and awkward names is what docs/mlmd.md describes."""
        expected = PINNED[name][0 if kind == "postgresql" else 1]
        assert expected == encode_name(name, BACKENDS[kind])

    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_long_names_are_shortened_with_a_hash(self, kind):
        """Names over 240 characters keep their start and end with %~ and 16 hex digits."""
        backend = BACKENDS[kind]
        first, second = "p" * 300, "p" * 299 + "q"
        stored = [encode_name(n, backend) for n in (first, second)]
        expected = (True, True, [True, True], [True, True], [True, True])
        actual = (
            len(set(stored)) == 2,
            all(len(s) <= NAME_MAX for s in stored),
            [s.startswith("~ppp") for s in stored],
            [s[-18:-16] == "%~" for s in stored],
            [encode_name(decode_name(s), backend) == s for s in stored],
        )
        assert expected == actual

    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_shortening_never_cuts_an_escape(self, kind):
        """A shortened name never ends inside %XX or after a case mark."""
        backend = BACKENDS[kind]
        for filler in range(1, 8):
            stored = encode_name("zentrack.step." + "a" * filler + "É\\" * 200, backend)
            body = stored[: stored.index("%~")]
            expected = (False, False)
            assert expected == (body.endswith("^"), "%" in body[-2:]), stored


#: Text that exercises every branch of the escaping.
names = st.lists(
    st.sampled_from([*"aAzZ09 ._-/~%^#\\\0\n'\"é日", "\U0001f389", "zentrack.", "%~", "^A"]),
    max_size=40,
).map("".join) | st.sampled_from(sorted(FIXED) + list(HEADS)).flatmap(
    lambda head: st.text(alphabet="aAb~%^\\ ", max_size=20).map(lambda rest: head + rest)
)


def mysql_fold(text: str) -> str:
    """How MySQL's default collations compare names: case-insensitive, trailing spaces ignored."""
    return text.lower().rstrip(" ")


class TestNameProperties:
    @given(name=names)
    def test_round_trip(self, name):
        """decode(encode(name)) is the name on both backends (names under 240 characters)."""
        expected = [name, name]
        assert expected == [decode_name(encode_name(name, b)) for b in (POSTGRESQL, MYSQL)]

    @given(name=names)
    def test_stored_form_is_storable(self, name):
        """PostgreSQL forms have no backslash or NUL; MySQL forms are printable ASCII."""
        pg, my = encode_name(name, POSTGRESQL), encode_name(name, MYSQL)
        expected = (False, False, True, True, True)
        actual = (
            "\\" in pg or "\0" in pg,
            my.endswith(" "),
            all(" " <= c <= "~" for c in my) or my == name,
            len(pg) <= NAME_MAX,
            len(my) <= NAME_MAX,
        )
        assert expected == actual

    @given(first=names, second=names)
    def test_mysql_keeps_distinct_names_apart(self, first, second):
        """Two different names never compare equal in MySQL (zentrack's fixed names aside)."""
        if first == second or {first, second} <= FIXED:
            return
        stored = (encode_name(first, MYSQL), encode_name(second, MYSQL))
        assert mysql_fold(stored[0]) != mysql_fold(stored[1]), stored

    @given(name=names)
    def test_stored_form_reencodes_to_itself(self, name):
        """A stored name read back and used again (a lookup) finds the same stored name."""
        for backend in (POSTGRESQL, MYSQL):
            stored = encode_name(name, backend)
            assert stored == encode_name(decode_name(stored), backend)

    @given(text=st.text(max_size=40))
    def test_text_round_trip(self, text):
        """URIs and event keys round trip (NUL and, on PostgreSQL, backslash escaped)."""
        expected = [text, text]
        assert expected == [decode_name(encode_text(text, b)) for b in (POSTGRESQL, MYSQL)]


def execution_with(**values):
    from ml_metadata.proto import metadata_store_pb2 as pb

    execution = pb.Execution(type_id=1, external_id="zentrack.Output/ab", name="n\\1")
    for key, value in values.items():
        field = {bool: "bool_value", int: "int_value", float: "double_value", str: "string_value"}
        setattr(execution.custom_properties[key], field[type(value)], value)
    return execution


def native_values(execution):
    props = execution.custom_properties
    return {k: typed(getattr(props[k], props[k].WhichOneof("value"))) for k in props}


HAZARD_PROPERTIES = {
    "backslash": "C:\\new\\table",
    "nul": "a\0b",
    "struct": "mlmd-struct::CgMKAWESAA==",
    "long": "".join(chr(0x4E00 + i % 5000) for i in range(3000)),
    "int32_max": 2**31 - 1,
    "int32_over": 2**31,
    "int64_min": -(2**63),
    "double_nan": math.nan,
    "double_inf": -math.inf,
    "flag": True,
    "LR": 1,
    "lr": 2,
    "k" * 300: 0.5,
    "zentrack.metric.a\\b": "x",
}


class TestCodec:
    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_execution_round_trip(self, kind):
        """encode then decode gives back every property, name and id exactly.

        A process that did not write it (a fresh codec) gets everything back
        too, except the key shortened to 240 characters, which it sees shortened.
        """
        codec = Codec(BACKENDS[kind])
        original = execution_with(**HAZARD_PROPERTIES)
        stored = codec.encode(original)
        back = codec.decode(type(stored).FromString(stored.SerializeToString()))
        elsewhere = Codec(BACKENDS[kind]).decode(
            type(stored).FromString(stored.SerializeToString())
        )
        values = native_values(original)
        shortened = encode_name("k" * 300, BACKENDS[kind])
        expected = (
            values,
            "zentrack.Output/ab",
            "n\\1",
            {**{k: v for k, v in values.items() if k != "k" * 300}, shortened: values["k" * 300]},
        )
        actual = (native_values(back), back.external_id, back.name, native_values(elsewhere))
        assert expected == actual

    @pytest.mark.parametrize("kind", ["postgresql", "mysql"])
    def test_stored_execution_has_only_what_the_backend_takes(self, kind):
        """No backslash (PostgreSQL), long indexed string, NUL, 64-bit int or long key is left."""
        backend = BACKENDS[kind]
        stored = Codec(backend).encode(execution_with(**HAZARD_PROPERTIES))
        problems = []
        for key, value in stored.custom_properties.items():
            field = value.WhichOneof("value")
            if len(key) > NAME_MAX or (kind == "mysql" and key != key.lower() and "^" not in key):
                problems.append(("key", key[:20]))
            if field == "string_value":
                text = value.string_value
                if "\0" in text or text.startswith("mlmd-struct::"):
                    problems.append(("string", key))
                if kind == "postgresql" and ("\\" in text or len(text.encode()) > 2600):
                    problems.append(("string", key))
            if field == "int_value" and not -(2**31) <= value.int_value < 2**31:
                problems.append(("int", key))
        expected: list[tuple[str, str]] = []
        assert expected == problems

    def test_the_original_is_not_changed(self):
        """Encoding works on a copy: the caller's proto keeps its values."""
        original = execution_with(backslash="a\\b", big=2**40)
        before = original.SerializeToString()
        Codec(POSTGRESQL).encode(original)
        assert before == original.SerializeToString()

    def test_mysql_splits_values_over_4_mib(self):
        """A string over 4 MiB is split into parts K, K#2, ... with K#parts, and joined back."""
        text = "é" * (MYSQL_PART_BYTES // 2) + "x" * 10 + "日" * 100
        stored = Codec(MYSQL).encode(execution_with(big=text))
        props = stored.custom_properties
        sizes = [len(props[k].proto_value.value) for k in ("big", "big#2")]
        back = Codec(MYSQL).decode(type(stored).FromString(stored.SerializeToString()))
        expected = ({"big", "big#2", "big" + PARTS}, 2, True, text)
        actual = (
            set(props),
            props["big" + PARTS].int_value,
            all(size <= MYSQL_PART_BYTES + 8 for size in sizes),
            back.custom_properties["big"].string_value,
        )
        assert expected == actual

    def test_types_and_events_are_encoded(self):
        """Type names and event path keys are stored in the server form too."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        codec = Codec(MYSQL)
        stored_type = codec.encode(pb.ExecutionType(name="zentrack.step.Fit"))
        event = pb.Event(artifact_id=1, execution_id=2)
        event.path.steps.add().key = "in\0put"
        stored_event = codec.encode(event)
        expected = ("zentrack.step.~^Fit", "~in%00put", "zentrack.step.Fit", "in\0put")
        actual = (
            stored_type.name,
            stored_event.path.steps[0].key,
            Codec(MYSQL).decode(stored_type).name,
            Codec(MYSQL).decode(stored_event).path.steps[0].key,
        )
        assert expected == actual


class TestHeads:
    def test_heads_are_the_store_layout(self):
        """The prefixes kept verbatim are exactly zentrack's own (zentrack/_store/schema.py)."""
        expected = {
            f"{_store.RUN_CONTEXT}/",
            f"{_store.PIPELINE_CONTEXT}/",
            f"{_store.FINGERPRINT_CONTEXT}/",
            f"{_store.OUTPUT_ARTIFACT}/",
            _store.METRIC_PREFIX,
            _store.STEP_TYPE_PREFIX,
        }
        fixed = {
            _store.RUN_CONTEXT,
            _store.PIPELINE_CONTEXT,
            _store.FINGERPRINT_CONTEXT,
            _store.OUTPUT_ARTIFACT,
            _store.PROP_PIPELINE,
            _store.PROP_FINGERPRINT,
        }
        assert (expected, fixed) == (set(HEADS), set(FIXED))


class TestCheckLocation:
    @pytest.mark.parametrize(
        ("url", "missing"),
        [
            ("postgresql://127.0.0.1/db", "names no user"),
            ("postgresql://u:pw@127.0.0.1/", "needs a host and a database"),
            ("mysql://u@/db", "needs a host and a database"),
        ],
    )
    def test_missing_fields_are_refused_before_mlmd_sees_them(self, url, missing):
        """MLMD aborts the process on these; zentrack raises StoreError naming the field."""
        with pytest.raises(StoreError, match=missing):
            parse(url)

    def test_built_locations_are_checked_too(self):
        """A Location made in code is checked before a ConnectionConfig is built."""
        location = Location(kind="postgresql", host="h", port=5432, user="", database="db")
        with pytest.raises(StoreError, match="names no user"):
            connection_config(location)
        with pytest.raises(StoreError, match="names no user"):
            check_location(location)

    def test_mysql_allows_an_anonymous_user(self):
        """MySQL has anonymous logins; the URL needs no user."""
        expected = ("", "db")
        location = parse("mysql://127.0.0.1/db")
        assert expected == (location.user, location.database)

    def test_postgres_password_is_quoted_for_libpq(self):
        """A password with a space, quote or backslash is quoted in MLMD's connection string."""
        location = parse("postgresql://u:a%20b'c%5Cd@127.0.0.1:5/db")
        config = connection_config(location)
        expected = ("'a b\\'c\\\\d'", "u", "db", True)
        actual = (
            config.postgresql.password,
            config.postgresql.user,
            config.postgresql.dbname,
            config.postgresql.skip_db_creation,
        )
        assert expected == actual
