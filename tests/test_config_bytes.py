"""Config edits keep every byte they do not change (issue 15).

Each reproduction of issue 15 is one row of a table: the file as written, one
edit through the public API, and the file expected after ``Config.save()``
byte for byte (or the ``ConfigError`` expected, naming ``file:line``).  The
generated corpus in :mod:`tests.yaml_corpus` then crosses every value style
with hostile values and every kind of edit, read back by a YAML 1.2 reader
(ruamel's safe loader) and a YAML 1.1 one (PyYAML).

Only ``zentrack.load_config``, ``Config.set``/``Config.save``, the
``steps``/``pipeline_args`` mappings, ``ConfigError`` and the command line
are used, so the tests do not depend on how the config package is laid out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import zentrack as zt
from tests import yaml_corpus
from tests.conftest import ROOT, SUBPROCESS_TIMEOUT
from zentrack.exceptions import ConfigError

#: A config with one step ``t`` whose args follow (each line indented 6 spaces).
HEAD = "pipeline:\n  source: a.pipe\nsteps:\n  t:\n    source: a.T\n    args:\n"

Edit = Callable[[Any], Any]


def doc(args: str, head: str = HEAD) -> str:
    """A config text: ``head`` then the step's args block ``args``."""
    return head + args


def args_of(config: Any) -> Any:
    """The live args mapping of step ``t``."""
    return config.steps["t"].args


def put(key: str, value: Any) -> Edit:
    """An edit assigning ``args[key] = value`` (ruamel keeps a quoted string's style)."""
    return lambda config: args_of(config).__setitem__(key, value)


def move_to_end(key: str, *inside: str) -> Edit:
    """An edit moving ``key`` of the args (or of the mapping arg ``inside``) to the end."""

    def edit(config: Any) -> None:
        mapping = args_of(config)
        for name in inside:
            mapping = mapping[name]
        mapping[key] = mapping.pop(key)

    return edit


def no_edit(config: Any) -> None:
    """Load and save only."""


def save_text(path: Path, original: str, edit: Edit) -> str:
    """Write ``original`` (bytes as given), load, edit, save; return the file's text."""
    path.write_bytes(original.encode("utf-8"))
    config = zt.load_config(path)
    edit(config)
    config.save()
    return path.read_bytes().decode("utf-8")


#: Anchors on a scalar and on a mapping, an alias, odd spacing and comments.
ANCHORED = "      lr: &lr 0.01   # rate\n      opt: &o\n        name:  adam  # c\n      b:   *lr\n"

#: The end of a multi-line flow mapping, a comment on each line.
FLOW_REST = "        lr: 0.01,  # rate\n      }\n"

