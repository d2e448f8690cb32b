"""zentrack on real PostgreSQL and MariaDB servers (``postgresql://`` and ``mysql://`` stores).

Each test runs on both backends, against throwaway servers started once per
session (``tests/servers.py``), in a database of its own.  Nothing is mocked:
the MLMD library talks to the real servers.  Value and name hazards are
written from a subprocess, whose exit code would show an abort.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import zentrack as zt
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT
from tests.server_workers import (
    LONG_PARAM,
    METRIC_NAMES,
    NAMES,
    STEP_ONLY,
    VALUES,
    Diverged,
    diverge,
    experiment,
    hazard,
    tick,
)
from tests.servers import (
    PASSWORD,
    SERVER_FIXTURES,
    USER,
    Server,
    plain_store,
    plain_value,
    postgres_bindir,
    restart_postgres,
)
from tests.strategies import typed
from zentrack._record import tracker as _tracker
from zentrack._store.location import parse
from zentrack.exceptions import StoreError

DRAINER = "import sys; from zentrack._record.drain import main; sys.exit(main(sys.argv[1:]))"


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Python subprocess at the repository root, with a timeout."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "GLOG_minloglevel": "2", **(env or {})},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def clean_exit(done: subprocess.CompletedProcess[str]) -> str:
    """'ok' for exit code 0 without a traceback, else what happened."""
    if done.returncode == 0 and "Traceback" not in done.stderr:
        return "ok"
    return f"exit code {done.returncode}: {done.stderr[-1500:]}"


def database_of(url: str) -> str:
    return parse(url).database


# -- tracking ------------------------------------------------------------------------------


class TestTracking:
    def test_steps_find_and_lookup(self, server_url):
        """Step calls read back exactly through find() (with conditions) and lookup()."""
        fingerprint = zt.fingerprint(tick, i=2**40)
        for i in (1, 2, 2**40):
            tick(i=i)
        expected = ([1, 2, 2**40], [2**40], [2**40], ["COMPLETE"] * 3)
        actual = (
            [r.params["i"] for r in zt.find(step="tick")],
            [r.params["i"] for r in zt.find(step="tick", i__gt=2**31)],
            [r.params["i"] for r in zt.lookup(fingerprint)],
            [r.state for r in zt.find(step="tick")],
        )
        assert expected == actual

    def test_lookup_by_a_short_fingerprint_prefix(self, server_url):
        """A unique 12-character prefix finds the calls, in any case; a repeat is found too."""
        fingerprint = zt.fingerprint(tick, i=7)
        for i in (7, 7, 8):
            tick(i=i)
        expected = ([7, 7], [7, 7])
        actual = (
            [r.params["i"] for r in zt.lookup(fingerprint[:12])],
            [r.params["i"] for r in zt.lookup(fingerprint[:12].upper())],
        )
        assert expected == actual

    def test_failed_call_is_recorded_with_its_error(self, server_url):
        """A failing call is FAILED, with its message (backslashes and quotes) kept exactly."""
        with pytest.raises(Diverged):
            diverge(lr=2.5)
        (record,) = zt.find(step="diverge")
        expected = ("FAILED", 'Diverged: loss is nan at C:\\runs\\2.5 ("bad")')
        assert expected == (record.state, record.error)

    def test_pipeline_runs_cache_hits_and_comparison(self, server_url):
        """Runs, get_run, compare_runs and cache hits work as on SQLite."""
        first = experiment(lr=0.1)
        second = experiment(lr=0.2)
        again = experiment(lr=0.1)
        runs = zt.runs(pipeline="experiment")
        fetched = zt.get_run(first.id)
        comparison = zt.compare_runs(pipeline="experiment")
        expected = (
            [again.id, second.id, first.id],
            ["COMPLETE"] * 3,
            [{"lr": 0.1, "n": 3}, {"lr": 0.2, "n": 3}, {"lr": 0.1, "n": 3}],
            ["COMPLETE", "COMPLETE", "COMPLETE"],
            ["CACHED", "CACHED", "CACHED"],
            {"prepare", "Fitter", "score"},
            [0.1, 0.2, 0.1],
            {"loss": 0.9, "Loss": 0.1},
        )
        actual = (
            [r.id for r in runs],
            [r.state for r in runs],
            [r.params for r in (first, second, again)],
            [s.state for s in fetched.steps],
            [s.state for s in zt.get_run(again.id).steps],
            {s.step for s in fetched.steps},
            comparison.params["pipeline.lr"],
            fetched.metrics().get("Fitter"),
        )
        assert expected == actual

    def test_run_tags_note_and_metrics(self, server_url):
        """Tags (keys differing by case only), a note with backslashes and quotes, and a run
        changed after it ended read back exactly; the run keeps its context id."""
        run = experiment(lr=0.1)
        zt.flush()
        before = zt.get_run(run.id).context_id
        run.tag(Stage="A", stage="b", path="C:\\runs\\1")
        run.note('tried "C:\\x"\nsecond line \u00e9')
        again = zt.get_run(run.id)
        expected = (
            {"Stage": "A", "stage": "b", "path": "C:\\runs\\1"},
            'tried "C:\\x"\nsecond line \u00e9',
            before,
            ["COMPLETE"] * 3,
        )
        actual = (again.tags, again.notes, again.context_id, [s.state for s in again.steps])
        assert expected == actual

    def test_cached_calls_point_at_the_original(self, server_url):
        """A cache hit's record names the execution whose output it reused."""
        experiment(lr=0.3)
        experiment(lr=0.3)
        records = zt.find(step="Fitter")
        expected = (["COMPLETE", "CACHED"], records[0].execution_id)
        assert expected == ([r.state for r in records], records[1].cached_execution_id)

    def test_records_of_a_dead_process_are_written_by_the_drainer(self, server_url):
        """Calls of a process that left without flushing wait in the journal; the drainer
        process (python -m zentrack._record.drain URL) writes every one of them."""
        done = run(["-m", "tests.server_workers", "killed_writer", server_url, "25"])
        waiting = _tracker.active().pending()
        drained = run(["-c", DRAINER, server_url])
        expected = ("ok", 25, 0, list(range(25)))
        actual = (
            clean_exit(done),
            waiting,
            drained.returncode,
            sorted(r.params["i"] for r in zt.find(step="tick")),
        )
        assert expected == actual, drained.stderr

    def test_background_drainer_writes_to_the_server(self, server_url):
        """With a small batch size, the background drainer process empties the journal
        into the server by itself (no flush() here, only waiting for it)."""
        tracker = _tracker.active()
        tracker.batch_size = 5
        for i in range(12):
            tick(i=i)
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while tracker.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        expected = (0, list(range(12)))
        actual = (tracker.pending(), sorted(r.params["i"] for r in zt.find(step="tick")))
        assert expected == actual


