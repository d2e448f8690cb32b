"""``find`` on PostgreSQL and MariaDB selects in the database (zentrack._store.server_select).

The server path asks MLMD's ``filter_query`` for a superset of the answer,
then confirms every candidate exactly.  These tests check, on real servers
(``tests/servers.py``, started once per session), that the answer is exactly
the plain Python matcher's over every record, for every operator and
awkward value, on params and metrics, and that ``filter_query`` really ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zentrack as zt
from tests.servers import SERVER_FIXTURES, Server
from tests.strategies import scalars, tracked_values
from zentrack._record import tracker as _tracker
from zentrack._runs.matching import matcher
from zentrack._store.candidates import OPERATORS, Condition, tolerance
from zentrack._store.server_select import SLACK, Unpushable, filters, literal, pattern
from zentrack._store.server_values import POSTGRESQL, Codec
from zentrack._store.sqlite_select import Query

LONG = "x" * 3000  # a proto_value on PostgreSQL (index row limit)
#: Values at every edge of the filter: types that compare equal in Python, doubles
#: MLMD rounds to 6 decimals, ints at 32 and 64 bits, non-finite floats, strings
#: with quotes, backslashes, non-ASCII, the words MLMD's filter rewrites, containers.
CORPUS: list[Any] = [
    -3, 0, 1, 2, 5, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**40, 2**63 - 1, 2**63, 2**70,
    0.0, -0.0, 0.5, 1.0, 1.5, 2.0000001, 1e-7, 1 / 3, 0.1 + 0.2, 1e300, -1e300,
    0.01000005, 0.0100001, 0.0100000049, 123456.7890123, 2147483648.5,
    float("nan"), float("inf"), -float("inf"),
    True, False, None,
    "", "1", "1.0", "a", "A", "B", "abc", "b", "inf", "-inf", "null", "true", "-5",
    "99999999999999999999", "it's", 'say "hi"', "back\\slash", "café", "ünï", "\ud800x",
    "nul\0byte", "mlmd-struct::x", "%", "_", "a%b", "last_known_state = NEW",
    "custom_properties.value.", "[1]", '"q"', "a ", LONG,
    [], [1], [1.0], [True], [1, 2], [0.0], [-0.0], ["a"], ["it's"], [[1]], [None],
    {}, {"a": 1}, {"a": 1.0}, {"a": [0.0]}, {"b": None}, {"q": 'say "hi"'},
]  # fmt: skip
#: Executions MLMD's Python client reads per page of a filter_query.
PAGE = 100
#: Metric values of records that have no param ``value`` (and of the shadowed ones).
METRICS: list[Any] = [0.5, 3, "a", True, 2**40, [1], None, 1e-7, "it's"]


@zt.step(cache=False)
def holds(value: Any = None) -> None:
    """A param ``value``, and the metric ``score`` with the same value."""
    zt.log_metrics(score=value)


@zt.step(cache=False)
def measured(i: int = 0) -> None:
    """No param ``value``: a metric ``value`` only."""
    zt.log_metrics(value=METRICS[i])


@zt.step(cache=False)
def shadowed(value: Any = None) -> None:
    """A param and a metric both named ``value``: conditions read the param."""
    zt.log_metrics(value=value, score=0.25)


@zt.step(cache=False)
def bare(i: int = 0) -> None:
    """Neither a param nor a metric ``value``."""


@zt.step(name="Train state", cache=False)
def named(value: Any = None) -> None:
    """A step name with upper case and a word MLMD's filter rewrites: a LIKE on the type."""


@zt.step(cache=False)
def many(i: int = 0) -> None:
    """More records than MLMD's Python client reads in one page (100)."""


@contextlib.contextmanager
def active(url: str) -> Iterator[None]:
    """Make ``url`` the store for a block, then put the previous tracker back."""
    previous = _tracker._active
    _tracker._active = None
    zt.init(url)
    try:
        yield
    finally:
        tracker = _tracker._active
        _tracker._active = previous
        if tracker is not None:
            tracker.close()


@pytest.fixture(scope="module", params=sorted(SERVER_FIXTURES))
def corpus_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database per backend holding every corpus record, written once."""
    server: Server = request.getfixturevalue(SERVER_FIXTURES[request.param])
    url = server.url(server.new_database())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        with active(url):
            for value in CORPUS:
                holds(value)
            for i in range(len(METRICS)):
                measured(i)
                bare(i)
            for value in (1, 0.5, "a", [1], None, 2**40):
                shadowed(value)
                named(value)
            for i in range(PAGE + 20):
                many(i)
            zt.flush()
        yield url


@pytest.fixture
def store(corpus_url: str, server_home: Any) -> str:
    """The corpus database, active for this test."""
    zt.init(corpus_url)
    return corpus_url


def ids(records: list[zt.Record]) -> list[int | None]:
    return [r.execution_id for r in records]


def expected(every: list[zt.Record], name: str, op: str, value: Any) -> list[int | None]:
    """The plain Python matcher over every record, in find's order (oldest first)."""
    test = matcher(Condition(name, op, value))
    return ids([r for r in every if test(r.params, r.metrics)])


