"""What a user tracks is what is recorded: NumPy scalars, global names, paths.

Each case runs the way a data scientist wrote it: a script in a fresh project
folder, run in its own interpreter, read back through the public API and with
plain ``ml_metadata``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import zentrack as zt
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT, _open_plain


def run_script(project: Path, source: str, *args: str) -> str:
    """Run ``source`` as ``project/script.py`` on the project's own store; return stdout."""
    script = project / "script.py"
    script.write_text(textwrap.dedent(source))
    env = {
        **os.environ,
        "GLOG_minloglevel": "2",
        "ZENTRACK_STORE": str(project / ".zentrack" / "metadata.sqlite"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def plain_properties(store: Path, type_prefix: str) -> list[dict[str, Any]]:
    """Custom properties of every execution whose type starts with ``type_prefix``."""
    plain = _open_plain(store)
    found = []
    for execution_type in plain.get_execution_types():
        if execution_type.name.startswith(type_prefix):
            for execution in plain.get_executions_by_type(execution_type.name):
                props = {}
                for name, value in execution.custom_properties.items():
                    kind = value.WhichOneof("value")
                    props[name] = (kind, getattr(value, kind))
                found.append(props)
    return found


class TestNumpyScalars:
    """NumPy scalars are parameters and metrics, recorded as the Python value."""

    def test_a_linspace_sweep_records_each_test_size(self, tmp_path: Path) -> None:
        """``split(test_size=np.float64)`` records the float, never an empty params dict."""
        out = run_script(
            tmp_path,
            """
            import json
            import numpy as np
            import zentrack as zt

            @zt.step
            def split(data=None, *, test_size=0.25, seed=0):
                zt.log_metrics(acc=np.float64(0.9), n=np.int64(3), ok=np.bool_(True))
                return test_size

            for ts in np.linspace(0.1, 0.3, 3):
                split(test_size=ts, seed=np.int32(7))
            zt.flush()
            records = sorted(zt.find(step="split"), key=lambda r: r.params["test_size"])
            print(json.dumps([
                [r.params, {k: type(v).__name__ for k, v in r.params.items()}, r.metrics,
                 {k: type(v).__name__ for k, v in r.metrics.items()}]
                for r in records
            ]))
            """,
        )
        rows = json.loads(out)
        expected_sizes = [float(v) for v in np.linspace(0.1, 0.3, 3)]
        assert [row[0] for row in rows] == [
            {"data": None, "test_size": ts, "seed": 7} for ts in expected_sizes
        ]
        kinds = {"data": "NoneType", "test_size": "float", "seed": "int"}
        assert all(row[1] == kinds for row in rows)
        assert all(row[2] == {"acc": 0.9, "n": 3, "ok": True} for row in rows)
        assert all(row[3] == {"acc": "float", "n": "int", "ok": "bool"} for row in rows)
        props = plain_properties(tmp_path / ".zentrack" / "metadata.sqlite", "zentrack.step.split")
        assert sorted(p["test_size"][1] for p in props) == pytest.approx(expected_sizes)
        assert {p["test_size"][0] for p in props} == {"double_value"}
        assert {p["seed"] for p in props} == {("int_value", 7)}

    def test_numpy_scalars_fingerprint_like_python_values(self) -> None:
        """The fingerprint of ``np.float64(x)`` is the fingerprint of ``float(x)``."""

        @zt.step
        def fit(data: Any = None, *, lr: float = 0.1, depth: int = 3, flags: Any = None) -> None:
            return None

        assert fit.fingerprint(lr=np.float64(0.5), depth=np.int64(4)) == fit.fingerprint(
            lr=0.5, depth=4
        )
        assert fit.fingerprint(flags=[np.float32(0.1), {"on": np.bool_(False)}]) == (
            fit.fingerprint(flags=[float(np.float32(0.1)), {"on": False}])
        )
        assert fit.fingerprint(lr=np.float64(0.5)) != fit.fingerprint(lr=0.25)

    def test_numpy_inside_containers_is_recorded_as_python(self) -> None:
        """Lists and dicts of NumPy scalars are parameters, each item widened exactly."""

        @zt.step
        def grid(*, sizes: Any = None, opts: Any = None) -> None:
            return None

        grid(sizes=[np.int64(64), np.int16(32)], opts={"dropout": np.float32(0.1)})
        (record,) = zt.find(step="grid")
        assert record.params == {"sizes": [64, 32], "opts": {"dropout": float(np.float32(0.1))}}
        assert [type(v) for v in record.params["sizes"]] == [int, int]
        assert type(record.params["opts"]["dropout"]) is float

    def test_class_step_takes_float32_widened_exactly(self) -> None:
        """A class step given ``np.float32`` keeps the exact widened float."""

        @zt.step
        class Trainer:
            def __init__(self, lr: float = 0.01, units: int = 8, shuffle: bool = True) -> None:
                self.lr = lr

            def run(self, data: Any = None) -> float:
                return self.lr

        trainer = Trainer(lr=np.float32(0.1), units=np.uint8(16), shuffle=np.bool_(False))
        assert trainer.params.lr == float(np.float32(0.1))
        assert type(trainer.params.lr) is float
        assert type(trainer.params.units) is int
        assert trainer.params.shuffle is False
        trainer.run()
        (record,) = zt.find(step="Trainer")
        assert record.params == {"lr": float(np.float32(0.1)), "units": 16, "shuffle": False}

    def test_zentrack_does_not_import_numpy_itself(self, run_python: Any) -> None:
        """Plain Python values never make zentrack import NumPy."""
        done = run_python(
            "import sys, zentrack as zt\n"
            "@zt.step\n"
            "def f(*, a=1.0):\n"
            "    zt.log_metrics(m=0.5)\n"
            "f(a=2.0); zt.flush()\n"
            "print('numpy' in sys.modules)\n",
            env={"ZENTRACK_STORE": ":memory:"},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"


class TestGlobalsNamedLikeLocals:
    """The code digest follows only what the code reads as a global."""

    def test_a_loop_variable_named_like_a_parameter_leaves_the_fingerprint_alone(
        self, tmp_path: Path
    ) -> None:
        """``for i in range(3): train(i, lr=...)`` gives fingerprints another process finds."""
        source = """
            import json, sys
            import zentrack as zt

            @zt.step
            def train(i, *, lr=0.1):
                total = sum(x for x in range(i))
                squares = [j * j for j in range(i)]
                return {"i": i, "total": total, "n": len(squares), "lr": lr}

            class Model:
                @zt.step
                def fit(self, X, *, lr=0.1):
                    df = [X]
                    return len(df)

            if sys.argv[1] == "loop":
                fps = []
                for i in range(3):
                    X = i
                    df = i
                    lr = i
                    train(i, lr=0.1)
                    fps.append(train.fingerprint(i, lr=0.1))
                print(json.dumps(fps))
            else:
                fps = [train.fingerprint(i, lr=0.1) for i in range(3)]
                print(json.dumps([fps, [len(zt.lookup(fp)) for fp in fps]]))
            """
        in_loop = json.loads(run_script(tmp_path, source, "loop"))
        elsewhere, found = json.loads(run_script(tmp_path, source, "fresh"))
        assert in_loop == elsewhere
        assert len(set(in_loop)) == 3
        assert found == [1, 1, 1]


class TestPathInputs:
    """A ``pathlib.Path`` input enters the fingerprint by the content it names."""

    def test_a_file_passed_between_steps_is_never_served_stale(self, tmp_path: Path) -> None:
        """``make(n)`` writes a file and returns its Path; ``use`` reruns when it changed."""
        source = """
            import json, sys
            from pathlib import Path
            import zentrack as zt

            @zt.step
            def make(*, n=1):
                path = Path("data.txt")
                path.write_text("x" * n)
                return path

            @zt.step
            def use(path):
                return len(path.read_text())

            print(json.dumps(use(make(n=int(sys.argv[1])))))
            """
        assert run_script(tmp_path, source, "2").strip() == "2"
        assert run_script(tmp_path, source, "3").strip() == "3"
        assert run_script(tmp_path, source, "2").strip() == "2"
        states = [r.state for r in _records(tmp_path, "use")]
        assert states == ["COMPLETE", "COMPLETE", "CACHED"]

    def test_a_file_changed_between_two_calls_misses(self, tmp_path: Path) -> None:
        """Same Path object, other bytes: the second call runs the body again."""
        calls: list[str] = []

        @zt.step
        def count_lines(path: Path) -> int:
            calls.append(path.read_text())
            return len(path.read_text().splitlines())

        data = tmp_path / "rows.csv"
        data.write_text("a\nb\n")
        first = count_lines.fingerprint(data)
        assert count_lines(data) == 2
        assert count_lines(data) == 2
        data.write_text("a\nb\nc\n")
        assert count_lines.fingerprint(data) != first
        assert count_lines(data) == 3
        assert calls == ["a\nb\n", "a\nb\nc\n"]

    def test_a_folder_is_fingerprinted_by_its_files(self, tmp_path: Path) -> None:
        """Adding, changing or renaming a file under a folder changes the fingerprint."""

        @zt.step
        def train(folder: Path) -> None:
            return None

        folder = tmp_path / "images"
        (folder / "sub").mkdir(parents=True)
        (folder / "a.png").write_bytes(b"1")
        (folder / "sub" / "b.png").write_bytes(b"2")
        seen = {train.fingerprint(folder)}
        (folder / "sub" / "b.png").write_bytes(b"3")
        seen.add(train.fingerprint(folder))
        (folder / "sub" / "b.png").rename(folder / "sub" / "c.png")
        seen.add(train.fingerprint(folder))
        (folder / "d.png").write_bytes(b"")
        seen.add(train.fingerprint(folder))
        assert len(seen) == 4
        # The same content elsewhere is the same input: a copied data set hits the cache.
        copy = tmp_path / "copy"
        (copy / "sub").mkdir(parents=True)
        for item in folder.rglob("*"):
            if item.is_file():
                (copy / item.relative_to(folder)).write_bytes(item.read_bytes())
        assert train.fingerprint(copy) == train.fingerprint(folder)

    def test_a_missing_path_is_an_input_of_its_own(self, tmp_path: Path) -> None:
        """A path that does not exist yet fingerprints as missing, then by content."""

        @zt.step
        def load(path: Path) -> None:
            return None

        target = tmp_path / "later.txt"
        missing = load.fingerprint(target)
        target.write_text("now")
        assert load.fingerprint(target) != missing


def _records(project: Path, step: str) -> list[Any]:
    """Records of ``step`` in the project's store, oldest first."""
    zt.init(project / ".zentrack" / "metadata.sqlite")
    return sorted(zt.find(step=step), key=lambda r: r.execution_id)


def readme_python_blocks() -> list[str]:
    """The README's Python code blocks, in order, exactly as a user would paste them."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = []
    for part in text.split("```python\n")[1:]:
        blocks.append(part.split("```", 1)[0])
    return blocks


def readme_bash_blocks() -> list[str]:
    """The README's bash code blocks, in order, exactly as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [part.split("```", 1)[0] for part in text.split("```bash\n")[1:]]


def shell(project: Path, block: str, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run a bash block in ``project`` as a user would paste it, ``zentrack`` on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENTRACK_")}
    env.update(
        GLOG_minloglevel="2",
        PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    )
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT * 4,
    )


class TestReadmeBlocks:
    """Every README code block runs as pasted: the Python as ``train.py``, then the shell."""

    @pytest.fixture
    def bin_dir(self, tmp_path: Path) -> Path:
        """A ``zentrack`` command for this interpreter and checkout, as ``pip install`` makes."""
        folder = tmp_path / "bin"
        folder.mkdir()
        command = folder / "zentrack"
        command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m zentrack "$@"\n')
        command.chmod(0o755)
        python = folder / "python"
        python.symlink_to(sys.executable)
        return folder

    def test_install_block_is_what_ci_runs(self, tmp_path: Path, bin_dir: Path) -> None:
        """The first block: CI runs its test line as written; its demo runs in a new folder."""
        [install, *_] = readme_bash_blocks()
        commands = [line.split("#", 1)[0].strip() for line in install.splitlines()]
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        demo = shell(tmp_path, commands[0].split("&&", 1)[1], bin_dir)
        expected = (True, "pip install . && zentrack demo", 0)
        assert expected == (commands[1] in ci, commands[0], demo.returncode), demo.stderr

    def test_python_then_the_shell_session(self, tmp_path: Path, bin_dir: Path) -> None:
        """``python train.py`` with the Python blocks, then each later bash block: exit 0."""
        project = tmp_path / "project"
        project.mkdir()
        (project / "pyproject.toml").write_text("[project]\nname = 'readme'\n")
        (project / "train.py").write_text("\n".join(readme_python_blocks()))
        blocks = ["python train.py", *readme_bash_blocks()[1:]]
        results = [shell(project, block, bin_dir) for block in blocks]
        expected = [(0, "")] * len(blocks)
        actual = [(done.returncode, done.stderr) for done in results]
        assert expected == actual, [done.stderr for done in results]
        assert len(blocks) >= 2


class TestReadmeFlow:
    """The README's examples, pasted into one script, make exactly the runs they describe."""

    def test_pasted_as_one_script_makes_two_runs_and_keeps_history(
        self, tmp_path: Path
    ) -> None:
        """One run from ``training()``, one from ``cfg.run()``; the first run's config stays."""
        blocks = readme_python_blocks()
        # Right after the block that runs ``training()``, note that run (later
        # blocks may rebind ``run``); its config is read at the very end.
        snapshot = "_first = (run.id, str(run.config_path))\n"
        script = "\n".join(b + snapshot if "run = training()" in b else b for b in blocks)
        script += textwrap.dedent(
            """
            import json as _json
            print("RESULT", _json.dumps({
                "first": _first[0],
                "first_config": _first[1],
                "first_text": open(_first[1]).read(),
            }))
            """
        )
        out = run_script(tmp_path, script)
        result = json.loads(out.split("RESULT ", 1)[1])
        zt.init(tmp_path / ".zentrack" / "metadata.sqlite")
        runs = zt.runs(pipeline="training")
        assert len(runs) == 2, [r.id for r in runs]
        (first,) = [r for r in runs if r.id == result["first"]]
        (newest,) = [r for r in runs if r.id != result["first"]]
        assert {k: r.params for k, r in first.keyed_steps().items()}["trainer"]["lr"] == 0.1
        assert {k: r.params for k, r in newest.keyed_steps().items()}["trainer"]["lr"] == 0.02
        # The config the first run wrote still says what ran.
        assert first.config_path is not None
        assert str(first.config_path) == result["first_config"]
        assert "lr: 0.1" in result["first_text"]
        assert zt.load_config(first.config_path).steps["trainer"].plain_args()["lr"] == 0.1

    def test_saving_over_a_recorded_runs_config_is_refused(self) -> None:
        """``cfg.save(run.config_path)`` would rewrite history: a ConfigError says where to save."""
        from tests import pipelines_for_tests as pft

        run = pft.training()
        before = Path(run.config_path).read_text()
        cfg = zt.load_config(run.config_path)
        key = next(iter(cfg.steps))
        arg = next(iter(cfg.steps[key].args))
        cfg.steps[key].args[arg] = cfg.steps[key].args[arg]
        with pytest.raises(zt.exceptions.ConfigError) as info:
            cfg.save(run.config_path)
        message = str(info.value)
        assert str(run.config_path) in message and run.id in message
        assert "new file" in message
        assert Path(run.config_path).read_text() == before


class TestWhyWithDataInputs:
    """``zentrack why`` explains steps whose data inputs cannot be typed on a command line."""

    def test_inputs_come_from_the_latest_recorded_call(self, tmp_path: Path) -> None:
        """``why mod:fit n=2`` compares with the latest call, taking its inputs."""
        (tmp_path / "steps_mod.py").write_text(
            textwrap.dedent(
                """
                import zentrack as zt

                @zt.step
                def fit(train, *, n=1, lr=0.5):
                    return len(train) * n

                @zt.step
                class Model:
                    def __init__(self, depth=3):
                        self.depth = depth

                    def run(self, X, y):
                        return self.depth
                """
            )
        )
        run_script(
            tmp_path,
            """
            import numpy as np
            from steps_mod import fit, Model
            fit(np.arange(5), n=1)
            Model(depth=3).run(np.ones(3), np.zeros(3))
            """,
        )
        env = {
            **os.environ,
            "GLOG_minloglevel": "2",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        }
        store = str(tmp_path / ".zentrack" / "metadata.sqlite")

        def why(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "zentrack", "--store", store, "why", *args],
                cwd=tmp_path, env=env, capture_output=True, text=True,
                timeout=SUBPROCESS_TIMEOUT,
            )

        changed = why("steps_mod:fit", "n=2")
        assert changed.returncode == 0, changed.stderr
        assert "cache miss" in changed.stdout
        assert "param n changed: 1 -> 2" in changed.stdout
        assert "train" in changed.stdout and "latest recorded call" in changed.stdout
        same = why("steps_mod:fit", "n=1")
        assert same.returncode == 0, same.stderr
        assert "cache hit" in same.stdout
        deeper = why("steps_mod:Model", "depth=4")
        assert deeper.returncode == 0, deeper.stderr
        assert "param depth changed: 3 -> 4" in deeper.stdout
        assert "config plan" in changed.stdout


class TestPipelineArgEdits:
    """An edited pipeline arg reaches the steps it feeds; an edited step arg wins for its step."""

    @staticmethod
    def rerun(edits: dict[str, Any], tmp_path: Path) -> tuple[Any, Any]:
        from tests import pipelines_for_tests as pft

        first = pft.training()
        cfg = zt.load_config(first.config_path)
        for dotted, value in edits.items():
            cfg.set(dotted, value)
        cfg.save(tmp_path / "tuned.yaml")
        return first, cfg

    @staticmethod
    def params(run: Any) -> dict[str, Any]:
        return {key: r.params for key, r in zt.get_run(run.id).keyed_steps().items()}

    def test_an_edited_pipeline_arg_reaches_the_steps_it_feeds(self, tmp_path: Path) -> None:
        """``pipeline.lr`` and ``pipeline.n`` edited: the class and function steps get them."""
        _, cfg = self.rerun({"pipeline.lr": 0.03, "pipeline.n": 2}, tmp_path)
        second = cfg.run()
        params = self.params(second)
        assert (second.params, params["trainer"]["lr"], params["load_data"]["n"]) == (
            {"n": 2, "lr": 0.03},
            0.03,
            2,
        )
        assert params["trainer"]["batch_size"] == 2  # unedited args stay as recorded

    def test_an_edited_step_arg_wins_for_its_step(self, tmp_path: Path) -> None:
        """``trainer.lr`` edited alone: the trainer gets it, the pipeline's lr is unchanged."""
        _, cfg = self.rerun({"trainer.lr": 0.02}, tmp_path)
        second = cfg.run()
        assert (second.params["lr"], self.params(second)["trainer"]["lr"]) == (0.01, 0.02)

    def test_both_edited_to_different_values_is_an_error_naming_both_lines(
        self, tmp_path: Path
    ) -> None:
        """``pipeline.lr`` 0.03 and ``trainer.lr`` 0.02: a ConfigError with both lines."""
        _, cfg = self.rerun({"pipeline.lr": 0.03, "trainer.lr": 0.02}, tmp_path)
        text = (tmp_path / "tuned.yaml").read_text().splitlines()
        step_line = next(i for i, line in enumerate(text, 1) if "lr: 0.02" in line)
        pipeline_line = next(i for i, line in enumerate(text, 1) if "lr: 0.03" in line)
        with pytest.raises(zt.exceptions.ConfigError) as info:
            cfg.run()
        message = str(info.value)
        assert f"tuned.yaml:{step_line}:" in message
        assert f"tuned.yaml:{pipeline_line})" in message
        assert "'trainer'" in message and "0.02" in message and "0.03" in message

    def test_both_edited_alike_is_fine(self, tmp_path: Path) -> None:
        """Editing the pipeline arg and the step arg it feeds to the same value runs."""
        _, cfg = self.rerun({"pipeline.lr": 0.03, "trainer.lr": 0.03}, tmp_path)
        assert self.params(cfg.run())["trainer"]["lr"] == 0.03

    def test_rerun_set_pipeline_arg_from_the_cli(self, store_path: Path) -> None:
        """``zentrack rerun RUN --set pipeline.lr=0.03`` runs the trainer with 0.03."""
        from tests import pipelines_for_tests as pft

        first = pft.training()
        zt.flush()
        done = subprocess.run(
            [sys.executable, "-m", "zentrack", "--store", str(store_path), "rerun", first.id,
             "--set", "pipeline.lr=0.03"],
            cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT,
            env={**os.environ, "GLOG_minloglevel": "2"},
        )
        assert done.returncode == 0, done.stderr
        newest = zt.runs(pipeline="training")[0]
        assert newest.id != first.id
        assert self.params(newest)["trainer"]["lr"] == 0.03