# -- hazards -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(SERVER_FIXTURES))
def hazard_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Server, str, subprocess.CompletedProcess[str]]:
    """One database per backend, written once by a subprocess with every hazard."""
    server: Server = request.getfixturevalue(SERVER_FIXTURES[request.param])
    url = server.url(server.new_database())
    home = tmp_path_factory.mktemp("hazard-home")
    done = run(["-m", "tests.server_workers", "hazards", url], env={"HOME": str(home)})
    return server, url, done


@pytest.fixture
def hazards(hazard_db, store_path, server_home):
    """Make the hazard database the active store for this test."""
    server, url, done = hazard_db
    zt.init(url)
    return server, url, done


def by_label(records, read):
    found: dict[str, list[Any]] = {}
    for record in records:
        found.setdefault(record.params["label"], []).append(typed(read(record)))
    return found


class TestValueHazards:
    def test_writer_exits_cleanly(self, hazards):
        """The writing process exits 0 (no abort, no traceback) after flushing everything."""
        _, _, done = hazards
        expected = "ok"
        assert expected == clean_exit(done)

    def test_parameter_values_read_back_exactly(self, hazards):
        """find() returns every value with its exact type and bits, inside and outside a run."""
        expected = {label: [typed(value)] * 2 for label, value in {**VALUES, **STEP_ONLY}.items()}
        assert expected == by_label(zt.find(step="hazard"), lambda r: r.params["value"])

    def test_metric_values_read_back_exactly(self, hazards):
        """A metric logged with each value reads back exactly."""
        expected = {label: [typed(value)] * 2 for label, value in {**VALUES, **STEP_ONLY}.items()}
        assert expected == by_label(zt.find(step="hazard"), lambda r: r.metrics["m"])

    def test_lookup_by_fingerprint(self, hazards):
        """lookup() of a fingerprint computed here finds the subprocess's two calls."""
        values = {**VALUES, **STEP_ONLY}
        expected = {label: 2 for label in values}
        actual = {
            label: len(zt.lookup(zt.fingerprint(hazard, label=label, value=value)))
            for label, value in values.items()
        }
        assert expected == actual

    def test_run_parameters_read_back_exactly(self, hazards):
        """Each run's own parameter and its step's parameter keep the value exactly."""
        expected = {
            label: ("COMPLETE", typed(value), [typed(value)]) for label, value in VALUES.items()
        }
        actual = {
            r.params["label"]: (
                r.state,
                typed(r.params["value"]),
                [typed(s.params["value"]) for s in r.steps],
            )
            for r in zt.runs(pipeline="hazard_run")
        }
        assert expected == actual

    def test_parameter_names(self, hazards):
        """A 300-character parameter name and names differing only in case read back."""
        expected = ([{LONG_PARAM: 0.25}], [{"lr": 3, "LR": 4}])
        assert expected == (
            [r.params for r in zt.find(step="long_param")],
            [r.params for r in zt.find(step="cased")],
        )