#: (original text, edit, expected text): one row per reproduction of issue 15.
EDITS = [
    # 1. Comments survive an edit the patcher used to hand to a block rewrite.
    pytest.param(
        doc("      opt: {\n        name: 'adam',  # optimizer\n" + FLOW_REST),
        lambda c: args_of(c)["opt"].__setitem__("name", "a\nb"),
        doc('      opt: {\n        name: "a\\nb",  # optimizer\n' + FLOW_REST),
        id="1-multiline-flow-map-keeps-comments",
    ),
    pytest.param(
        doc("      grid:\n        - [1, 2]  # row 1\n        -   # todo\n        - 3  # last\n"),
        lambda c: args_of(c)["grid"].append(4),
        doc(
            "      grid:\n        - [1, 2]  # row 1\n        -   # todo\n        - 3  # last\n"
            "        - 4\n"
        ),
        id="1-append-after-an-empty-item-keeps-comments",
    ),
    pytest.param(
        doc("      layers:  # sizes\n        # first\n        - 64\n      x: 1\n"),
        put("layers", 128),
        doc("      layers: 128  # sizes\n        # first\n      x: 1\n"),
        id="1-block-list-to-scalar-keeps-the-comments-at-its-key",
    ),
    # 2. Anchors are patched around, not a reason to rewrite the whole file.
    pytest.param(
        doc(ANCHORED),
        no_edit,
        doc(ANCHORED),
        id="2-anchors-no-edit",
    ),
    pytest.param(
        doc("      lr: &lr 0.01   # rate\n      opt: &o\n        name:  adam  # c\n      x:   1\n"),
        put("x", 2),
        doc("      lr: &lr 0.01   # rate\n      opt: &o\n        name:  adam  # c\n      x:   2\n"),
        id="2-anchors-edit-elsewhere",
    ),
    pytest.param(
        doc("      a: &x 0.5  # A\n      b: *x  # B\n      c:  *x\n"),
        put("a", 0.25),
        doc("      a: 0.25  # A\n      b: &x 0.5  # B\n      c:  *x\n"),
        id="2-edited-anchor-moves-to-its-first-alias",
    ),
    pytest.param(
        doc("      a: &x 0.5  # A\n      b: *x  # B\n      c:  *x\n"),
        put("b", 0.3),
        doc("      a: &x 0.5  # A\n      b: 0.3  # B\n      c:  *x\n"),
        id="2-edited-alias-changes-that-place-only",
    ),
    pytest.param(
        doc("      a: &x 0.5  # A\n      b: *x  # B\n      c:  *x\n"),
        lambda c: args_of(c).pop("a"),
        doc("      b: &x 0.5  # B\n      c:  *x\n"),
        id="2-deleted-anchor-moves-to-its-first-alias",
    ),
    # 3. Strings ruamel typed on load go through zentrack's quoting; untouched
    #    values read the same in YAML 1.1 after the save.
    *(
        pytest.param(
            doc("      a: &x foo\n      b: *x\n"),
            put("a", value),
            doc(f"      a: '{value}'\n      b: &x foo\n"),
            id=f"3-anchored-string-set-to-{value}",
        )
        for value in ("yes", "on", "off", "no", "12:30")
    ),
    pytest.param(
        doc("      a: &x 1\n      b: *x\n      flags: [on, off]\n      y: yes\n"),
        put("a", "yes"),
        doc("      a: 'yes'\n      b: &x 1\n      flags: [on, off]\n      y: yes\n"),
        id="3-untouched-values-keep-their-yaml-1.1-reading",
    ),
    # 4. Valid input never ends in "please report this as a zentrack bug".
    *(
        pytest.param(
            doc("      s: 'x'  # c\n"),
            lambda c, value=value: c.set("t.s", value),
            doc(f'      s: "{escaped}"  # c\n'),
            id=f"4-{name}-set-into-a-single-quoted-string",
        )
        for name, value, escaped in (
            ("NEL", "a\x85b", "a\\Nb"),
            ("LS", "a\u2028b", "a\\Lb"),
            ("PS", "a\u2029b", "a\\Pb"),
            ("newline", "a\nb", "a\\nb"),
        )
    ),
    pytest.param(
        doc("      s: 'x'\n"),
        put("s", "a\x85b"),
        doc('      s: "a\\Nb"\n'),
        id="4-NEL-assigned-over-a-single-quoted-string",
    ),
    pytest.param(
        doc("      ? lr  # explicit\n      : 0.01\n"),
        put("z", 1),
        doc("      ? lr  # explicit\n      : 0.01\n      z: 1\n"),
        id="4-key-added-beside-an-explicit-key",
    ),
    # 5. A reorder is written.
    pytest.param(
        doc("      a: 1  # A\n      b: 2  # B\n"),
        move_to_end("a"),
        doc("      b: 2  # B\n      a: 1  # A\n"),
        id="5-block-keys-reordered",
    ),
    pytest.param(
        doc("      opt:\n        # about x\n        x: 1\n        y: 2\n      z: 3\n"),
        move_to_end("x", "opt"),
        doc("      opt:\n        y: 2\n        # about x\n        x: 1\n      z: 3\n"),
        id="5-reordered-key-takes-the-comment-above-it",
    ),
    pytest.param(
        HEAD.replace("    args:\n", "    args: {a: 1, b: 2}  # flow\n"),
        move_to_end("a"),
        HEAD.replace("    args:\n", "    args: {b: 2, a: 1}  # flow\n"),
        id="5-flow-keys-reordered",
    ),
    # 6. Each line keeps its own line ending.
    pytest.param(
        doc("      x: 1\n      y: 2\n").replace("pipeline:\n", "pipeline:\r\n"),
        put("x", 5),
        doc("      x: 5\n      y: 2\n").replace("pipeline:\n", "pipeline:\r\n"),
        id="6-one-crlf-line-edit",
    ),
    pytest.param(
        doc("      x: 1\n").replace("pipeline:\n", "pipeline:\r\n"),
        no_edit,
        doc("      x: 1\n").replace("pipeline:\n", "pipeline:\r\n"),
        id="6-one-crlf-line-no-edit",
    ),
    pytest.param(
        doc("      xs:\n        - 1\n").replace("steps:\n", "steps:\r\n"),
        lambda c: args_of(c)["xs"].append(2),
        doc("      xs:\n        - 1\n        - 2\n").replace("steps:\n", "steps:\r\n"),
        id="6-one-crlf-line-append",
    ),
    pytest.param(
        doc("      x: 1  # one\n").replace("\n", "\r\n"),
        put("z", [1, 2]),
        doc("      x: 1  # one\n      z: [1, 2]\n").replace("\n", "\r\n"),
        id="6-crlf-file-added-line-is-crlf",
    ),
    # 8. A key without a value in a flow mapping is set where it stands.
    pytest.param(
        doc("      m: {a: yes, b}  # m\n"),
        lambda c: args_of(c)["m"].__setitem__("b", 2),
        doc("      m: {a: yes, b: 2}  # m\n"),
        id="8-flow-key-without-colon-set",
    ),
]

