"""Everyday use (issue 14), each as a user meets it: a project folder, a script, the shell.

Every test builds a project in a temporary folder (a ``pyproject.toml`` at
its root, ``train.py`` beside it, sometimes a notebook folder ``nb/``) and
runs ``python`` and ``python -m zentrack`` there as subprocesses, with no
``$ZENTRACK_STORE``: the store is the one zentrack finds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SUBPROCESS_TIMEOUT

TRAIN = """\
import os
import time

import zentrack as zt


def note(text):
    log = os.environ.get("ZT_TEST_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(text + "\\n")


@zt.step
def fit(data: list[float], max_depth=None, lr: float = 0.1) -> float:
    note(f"fit {max_depth} {lr}")
    if os.environ.get("ZT_TEST_WAIT"):
        open(os.environ["ZT_TEST_WAIT"], "w").close()
        time.sleep(60)
    if max_depth is not None and not isinstance(max_depth, int):
        raise ValueError(f"The 'max_depth' parameter must be an int. Got {max_depth!r}.")
    zt.log_metrics(loss=0.5)
    return sum(data) * lr


@zt.pipeline
def training(lr: float = 0.1) -> float:
    return fit([1.0, 2.0], lr=lr)


if __name__ == "__main__":
    run = training()
    print(run.config_path)
"""


def environment(**extra: str) -> dict[str, str]:
    """The user's environment: this checkout importable, no store named, no debug flags."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENTRACK_")}
    env["GLOG_minloglevel"] = "2"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def python(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def zentrack(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``zentrack ARGS`` in ``cwd``."""
    return python(cwd, "-m", "zentrack", *args, **env)


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project: ``pyproject.toml`` and ``train.py`` at its root, an empty ``nb/``."""
    root = tmp_path / "project"
    (root / "nb").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    (root / "train.py").write_text(TRAIN, encoding="utf-8")
    return root


def trained(project: Path) -> Path:
    """Run ``python train.py`` once; return the config it wrote."""
    return Path(succeeded(python(project, "train.py")).strip())


def stores_under(folder: Path) -> list[Path]:
    """Every ``.zentrack`` folder below ``folder``."""
    return sorted(p.relative_to(folder) for p in folder.rglob(".zentrack"))


NOTEBOOK = """\
import sys
sys.path.insert(0, "..")  # as a notebook in nb/ imports the project's code
import train
train.training(lr=0.2)
"""


class TestOneStorePerProject:
    """The store is found upward from the current folder, like git's repository."""

    @pytest.mark.parametrize("first", ["notebook", "script"])
    def test_notebook_in_a_subfolder_and_script_share_one_store(self, project, first):
        """Whichever runs first, both runs are in one store at the project's root."""
        order = [NOTEBOOK, None]
        if first == "script":
            order.reverse()
        for code in order:
            if code is None:
                succeeded(python(project, "train.py"))
            else:
                succeeded(python(project / "nb", "-c", code))

        rows = json.loads(succeeded(zentrack(project / "nb", "runs", "--json")))
        expected = ([Path(".zentrack")], [0.1, 0.2])
        assert expected == (stores_under(project), sorted(r["params"]["lr"] for r in rows))

    def test_search_stops_at_the_project_root(self, tmp_path):
        """A ``.zentrack`` above a project's root belongs to another project: never used."""
        outer = tmp_path / "outer"
        (outer / ".zentrack").mkdir(parents=True)
        inner = outer / "inner"
        (inner / "src").mkdir(parents=True)
        (inner / "pyproject.toml").write_text("", encoding="utf-8")
        (inner / "train.py").write_text(TRAIN, encoding="utf-8")

        succeeded(python(inner / "src", "-c", NOTEBOOK))

        expected = [Path(".zentrack"), Path("inner/.zentrack")]
        assert expected == stores_under(outer)
        assert (inner / ".zentrack" / "metadata.sqlite").is_file()

    def test_store_info_says_which_store_and_why(self, project, tmp_path):
        """From ``nb/``: the project's store, found upward; ``--store`` and the env say so."""
        trained(project)
        other = tmp_path / "other.sqlite"
        make = f"import zentrack as zt; zt.init({str(other)!r}); zt.runs()"
        succeeded(python(tmp_path, "-c", make))
        store = project / ".zentrack" / "metadata.sqlite"

        found = succeeded(zentrack(project / "nb", "store", "info")).splitlines()[:2]
        named = succeeded(zentrack(project / "nb", "store", "--store", str(other))).splitlines()
        env = succeeded(zentrack(project / "nb", "store", ZENTRACK_STORE=str(other)))

        expected = (
            [f"store:    {store}", f"why:      the nearest .zentrack/ folder found upward "
             f"from {project / 'nb'}"],
            [f"store:    {other}", "why:      named by --store"],
            "why:      named by $ZENTRACK_STORE",
        )
        assert expected == (found, named[:2], env.splitlines()[1])

    def test_config_run_from_a_subfolder_and_from_outside(self, project, tmp_path):
        """The config records the root: it reruns from ``nb/`` and from outside the project."""
        config = trained(project)
        from_nb = zentrack(project / "nb", "config", "run", str(config))
        from_outside = zentrack(tmp_path, "config", "run", str(config))

        rows = json.loads(succeeded(zentrack(project, "runs", "--json")))
        expected = (0, 0, ["COMPLETE"] * 3, [Path("project/.zentrack")])
        actual = (
            from_nb.returncode,
            from_outside.returncode,
            [r["state"] for r in rows],
            stores_under(tmp_path),
        )
        assert expected == actual, from_nb.stderr + from_outside.stderr

    def test_a_pipeline_that_cannot_be_imported_names_the_folder(self, project, tmp_path):
        """A copy of the config outside the project, run from elsewhere: one line, no store."""
        config = trained(project)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        copy = elsewhere / "copy.yaml"
        copy.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")

        done = zentrack(elsewhere, "config", "run", "copy.yaml")

        expected = (
            1,
            f"zentrack: copy.yaml: the pipeline 'train.training' cannot be imported from "
            f"{elsewhere} (no module named 'train'); run zentrack from {project} (the folder "
            "the run was made in) or add that folder to PYTHONPATH\n",
            [Path("copy.yaml")],
        )
        actual = (done.returncode, done.stderr, sorted(p.relative_to(elsewhere)
                                                       for p in elsewhere.iterdir()))
        assert expected == actual


class TestNothingCreated:
    """Commands that only read or send what waits never create a store; nor do failures."""

    @pytest.mark.parametrize(
        "command",
        [["flush"], ["cache", "clear"], ["rerun", "20260101T000000-0000"], ["store", "migrate"],
         ["cache", "clear", "--step", "fit"]],
        ids=" ".join,
    )
    def test_in_a_folder_without_a_store(self, project, command):
        """Exit 1 with ``no store at``, and no ``.zentrack`` anywhere."""
        done = zentrack(project / "nb", *command)

        expected = (1, True, [])
        actual = (done.returncode, done.stderr.startswith("zentrack: no store at "),
                  stores_under(project))
        assert expected == actual, done.stderr

    def test_a_failed_config_run_leaves_no_store(self, project, tmp_path):
        """A config that does not match the code fails before any store is made."""
        config = trained(project)
        bad = project / "bad.yaml"
        bad.write_text(config.read_text(encoding="utf-8").replace("lr: 0.1", "lr: fast"))
        elsewhere = tmp_path / "empty"
        (elsewhere / "nb").mkdir(parents=True)
        (elsewhere / "pyproject.toml").write_text("", encoding="utf-8")

        done = zentrack(elsewhere / "nb", "config", "run", str(bad), f"--store={elsewhere}/x")

        expected = (1, True, [])
        actual = (done.returncode, "is 'fast' that is a string" in done.stderr,
                  sorted(p.name for p in elsewhere.iterdir() if p.name != "nb" and
                         p.name != "pyproject.toml"))
        assert expected == actual, done.stderr

    def test_plan_without_a_store_plans_and_creates_nothing(self, project, tmp_path):
        """``config plan`` of a config outside any store: every step would run; no store made."""
        config = trained(project)
        elsewhere = tmp_path / "loose"
        elsewhere.mkdir()
        loose = elsewhere / "loose.yaml"
        loose.write_text(config.read_text(encoding="utf-8").replace(
            f"root: '{project}'", f"root: '{elsewhere}'"))
        (elsewhere / "train.py").write_text(TRAIN, encoding="utf-8")

        out = succeeded(zentrack(elsewhere, "config", "plan", "loose.yaml"))

        expected = (["fit", "miss"], [])
        assert expected == (out.split()[:2], stores_under(elsewhere))


class TestErrorsFromYourCode:
    """A failure in the user's own step is shown as theirs."""

    def bad_config(self, project: Path) -> Path:
        config = trained(project)
        bad = project / "bad.yaml"
        text = config.read_text(encoding="utf-8")
        bad.write_text(text.replace("max_depth: null", "max_depth: twelve"))
        return bad

    def test_step_config_key_type_message_and_only_user_frames(self, project):
        """The step and key, ``ValueError: ...`` last, frames of ``train.py`` only."""
        bad = self.bad_config(project)

        done = zentrack(project / "nb", "config", "run", str(bad))

        lines = done.stderr.splitlines()
        expected = (1, True, True, True, "ValueError: The 'max_depth' parameter must be an int. "
                    "Got 'twelve'.", False)
        actual = (
            done.returncode,
            lines[0].startswith("zentrack: step 'fit' (config key 'fit' of run "),
            lines[0].endswith(") raised ValueError:"),
            f'File "{project / "train.py"}", line' in done.stderr,
            lines[-1],
            f"zentrack{os.sep}_" in done.stderr,
        )
        assert expected == actual, done.stderr

    @pytest.mark.parametrize("how", ["--traceback", "ZENTRACK_DEBUG"])
    def test_traceback_shows_every_frame(self, project, how):
        """``--traceback`` or ``ZENTRACK_DEBUG=1``: zentrack's frames are shown too."""
        bad = self.bad_config(project)
        flag = ["--traceback"] if how == "--traceback" else []
        env = {"ZENTRACK_DEBUG": "1"} if how == "ZENTRACK_DEBUG" else {}

        done = zentrack(project, "config", "run", str(bad), *flag, **env)

        expected = (1, True, True)
        actual = (done.returncode, f"zentrack{os.sep}_step{os.sep}track.py" in done.stderr,
                  done.stderr.rstrip().endswith("Got 'twelve'."))
        assert expected == actual, done.stderr

    def test_ctrl_c_is_one_line_and_exit_130(self, project, tmp_path):
        """SIGINT while a step runs: ``zentrack: interrupted ...`` and exit 130."""
        trained(project)
        started = tmp_path / "started"
        process = subprocess.Popen(
            [sys.executable, "-m", "zentrack", "rerun", self.run_id(project)],
            cwd=project,
            env=environment(ZT_TEST_WAIT=str(started), ZENTRACK_CACHE="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + SUBPROCESS_TIMEOUT
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)

        expected = (130, ["zentrack: interrupted (Ctrl-C); records of finished calls are kept"])
        assert expected == (process.returncode, err.splitlines()), err

    def run_id(self, project: Path) -> str:
        rows = json.loads(succeeded(zentrack(project, "runs", "--json")))
        return str(rows[0]["id"])

    BAD_PARAM_SCRIPT = (
        "import zentrack as zt\n"
        "zt.init(':memory:')\n"
        "@zt.step\n"
        "class Trainer:\n"
        "    def __init__(self, depth: int = 1) -> None:\n"
        "        self.depth = depth\n"
        "    def run(self, x):\n"
        "        return x\n"
        "def build():\n"
        "    return Trainer(depth=object())\n"
        "build()\n"
    )

    def bad_param(
        self, tmp_path: Path, prefix: str = "", **env: str
    ) -> tuple[Path, subprocess.CompletedProcess[str]]:
        script = tmp_path / "bad_param.py"
        script.write_text(prefix + self.BAD_PARAM_SCRIPT, encoding="utf-8")
        return script, python(tmp_path, str(script), **env)

    def test_class_step_with_a_bad_param_ends_at_the_users_line(self, tmp_path):
        """One ParameterTypeError, no chained one, its traceback ending at the user's line."""
        script, done = self.bad_param(tmp_path)

        frames = [line for line in done.stderr.splitlines() if line.startswith("  File ")]
        expected = (
            1,
            1,
            0,
            [f'  File "{script}", line 11, in <module>', f'  File "{script}", line 10, in build'],
            "zentrack.exceptions.ParameterTypeError: Step 'Trainer': parameter 'depth' must be",
            True,
        )
        actual = (
            done.returncode,
            done.stderr.count("Traceback (most recent call last)"),
            done.stderr.count("During handling"),
            frames,
            done.stderr.splitlines()[-1][:81],
            "that is an object)" in done.stderr,
        )
        assert expected == actual, done.stderr

    def test_class_step_bad_param_with_debug_shows_zentracks_frame(self, tmp_path):
        """``ZENTRACK_DEBUG=1`` keeps the frame that raised."""
        _, done = self.bad_param(tmp_path, ZENTRACK_DEBUG="1")

        frames = [line for line in done.stderr.splitlines() if line.startswith("  File ")]
        expected = (1, 3, f"zentrack{os.sep}_step{os.sep}decorator.py")
        actual = (done.returncode, len(frames), frames[-1].split('"')[1][-len(expected[2]) :])
        assert expected == actual, done.stderr

    def test_class_step_bad_param_leaves_the_users_excepthook_alone(self, tmp_path):
        """A script's own ``sys.excepthook`` gets the error untouched."""
        prefix = (
            "import sys\n"
            "def hook(kind, value, tb):\n"
            "    print('own hook', kind.__name__, file=sys.stderr)\n"
            "sys.excepthook = hook\n"
        )
        _, done = self.bad_param(tmp_path, prefix)

        assert (
            done.returncode,
            done.stderr.splitlines(),
        ) == (1, ["own hook ParameterTypeError"]), done.stderr


UNREACHABLE = "postgresql://nobody@127.0.0.1:1/x"


class TestUnreachableStore:
    """A store that cannot be reached: one warning, calls run, records wait; or strictness."""

    def test_warns_once_naming_the_outbox_and_the_fix(self, project, tmp_path):
        """Exit 0, the step ran, one warning naming the journal and ``zentrack flush``."""
        log = tmp_path / "log.txt"
        script = "import train\nfor lr in (0.1, 0.2):\n    train.training(lr=lr).steps\n"

        done = python(project, "-c", script, ZENTRACK_STORE=UNREACHABLE, ZT_TEST_LOG=str(log),
                      HOME=str(tmp_path))

        warnings = [line for line in done.stderr.splitlines() if line.startswith("zentrack:")]
        configs = sorted(p.name for p in (project / ".zentrack" / "configs").iterdir())
        expected = (0, 1, True, True, ["fit None 0.1", "fit None 0.2"], 2)
        actual = (
            done.returncode,
            len(warnings),
            "records wait in " in done.stderr and ".journal" in done.stderr,
            "run `zentrack flush` once the store is back" in done.stderr,
            log.read_text(encoding="utf-8").splitlines(),
            len(configs),
        )
        assert expected == actual, done.stderr

    def test_strict_fails_the_first_call(self, project, tmp_path):
        """``ZENTRACK_STRICT=1``: a StoreError before the step body runs."""
        log = tmp_path / "log.txt"
        done = python(project, "train.py", ZENTRACK_STORE=UNREACHABLE, ZENTRACK_STRICT="1",
                      ZT_TEST_LOG=str(log), HOME=str(tmp_path))

        expected = (1, True, False)
        actual = (done.returncode, "zentrack.exceptions.StoreError: Store " in done.stderr,
                  log.exists())
        assert expected == actual, done.stderr

    def test_init_on_store_error_raise(self, tmp_path):
        """``zt.init(URL, on_store_error="raise")`` raises; a wrong value is a ValueError."""
        script = (
            "import zentrack as zt\n"
            "for value in ('raise', 'sometimes'):\n"
            "    try:\n"
            f"        zt.init({UNREACHABLE!r}, on_store_error=value)\n"
            "    except Exception as exc:\n"
            "        print(type(exc).__name__, str(exc)[:40])\n"
        )
        out = succeeded(python(tmp_path, "-c", script, HOME=str(tmp_path)))
        expected = [
            "StoreError Store 'postgresql://nobody@127.0.0.1:1/x",
            "ValueError on_store_error must be 'warn' or 'raise'",
        ]
        assert expected == out.splitlines()


class TestProgress:
    """A progress bar on stderr for long work, only where a person watches."""

    def backlog(self, project: Path) -> None:
        """Records a killed process left in the journal (no background flush ran)."""
        script = (
            "import os, zentrack as zt\n"
            "tracker = zt.init()\n"
            "tracker.batch_size, tracker.max_age = 10**9, 10**9\n"
            "import train\n"
            "for i in range(50):\n"
            "    train.fit([float(i)])\n"
            "os._exit(0)\n"
        )
        (project / ".zentrack").mkdir()
        succeeded(python(project, "-c", script))

    def test_nothing_drawn_when_stderr_is_piped(self, project):
        """Piped stderr: no bar, just the count on stdout."""
        self.backlog(project)
        expected = "flushed 50 records\n"
        assert expected == succeeded(zentrack(project, "flush"))

    def test_drawn_when_asked(self, project):
        """``ZENTRACK_PROGRESS=plain`` (as a terminal would): the line, then cleared."""
        self.backlog(project)
        done = subprocess.run(
            [sys.executable, "-m", "zentrack", "flush"],
            cwd=project,
            env=environment(ZENTRACK_PROGRESS="plain"),
            capture_output=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        err = done.stderr.decode()
        expected = (0, b"flushed 50 records\n", True, True)
        actual = (
            done.returncode,
            done.stdout,
            "\rzentrack: writing records of ended processes: 50 (" in err,
            err.endswith("\r\x1b[K"),
        )
        assert expected == actual, repr(err)

    def test_tqdm_draws_the_bar_when_installed(self, project):
        """With the ``progress`` extra, tqdm draws it: the description, a count, a rate."""
        pytest.importorskip("tqdm")
        self.backlog(project)
        done = zentrack(project, "flush", ZENTRACK_PROGRESS="always")
        expected = (0, "flushed 50 records\n", True)
        actual = (done.returncode, done.stdout,
                  "zentrack: writing records of ended processes: 50" in done.stderr)
        assert expected == actual, done.stderr

    def test_only_a_terminal_is_a_person(self):
        """The bar is wanted on a terminal, not on a pipe."""
        from zentrack._progress import _wanted

        read, write = os.pipe()
        leader, follower = os.openpty()
        try:
            with open(write, "w", closefd=False) as pipe, open(
                follower, "w", closefd=False
            ) as tty:
                expected = (False, True)
                assert expected == (_wanted(pipe), _wanted(tty))
        finally:
            for fd in (read, write, leader, follower):
                os.close(fd)


class TestLogging:
    """``logging.getLogger("zentrack")``: quiet, one INFO line per cache hit when asked."""

    def test_cache_hits_at_info_only(self, project):
        """Quiet by default; ``-v`` and ``ZENTRACK_LOG=info`` print one line per hit."""
        config = trained(project)
        quiet = zentrack(project, "config", "run", str(config))
        verbose = zentrack(project, "config", "run", str(config), "-v")
        env = zentrack(project, "config", "run", str(config), ZENTRACK_LOG="info")

        expected = ("", 1, 1)
        hit = "zentrack: cache hit for step 'fit' (fingerprint "
        actual = (quiet.stderr, verbose.stderr.count(hit), env.stderr.count(hit))
        assert expected == actual, (verbose.stderr, env.stderr)

    def test_printed_once_with_the_users_logging(self, project):
        """The user's root logger gets the line; zentrack's own handler steps aside."""
        trained(project)
        script = (
            "import logging\n"
            "logging.basicConfig(format='ROOT %(message)s')\n"
            "import train\n"
            "train.training()\n"
        )
        done = python(project, "-c", script, ZENTRACK_LOG="info")
        expected = ["ROOT zentrack: cache hit for step 'fit'"]
        assert expected == [line[:39] for line in done.stderr.splitlines()], done.stderr

    def test_mlmd_leaves_the_root_logger_alone(self, project):
        """Opening the store (MLMD logs through absl) configures no root handler."""
        script = "import logging, train, zentrack as zt\ntrain.training()\nzt.runs()\n"
        script += "print(logging.getLogger().handlers)\n"
        expected = "[]\n"
        assert expected == succeeded(python(project, "-c", script))

    def test_bad_level_is_one_line(self, project):
        """``ZENTRACK_LOG=loud``: the command says which levels exist."""
        done = zentrack(project, "runs", ZENTRACK_LOG="loud")
        expected = (1, "zentrack: $ZENTRACK_LOG='loud' is not a log level; use one of debug, "
                    "info, warning, error.\n")
        assert expected == (done.returncode, done.stderr)