class TestNameHazards:
    def test_step_names(self, hazards):
        """Every awkward step name finds its own record, and find() lists each once."""
        expected = {name: [(name, {"x": len(label)})] for label, name in NAMES.items()}
        actual = {name: [(r.step, r.params) for r in zt.find(step=name)] for name in NAMES.values()}
        everything = sorted(r.step for r in zt.find() if r.step in set(NAMES.values()))
        assert (expected, sorted(NAMES.values())) == (actual, everything)

    def test_pipeline_names(self, hazards):
        """Every awkward pipeline name finds its own run, with its step."""
        expected = {
            name: [(name, "COMPLETE", {"label": label}, 1)] for label, name in NAMES.items()
        }
        actual = {
            name: [(r.pipeline, r.state, r.params, len(r.steps)) for r in zt.runs(pipeline=name)]
            for name in NAMES.values()
        }
        assert expected == actual

    def test_metric_names(self, hazards):
        """Metrics named by every awkward name read back under that name."""
        names = {**NAMES, **METRIC_NAMES}
        expected = {name: len(label) + 0.5 for label, name in names.items()}
        actual = {}
        for record in zt.find(step="_metric"):
            actual.update(record.metrics)
        assert expected == actual


class TestPlainReader:
    def test_plain_mlmd_lists_everything_and_reads_exact_records(self, hazards):
        """Plain ml_metadata lists every execution, context and artifact, finds no empty
        Value, and the documented reading of zentrack.record gives zentrack's records."""
        server, url, _ = hazards
        store = plain_store(server, database_of(url))
        executions = store.get_executions()
        contexts = store.get_contexts()
        empty = [
            (node.id, key)
            for node in [*executions, *contexts, *store.get_artifacts()]
            for key, value in node.custom_properties.items()
            if value.WhichOneof("value") is None
        ]
        plain_records = {
            json.loads(plain_value(e.custom_properties, "zentrack.record"))["id"]
            for e in executions
        }
        run_names = {
            json.loads(plain_value(c.custom_properties, "zentrack.record")).get("pipeline")
            for c in contexts
            if "zentrack.state" in c.custom_properties
        }
        expected = ([], {r.record_id for r in zt.find()}, {"hazard_run", *NAMES.values()})
        assert expected == (empty, plain_records, run_names)

    def test_plain_reader_sees_documented_native_values(self, hazards):
        """Parameters are native properties; what MLMD cannot hold is documented."""
        server, url, _ = hazards
        store = plain_store(server, database_of(url))
        natives = {}
        for execution in store.get_executions_by_type("zentrack.step.hazard"):
            props = execution.custom_properties
            natives[plain_value(props, "label")] = plain_value(props, "value")
        expected = {
            "int_2_31": 2**31,
            "int_2_63": "9223372036854775808",
            "backslash": "C:\\temp\\new\\x00",
            "nul": '"a\\u0000b"',
            "over_4_MiB": STEP_ONLY["over_4_MiB"],
            "one_third": 0.333333,
        }
        assert expected == {label: natives[label] for label in expected}


# -- connecting ----------------------------------------------------------------------------