#: (original text, edit, fragments of the ConfigError save must raise).
REFUSED_EDITS = [
    pytest.param(
        doc("      x: 0\n      n: 1\n"),
        put("n", 10**5000),
        [":8:", "'n'", "4300"],
        id="4-int-too-long-for-yaml-readers",
    ),
]

#: (original text, fragments of the ConfigError loading must raise).
REFUSED_LOADS = [
    pytest.param(
        doc("      x: 0\n      m: {a: 1, b, c:, }\n"),
        [":8:", "c:"],
        id="8-plain-key-ending-in-a-colon-in-a-flow-mapping",
    ),
    pytest.param(
        doc("      x: 0\n      n: " + "1" * 5000 + "\n"),
        [":8:", "4300"],
        id="4-int-too-long-to-read-names-its-line",
    ),
]


class TestSave:
    @pytest.mark.parametrize(("original", "edit", "expected"), EDITS)
    def test_edit_changes_only_its_bytes(self, tmp_path, original, edit, expected):
        """Comments, anchors, spacing and line endings outside the edit stay byte-identical."""
        assert expected == save_text(tmp_path / "c.yaml", original, edit)

    @pytest.mark.parametrize(("original", "edit", "fragments"), REFUSED_EDITS)
    def test_edit_that_cannot_be_kept_is_refused_at_its_line(
        self, tmp_path, original, edit, fragments
    ):
        """The error names the file, the line and why; the file stays as it was."""
        path = tmp_path / "c.yaml"
        with pytest.raises(ConfigError) as info:
            save_text(path, original, edit)

        message = str(info.value)
        expected = [True] * (len(fragments) + 2)
        actual = [fragment in message for fragment in [str(path), *fragments]]
        actual.append(original == path.read_text(encoding="utf-8"))
        assert expected == actual, message

    @pytest.mark.parametrize(("original", "fragments"), REFUSED_LOADS)
    def test_document_that_cannot_be_edited_safely_is_refused_at_load(
        self, tmp_path, original, fragments
    ):
        """Refused with file:line rather than misread."""
        path = tmp_path / "c.yaml"
        path.write_text(original, encoding="utf-8")

        with pytest.raises(ConfigError) as info:
            zt.load_config(path)

        message = str(info.value)
        expected = [True] * (len(fragments) + 1)
        assert expected == [f in message for f in [str(path), *fragments]], message


def zentrack_cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zentrack --store STORE ARGS`` with this worktree's zentrack."""
    env = {**os.environ, "GLOG_minloglevel": "2"}
    env.pop("ZENTRACK_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "zentrack", "--store", str(store), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


class TestConfigSetCommand:
    @pytest.mark.parametrize(
        ("typed", "written"),
        [("-1e-3", "-0.001"), ("-.inf", "-.inf"), ("-5", "-5"), ("-x", "'-x'")],
    )
    def test_value_starting_with_a_dash(self, tmp_path, store_path, typed, written):
        """``zentrack config set FILE KEY -1e-3`` sets the value; nothing else changes."""
        path = tmp_path / "c.yaml"
        path.write_text(doc("      x: 1  # one\n"), encoding="utf-8")

        process = zentrack_cli(store_path, "config", "set", str(path), "t.x", typed)

        expected = (0, "", doc(f"      x: {written}  # one\n"))
        assert expected == (process.returncode, process.stderr, path.read_text())

    def test_help_documents_the_value_syntax(self, store_path):
        """``zentrack config --help`` says VALUE is YAML and may start with '-'."""
        process = zentrack_cli(store_path, "config", "--help")

        expected = (0, True, True, True)
        out = process.stdout
        assert expected == (process.returncode, "VALUE" in out, "YAML" in out, "-1e-3" in out), out


class TestGeneratedCorpus:
    def test_edits_keep_bytes_comments_and_values(self, tmp_path, capsys):
        """Every value style x hostile values x every edit kind, both YAML readers as oracles.

        At most 1% of cases may change a byte outside the edited region; none
        may lose a comment, change a value for either reader, or fail with
        anything but a ConfigError naming the file and what cannot be kept.
        """
        started, cpu = time.perf_counter(), time.process_time()
        cases = yaml_corpus.cases()
        results = [yaml_corpus.check(case, tmp_path / "corpus.yaml") for case in cases]
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        report = yaml_corpus.summary(cases, results, elapsed, cpu)
        with capsys.disabled():
            print("\n" + report)

        counts = yaml_corpus.failure_counts(results)
        expected = {"bytes-ok": True, "comments": 0, "values": 0, "errors": 0}
        actual = {
            "bytes-ok": counts["bytes"] <= len(cases) // 100,
            "comments": counts["comments"],
            "values": counts["values"],
            "errors": counts["errors"],
        }
        assert expected == actual, report
