"""A script that calls its steps when imported is not imported by config commands.

``zentrack config plan`` promises that nothing runs, and ``config set`` only
edits; importing a script whose calls are not under a main guard would run
(and record) them.  Checked on the source, before anything is imported.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.test_everyday import TRAIN, python, succeeded, zentrack
from zentrack._config.import_effects import calls_at_import

UNGUARDED = TRAIN.replace(
    'if __name__ == "__main__":\n    run = training()\n    print(run.config_path)\n',
    "run = training()\nprint(run.config_path)\n",
)


@pytest.fixture
def script_project(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A project whose train.py runs its pipeline at import; (root, config, note log)."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n", encoding="utf-8")
    (root / "train.py").write_text(UNGUARDED, encoding="utf-8")
    log = tmp_path / "ran.log"
    config = Path(succeeded(python(root, "train.py", ZT_TEST_LOG=str(log))).strip())
    return root, config, log


def runs_in(root: Path) -> int:
    return len(json.loads(succeeded(zentrack(root, "runs", "--json"))))


class TestConfigCommandsOnAScript:
    def test_plan_and_run_refuse_naming_the_line_and_run_nothing(self, script_project):
        """One line: file:line, the call, the guard to add; no step ran, no run recorded."""
        root, config, log = script_project
        line = UNGUARDED.splitlines().index("run = training()") + 1

        plan = zentrack(root, "config", "plan", str(config), ZT_TEST_LOG=str(log))
        run = zentrack(root, "config", "run", str(config), ZT_TEST_LOG=str(log))

        message = (
            f"zentrack: {root / 'train.py'}:{line} calls training(...) when the module is "
            "imported"
        )
        expected = (1, True, 1, True, ["fit None 0.1"], 1)
        actual = (
            plan.returncode,
            plan.stderr.startswith(message) and plan.stderr.count("\n") == 1,
            run.returncode,
            '`if __name__ == "__main__":`' in run.stderr,
            log.read_text(encoding="utf-8").splitlines(),
            runs_in(root),
        )
        assert expected == actual, (plan.stderr, run.stderr)

    def test_set_edits_without_running_the_script(self, script_project):
        """``config set`` writes the edit; the script is not imported, so nothing runs."""
        root, config, log = script_project

        done = zentrack(
            root, "config", "set", str(config), "fit.lr", "0.3", "-o", "new.yaml",
            ZT_TEST_LOG=str(log),
        )

        expected = (0, True, ["fit None 0.1"], 1)
        actual = (
            done.returncode,
            "lr: 0.3" in (root / "new.yaml").read_text(encoding="utf-8"),
            log.read_text(encoding="utf-8").splitlines(),
            runs_in(root),
        )
        assert expected == actual, done.stderr


HEAD = (
    "import zentrack as zt\n"
    "@zt.step\nclass Fit:\n    def __init__(self, lr=0.1): ...\n    def run(self, x): ...\n"
    "@zt.step()\ndef make(n=1): ...\n"
    "@zt.pipeline\ndef training(): ...\n"
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('if __name__ == "__main__":\n    training()\n', []),
        ('if "__main__" == __name__:\n    Fit().run(1)\n', []),
        ('if __name__ == "__main__":\n    pass\nelse:\n    training()\n', ["training"]),
        ("training()\n", ["training"]),
        ("for lr in (1, 2):\n    Fit(lr=lr).run(make(2))\n", ["Fit", "make"]),
        ("Fit()(1)\n", ["Fit"]),
        ("PREBUILT = Fit(lr=0.2)\n", []),
        ("x = make.fingerprint(8)\n", []),
        ("def main():\n    training()\n", []),
        ("later = lambda: training()\n", []),
        ("print(len(zt.find(step='make')))\n", []),
    ],
)
def test_calls_at_import(body: str, expected: list[str]) -> None:
    """Which module-level statements would run a step or pipeline of the module."""
    found = calls_at_import(ast.parse(HEAD + body))
    assert expected == [name for _, name in found]