class TestConnecting:
    def test_wrong_password_says_why(self, server, store_path, server_home):
        """A refused login raises StoreError with the reason (not MLMD's empty message)."""
        zt.init(server.url(server.new_database(), password="wrong"))
        with pytest.raises(StoreError) as info:
            zt.find(step="tick")
        message = str(info.value)
        reason = {
            "postgresql": 'password authentication failed for user "zentrack"',
            "mysql": "refused the login",
        }[server.kind]
        expected = (True, False, True)
        actual = (reason in message, "wrong" in message, f"{USER}@{server.host}" in message)
        assert expected == actual, message

    def test_nothing_listening_says_so(self, server, store_path, server_home):
        """A port nobody listens on gives 'nothing accepts connections', naming it."""
        from tests.servers import _free_port

        port = _free_port()
        zt.init(f"{server.kind}://{USER}:pw@127.0.0.1:{port}/db")
        with pytest.raises(StoreError) as info:
            zt.find(step="tick")
        expected = f"nothing accepts connections on 127.0.0.1:{port}"
        assert expected in str(info.value)

    def test_missing_user_is_an_error_not_an_abort(self, postgres_server):
        """A URL without a user (MLMD would abort the process) raises StoreError at init."""
        script = (
            "import zentrack as zt\n"
            "from zentrack.exceptions import StoreError\n"
            "try:\n"
            f"    zt.init('postgresql://127.0.0.1:{postgres_server.port}/db')\n"
            "except StoreError as exc:\n"
            "    print(exc)\n"
        )
        done = run(["-c", script])
        expected = ("ok", True)
        assert expected == (clean_exit(done), "names no user" in done.stdout)

    def test_user_without_createdb_uses_an_existing_database(
        self, postgres_server, store_path, server_home
    ):
        """A role that may neither create databases nor enter `postgres` opens its own one."""
        database = postgres_server.new_database()
        role = f"{database}_owner"
        psql(postgres_server, f"CREATE ROLE {role} LOGIN PASSWORD 'owner pw' NOCREATEDB")
        psql(postgres_server, f"CREATE DATABASE {database} OWNER {role}")
        psql(postgres_server, "REVOKE CONNECT ON DATABASE postgres FROM PUBLIC")
        try:
            zt.init(f"postgresql://{role}:owner%20pw@127.0.0.1:{postgres_server.port}/{database}")
            tick(i=7)
            found = [r.params for r in zt.find(step="tick")]
        finally:
            psql(postgres_server, "GRANT CONNECT ON DATABASE postgres TO PUBLIC")
        expected = [{"i": 7}]
        assert expected == found


def psql(server: Server, statement: str) -> None:
    """Run one SQL statement as the test's superuser."""
    bindir = postgres_bindir()
    assert bindir is not None
    subprocess.run(
        [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(server.port), "-U", USER,
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement],
        env={**os.environ, "PGPASSWORD": PASSWORD},
        check=True, capture_output=True, timeout=SUBPROCESS_TIMEOUT,
    )


class TestReconnecting:
    def test_store_survives_a_postgres_restart(self, postgres_server, store_path, server_home):
        """After the server restarts, the next flush and read reconnect instead of failing."""
        zt.init(postgres_server.url(postgres_server.new_database()))
        tick(i=1)
        zt.flush()
        restart_postgres(postgres_server)
        tick(i=2)
        expected = (1, [1, 2])
        assert expected == (zt.flush(), [r.params["i"] for r in zt.find(step="tick")])

    def test_store_survives_killed_mysql_connections(
        self, mariadb_server, store_path, server_home
    ):
        """After the server kills zentrack's connection, the next flush reconnects."""
        database = mariadb_server.new_database()
        zt.init(mariadb_server.url(database))
        tick(i=1)
        zt.flush()
        killed = kill_mysql_connections(mariadb_server)
        tick(i=2)
        expected = (True, 1, [1, 2])
        actual = (killed > 0, zt.flush(), [r.params["i"] for r in zt.find(step="tick")])
        assert expected == actual


def kill_mysql_connections(server: Server) -> int:
    """KILL every connection of the test user (what a server restart or timeout does)."""
    client = ["mariadb", f"--socket={server.root / 'mysql.sock'}", "-u", "root", "-N", "-e"]
    listed = subprocess.run(
        [*client, f"SELECT id FROM information_schema.processlist WHERE user = '{USER}'"],
        check=True, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
    )
    ids = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
    for connection in ids:
        subprocess.run([*client, f"KILL {connection}"], capture_output=True,
                       timeout=SUBPROCESS_TIMEOUT)
    return len(ids)

