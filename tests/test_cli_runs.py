"""Tests for the run commands of the command line: ``compare`` options, ``tag``, ``ui``.

Every command runs as ``python -m zentrack`` in a subprocess on the test's
store (see :func:`tests.test_cli.zentrack`); ``ui`` is started as a process
of its own, asked for pages over HTTP, and stopped by its pid.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

import zentrack as zt
from tests import pipelines_for_tests as pft
from tests.conftest import ROOT
from tests.test_cli import ok, refused, zentrack
from zentrack._record import tracker as _tracker


def sweep() -> list[zt.Run[Any]]:
    """Three runs of the training pipeline, oldest first."""
    return [pft.training(lr=lr) for lr in (0.01, 0.3, 0.02)]


def first_column(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip()]


class TestCompareOptions:
    """``zentrack compare`` as a leaderboard."""

    def test_best_and_last(self, store_path):
        """``--best loss`` ranks lowest loss first (a loss is better low); ``--last`` keeps N."""
        runs = sweep()
        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--best", "loss"))
        last = ok(zentrack(store_path, "compare", "--pipeline", "training", "--last", "2",
                           "--best", "loss", "--differing"))
        rows = [line.split() for line in out.splitlines()[1:4]]
        expected = (
            [("1", runs[1].id), ("2", runs[2].id), ("3", runs[0].id)],
            [runs[1].id, runs[2].id],
        )
        actual = ([(r[0], r[1]) for r in rows], [line.split()[1] for line in last.splitlines()[1:]])
        assert expected == actual

    def test_sort_desc_precision(self, store_path):
        """``--sort lr --desc`` orders by lr, highest first; ``--precision 1`` rounds."""
        runs = sweep()
        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--sort", "lr",
                          "--desc", "--precision", "1", "--differing"))
        expected = ([runs[1].id, runs[2].id, runs[0].id], ["0.7", "1", "1"])
        assert expected == (first_column(out), [line.split()[-1] for line in out.splitlines()[1:]])

    def test_runs_as_columns(self, store_path):
        """``--runs-as columns`` puts a column per run; differing metric rows are marked."""
        runs = sweep()
        out = ok(zentrack(store_path, "compare", *[r.id[:-1] for r in runs],
                          "--runs-as", "columns", "--differing"))
        lines = out.splitlines()
        assert ([r.id for r in runs], True) == (
            lines[0].split(),
            any(line.startswith("* metric:trainer.loss") for line in lines),
        )

    def test_bad_best(self, store_path):
        """A metric no run logged: exit 1 with the keys there are."""
        sweep()
        err = refused(zentrack(store_path, "compare", "--pipeline", "training", "--best", "f1"))
        assert "'trainer.loss'" in err

    def test_html(self, store_path, tmp_path):
        """``--html FILE`` writes the report and says where and how big."""
        runs = sweep()
        target = tmp_path / "report.html"
        out = ok(zentrack(store_path, "compare", "--pipeline", "training", "--html", str(target),
                          "--title", "lr sweep"))
        page = target.read_text(encoding="ascii")
        blob = re.search(r'id="zt-data">(.*?)</script>', page, re.S)
        assert blob is not None
        expected = (True, "<h1>lr sweep</h1>" in page, [r.id for r in reversed(runs)])
        actual = (
            out.startswith(f"wrote {target} (3 runs, "),
            True,
            [r["id"] for r in json.loads(blob.group(1))["runs"]],
        )
        assert expected == actual

    def test_json_exact(self, store_path):
        """``--json`` keeps exact values, whatever ``--precision`` says."""
        pft.training(lr=0.123456789)
        data = json.loads(ok(zentrack(store_path, "compare", "--json", "--precision", "2")))
        assert data["params"]["trainer.lr"] == [0.123456789]


class TestRunsCommand:
    """``zentrack runs --tag``, ``show`` with tags, notes and run metrics."""

    def test_tag_filter_and_show(self, store_path):
        """``runs --tag`` keeps tagged runs; ``show`` prints tags and the note."""
        first, second = pft.training(), pft.training(lr=0.5)
        second.tag(stage="prod")
        second.note("promoted\nafter review")
        listed = ok(zentrack(store_path, "runs", "--tag", "stage=prod"))
        shown = ok(zentrack(store_path, "show", second.id[:-1]))
        row = json.loads(ok(zentrack(store_path, "show", second.id, "--json")))
        expected = (
            [second.id],
            True,
            True,
            ({"stage": "prod"}, "promoted\nafter review"),
        )
        actual = (
            first_column(listed),
            "tags      stage=prod" in shown,
            "note      promoted\n          after review" in shown,
            (row["tags"], row["note"]),
        )
        assert expected == actual
        assert first.id not in listed


class TestTag:
    """``zentrack tag``."""

    def test_set_remove_note(self, store_path):
        """Tags set and removed, the note set then cleared, by a unique id prefix."""
        run = pft.training()
        out = ok(zentrack(store_path, "tag", run.id[:-2], "data=v2", "owner=ana", "--note",
                          "baseline"))
        ok(zentrack(store_path, "tag", run.id, "--remove", "owner"))
        middle = zt.get_run(run.id)
        ok(zentrack(store_path, "tag", run.id, "--clear-note"))
        after = zt.get_run(run.id)
        expected = (True, ({"data": "v2"}, "baseline"), ({"data": "v2"}, None))
        actual = (
            out.startswith(f"run {run.id}: data=v2 owner=ana; note set (written)"),
            (middle.tags, middle.notes),
            (after.tags, after.notes),
        )
        assert expected == actual

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["nope", "a=b"], "No run 'nope'"),
            (["{run}", "bad key=x"], "Tag key 'bad key'"),
            (["{run}"], "nothing to do"),
            (["{run}", "novalue"], "tags are key=value"),
        ],
    )
    def test_refused(self, store_path, args, message):
        """Unknown runs, bad keys, nothing to do: exit 1 with the reason."""
        run = pft.training()
        process = zentrack(store_path, "tag", *[a.format(run=run.id) for a in args])
        expected = (1, True)
        assert expected == (process.returncode, message in process.stderr), process.stderr

    def test_ambiguous_prefix(self, store_path):
        """A prefix of several runs' ids: exit 1 listing them."""
        first, second = pft.training(), pft.training()
        common = next(
            first.id[:n] for n in range(len(first.id), 0, -1) if second.id.startswith(first.id[:n])
        )
        err = refused(zentrack(store_path, "tag", common, "a=b"))
        expected = (True, True)
        assert expected == (first.id in err, second.id in err)

    def test_busy_store_keeps_the_tag(self, store_path):
        """With the writer lock held elsewhere, the tag is journaled, then written later."""
        run = pft.training()
        zt.flush()
        lock = _tracker.active().location.lock_path
        assert lock is not None
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            env_timeout = {"ZENTRACK_LOCK_TIMEOUT": "0.3"}
            process = subprocess.run(
                [sys.executable, "-m", "zentrack", "tag", run.id, "stage=busy",
                 "--store", str(store_path)],
                cwd=ROOT, env={**os.environ, "GLOG_minloglevel": "2", **env_timeout},
                capture_output=True, text=True, timeout=120,
            )
        finally:
            os.close(fd)
        expected = (0, True, {"stage": "busy"})
        actual = (process.returncode, "journaled" in process.stdout, zt.get_run(run.id).tags)
        assert expected == actual, process.stderr