def values_for(op: str) -> list[Any]:
    if op == "in":
        return [[v] for v in CORPUS] + [[1, "a", None], ["it's", 2**40, 0.5], "abc", (), [[1]]]
    if op == "contains":
        return [*CORPUS, "it", "é", "%", "'s"]
    return CORPUS


#: Values for the queries across steps: params, metrics, a param shadowing a metric, neither.
ACROSS: list[Any] = [*METRICS, 1, 1.0, "1", 0.25, [1.0], "A", 2**40 + 1]


class TestExactAnswers:
    def test_every_operator_and_value_gives_pythons_answer(self, store):
        """find(value__op=v) is exactly the plain matcher's answer over every record."""
        every = zt.find(step="holds")
        wrong = []
        for op in OPERATORS:
            for value in values_for(op):
                found = ids(zt.find(step="holds", **{f"value__{op}": value}))
                if found != expected(every, "value", op, value):
                    wrong.append((op, value))
        assert not wrong, wrong

    def test_params_metrics_and_records_without_either(self, store):
        """Across steps: a param, else a metric of the name; records with neither never match."""
        every = zt.find()
        wrong = []
        for op in OPERATORS:
            for value in [[v] for v in ACROSS] if op == "in" else ACROSS:
                found = ids(zt.find(**{f"value__{op}": value}))
                if found != expected(every, "value", op, value):
                    wrong.append((op, value))
        assert not wrong, wrong

    def test_a_step_found_by_a_pattern_on_its_type(self, store):
        """find(step="Train state") reads that step's records only, through filter_query."""
        every = zt.find(step="Train state")
        wrong = [
            (op, value)
            for op in ("eq", "ge", "in")
            for value in ([[v] for v in ACROSS] if op == "in" else ACROSS)
            if ids(zt.find(step="Train state", **{f"value__{op}": value}))
            != expected(every, "value", op, value)
        ]
        expected_counts = (6, [])
        assert expected_counts == (len(every), wrong)

    def test_metrics_are_queried_like_params(self, store):
        """score__op=v reads the logged metric exactly."""
        every = zt.find(step="holds")
        wrong = []
        for op in ("eq", "lt", "contains"):
            for value in values_for(op):
                found = ids(zt.find(step="holds", **{f"score__{op}": value}))
                if found != expected(every, "score", op, value):
                    wrong.append((op, value))
        assert not wrong, wrong

    @settings(
        max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        op=st.sampled_from(OPERATORS),
        value=st.one_of(scalars, tracked_values, st.lists(scalars, max_size=3)),
    )
    def test_generated_values(self, store, op, value):
        """Values hypothesis makes up give the matcher's answer too."""
        every = zt.find(step="holds")
        found = zt.find(step="holds", **{f"value__{op}": value})
        assert expected(every, "value", op, value) == ids(found)

    def test_several_conditions_limit_and_order(self, store):
        """Every condition holds; order and limit apply to the confirmed records."""
        every = zt.find()
        wanted = [
            r for r in every
            if matcher(Condition("value", "ge", 1))(r.params, r.metrics)
            and matcher(Condition("value", "lt", 2**40))(r.params, r.metrics)
        ]  # fmt: skip
        wanted.sort(key=lambda r: (-r.started, -(r.execution_id or 0)))
        found = zt.find(value__ge=1, value__lt=2**40, order_by="-started", limit=3)
        assert ids(wanted[:3]) == ids(found)