class TestUi:
    """``zentrack ui``, as a process."""

    def test_serves_and_stops(self, store_path):
        """``--port 0`` picks a port and prints the URL; pages answer; SIGTERM ends it (0)."""
        run = pft.training()
        zt.flush()
        process = subprocess.Popen(
            [sys.executable, "-m", "zentrack", "ui", "--port", "0", "--store", str(store_path)],
            cwd=ROOT, env={**os.environ, "GLOG_minloglevel": "2"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.split()[-1]
            with urllib.request.urlopen(url, timeout=30) as response:
                page = response.read().decode("ascii")
            with urllib.request.urlopen(f"{url}run?id={run.id}", timeout=30) as response:
                status = response.status
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
        expected = (True, True, 200, 0)
        actual = (
            re.fullmatch(r"http://127\.0\.0\.1:\d+/", url) is not None,
            f'value="{run.id}"' in page,
            status,
            code,
        )
        assert expected == actual, line

    def test_port_in_use(self, store_path):
        """A port that is taken: exit with a message naming it."""
        import socket

        pft.training()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            process = zentrack(store_path, "ui", "--port", str(port))
        expected = (1, True)
        found = f"cannot listen on 127.0.0.1:{port}" in process.stderr
        assert expected == (process.returncode, found), process.stderr