def read_whole_step(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("find read every execution of the step")


class TestPushedDown:
    def test_find_reads_through_filter_query(self, store, monkeypatch):
        """A condition on a server store reads filter_query results, never the whole step."""
        mlmd = _tracker.active().store.mlmd
        calls: list[str] = []
        original = mlmd.get_executions

        def listed(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs["list_options"].filter_query)
            return original(*args, **kwargs)

        monkeypatch.setattr(mlmd, "get_executions_by_type", read_whole_step, raising=False)
        monkeypatch.setattr(mlmd, "get_executions", listed, raising=False)
        found = zt.find(step="holds", value=2**40)
        expected = ([2**40], 2)
        assert expected == ([r.params["value"] for r in found], len(calls))

    def test_every_page_of_candidates_is_read(self, store, monkeypatch):
        """A filter that passes more executions than one page holds still yields all of them."""
        mlmd = _tracker.active().store.mlmd
        monkeypatch.setattr(mlmd, "get_executions_by_type", read_whole_step, raising=False)
        found = zt.find(step="many", i__ge=0)
        expected = list(range(PAGE + 20))
        assert expected == [r.params["i"] for r in found]

    def test_a_condition_that_cannot_narrow_reads_the_step(self, store, monkeypatch):
        """value__ne=1 has no filter: the step is read whole, as before."""
        mlmd = _tracker.active().store.mlmd
        read: list[str] = []
        original = mlmd.get_executions_by_type

        def whole_step(name: str, *args: Any, **kwargs: Any) -> Any:
            read.append(name)
            return original(name, *args, **kwargs)

        monkeypatch.setattr(mlmd, "get_executions_by_type", whole_step, raising=False)
        found = zt.find(step="shadowed", value__ne=1)
        expected = (5, ["zentrack.step.shadowed"])
        assert expected == (len(found), read)


def query(**conditions: Any) -> Query:
    parsed = tuple(Condition.parse(key, value) for key, value in conditions.items())
    return Query("train", parsed, None, lambda record: True)


CODEC = Codec(POSTGRESQL)
OPAQUE = "custom_properties.`value`.int_value IS NULL AND"


class TestFilters:
    @pytest.mark.parametrize(
        ("conditions", "expected"),
        [
            ({"value": 5}, False),
            ({"value": "adam"}, False),
            ({"value__in": [1, "a", None]}, False),
            ({"value": 2**40}, True),
            ({"value__in": [1, 2**31]}, True),
            ({"value__lt": 0.5}, True),
            ({"value": "back\\slash"}, True),
            ({"value": "x" * 3000}, True),
            ({"value__contains": "a"}, True),
        ],
    )
    def test_proto_values_are_read_only_when_they_may_match(self, conditions, expected):
        """Every row of the property is read when a big int or a proto string may pass."""
        assert expected == (OPAQUE in filters(query(**conditions), CODEC)[0])

    def test_one_filter_per_name(self):
        """lr=0.5 reads the param and the metric of that name (and MariaDB's clipped doubles)."""
        prop = "custom_properties.`lr`"
        low, high = 0.5 - tolerance(0.5), 0.5 + tolerance(0.5)
        low, high = low - low * SLACK, high + high * SLACK
        expected = (
            f"type = 'zentrack.step.train' AND (({prop}.double_value >= {low!r} "
            f"AND {prop}.double_value <= {high!r}) OR {prop}.double_value >= 9.9e+64 OR "
            f"{prop}.double_value <= -9.9e+64)"
        )
        found = filters(query(lr=0.5), CODEC)
        assert [expected, expected.replace("`lr`", "`zentrack.metric.lr`")] == found

    @pytest.mark.parametrize(
        "conditions",
        [
            {"lr__ne": 1},
            {"it's": 1},
            {"lr$0": 1},
            {"Lr[0]": 1},
            {"lr": 1.5j},
        ],
    )
    def test_what_is_not_written_as_a_filter(self, conditions):
        """ne alone, names MLMD would paste unquoted, unknown value types: read the step."""
        with pytest.raises(Unpushable):
            filters(query(**conditions), CODEC)

    @pytest.mark.parametrize(
        "text",
        ["it's", 'say "hi"', "back\\slash", "café", "tab\t", "last_known_state = NEW",
         "custom_properties.x.", "`", "x" * 513],
    )  # fmt: skip
    def test_unsafe_strings_are_not_literals(self, text):
        """Strings MLMD's filter would mangle are never written into one."""
        expected = None
        assert expected == literal(text)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("it's", "it%s"),
            ('say "hi"', "say %hi%"),
            ("café", "caf%"),
            ("a%b_c", "a%b_c"),
            ("last_known_state = NEW", "last_known__tate = NEW"),
            ("custom_properties.x.", "custom__roperties.x."),
            ("x" * 600, "x" * 512 + "%"),
        ],
    )
    def test_a_string_that_is_no_literal_is_matched_by_a_wider_pattern(self, text, expected):
        """Unsafe characters become %, rewritten words lose a letter: LIKE finds a superset."""
        assert expected == pattern(text)

    def test_a_step_name_that_is_no_literal_is_a_type_pattern(self):
        """A step named like a word MLMD's filter rewrites is found by a LIKE on its type."""
        found = Query("state", (Condition("lr", "eq", 1),), None, lambda record: True)
        expected = "type LIKE 'zentrack.step._tate' AND "
        assert expected == filters(found, CODEC)[0][: len(expected)]

    def test_without_a_step_one_filter_per_name_takes_every_step(self):
        """find(lr=1) without a step: two filters on every zentrack.step.* type."""
        found = Query(None, (Condition("lr", "eq", 1),), None, lambda record: True)
        expected = ["type LIKE 'zentrack.step.%' AND "] * 2
        assert expected == [text[: len(expected[0])] for text in filters(found, CODEC)]

    def test_nothing_to_read_when_no_value_can_match(self):
        """lr=nan matches nothing: no filter at all."""
        expected: list[str] = []
        assert expected == filters(query(lr=float("nan")), CODEC)
