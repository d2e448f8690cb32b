"""Tests for zentrack._config: the YAML configs of pipeline runs."""

from __future__ import annotations

import datetime
import importlib
import inspect
import logging
import math
import stat
import tempfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from ruamel.yaml import YAML

import zentrack as zt
from tests.strategies import param_mappings, tracked_values, typed
from zentrack._config.model import (
    MISSING,
    Config,
    StepConfig,
    diff_configs,
    load_config,
    validate_against,
)
from zentrack._config.run_config import write_run_config
from zentrack._config.validate import parse_value
from zentrack._config.yaml_io import to_plain
from zentrack._step.params import Signature
from zentrack._step.values import is_tracked
from zentrack.exceptions import ConfigError

CONFIGS = Path(__file__).parent / "configs"
USER_EDITED = CONFIGS / "user_edited.yaml"
HERE = __name__  # "tests.test_config": the module part of the sources below


# --------------------------------------------------------------------------- helpers


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    """Write ``text`` to a file in ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    """Return the message of the ConfigError that loading ``path`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def as_lists(value: Any) -> Any:
    """``value`` with tuples turned into lists, as a config holds it."""
    if isinstance(value, (list, tuple)):
        return [as_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: as_lists(item) for key, item in value.items()}
    return value


def minimal(args: str = "{}") -> str:
    """A valid config text with one step whose args are ``args``."""
    return f"pipeline:\n  source: a.pipe\nsteps:\n  t:\n    source: a.T\n    args: {args}\n"


def one_arg(value_text: str) -> str:
    """A valid config text whose one step has one arg ``x`` spelled ``value_text``."""
    return minimal("\n      x: " + value_text)


def resolve(source: str) -> Any:
    """Import what a source names, as a real runner would."""
    module, _, name = source.rpartition(".")
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------- steps for validate_against


@zt.step(name="trainer")
class Trainer:
    """A class step: its ``__init__`` keyword arguments are the parameters."""

    def __init__(
        self,
        batch_size: int = 1,
        lr: float = 0.01,
        hidden_layers: list[int] | None = None,
        name: str = "t",
        verbose: bool = False,
        layers: tuple[int, ...] = (8, 8),
        options: dict[str, Any] | None = None,
    ) -> None:
        self.lr = lr

    def run(self, data: Any) -> Any:
        return data


@zt.step
def evaluate(data: Any, *, threshold: float = 0.5, metric: str = "f1", **extra: Any) -> float:
    """A function step that takes extra keyword arguments."""
    return 0.0


@zt.step(params=["lr"])
def tune(data: Any, lr: float = 0.1, table: Any = None) -> None:
    """A function step that declares its parameters: ``table`` is an input."""


def plain_function(lr: float = 0.1) -> None:
    """Neither a step nor a pipeline."""


class FakePipelineSpec:
    """Stands in for zentrack's PipelineSpec: only ``.signature`` is read."""

    def __init__(self, fn: Any) -> None:
        self.signature = Signature(inspect.signature(fn))


def training(lr: float = 0.01, epochs: int = 2) -> None:
    """The pipeline function the configs below name."""


training.__zentrack_pipeline__ = FakePipelineSpec(training)  # type: ignore[attr-defined]

VALID = f"""\
pipeline:
  source: {HERE}.training
  args:
    lr: 0.02
steps:
  trainer:
    args:
      hidden_layers: [64, 64]
      verbose: false
      name: null
    source: {HERE}.Trainer
  trainer#2:
    args: {{lr: 0.5, layers: [4]}}
    source: {HERE}.Trainer
  evaluate:
    args:
      threshold: 0.7
      extra: {{anything: [1, 2]}}
    source: {HERE}.evaluate
  tune:
    args: {{lr: 0.2}}
    source: {HERE}.tune
"""


#: A config with odd spellings, comments and both styles, for structural edits.
STRUCTURAL = f"""\
# odd spellings on purpose: +12, 1_0.0, 0x1F, .5, 1e-07
pipeline:
  source: {HERE}.training   # the pipeline
  args: {{lr: 1e-07, epochs: +12}}
steps:
  trainer:
    args:
      batch_size: 0x1F       # hex
      hidden_layers:
        - 64
        - 32
      lr: .5
      options:
        momentum: 1_0.0      # underscores
        nesterov: true
      layers: [8,  8]        # two spaces
    source: {HERE}.Trainer
  evaluate:
    args: {{threshold: .5, extra: {{beta: +12, gamma: 1_0.0}}}}   # flow
    source: {HERE}.evaluate
# end
"""


# --------------------------------------------------------------------------- tests


class TestLoadConfig:
    def test_reads_the_seed_shape(self, tmp_path):
        """Pipeline source, run id, pipeline args and steps in file order are read."""
        path = write(
            tmp_path,
            "pipeline:\n"
            "  source: mypackage.pipelines.training\n"
            "  run_id: 3f2a\n"
            "  args:\n"
            "    lr: 0.01\n"
            "  zentrack: 0.1.0\n"
            "  fingerprint_scheme: 1\n"
            "steps:\n"
            "  trainer:\n"
            "    args:\n"
            "      batch_size: 1\n"
            "      hidden_layers: null\n"
            "      lr: 0.001\n"
            "    source: mypackage.steps.TrainerStep\n"
            "  evaluate:\n"
            "    source: mypackage.steps.evaluate\n"
            "    args: {}\n",
        )

        config = load_config(path)

        expected = {
            "path": path,
            "pipeline_source": "mypackage.pipelines.training",
            "run_id": "3f2a",
            "pipeline_args": {"lr": 0.01},
            "meta": {"zentrack": "0.1.0", "fingerprint_scheme": 1},
            "steps": {
                "trainer": (
                    "mypackage.steps.TrainerStep",
                    {"batch_size": 1, "hidden_layers": None, "lr": 0.001},
                ),
                "evaluate": ("mypackage.steps.evaluate", {}),
            },
        }
        actual = {
            "path": config.path,
            "pipeline_source": config.pipeline_source,
            "run_id": config.run_id,
            "pipeline_args": config.plain_pipeline_args(),
            "meta": config.meta,
            "steps": {key: (s.source, s.plain_args()) for key, s in config.steps.items()},
        }
        assert expected == actual
        assert list(expected["steps"]) == list(config.steps)  # file order

    def test_returns_a_config_of_step_configs(self, tmp_path):
        """``Config`` and ``StepConfig`` are the types a load produces."""
        config = load_config(write(tmp_path, minimal()))

        assert (Config, StepConfig) == (type(config), type(config.steps["t"]))

    def test_run_id_and_pipeline_args_are_optional(self, tmp_path):
        """A hand-written config may leave out the run id and the pipeline's args."""
        config = load_config(write(tmp_path, minimal()))

        expected = (None, {})
        assert expected == (config.run_id, config.plain_pipeline_args())

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1", 1),
            ("1.0", 1.0),
            ("1e-07", 1e-07),
            ("1.0e-07", 1e-07),
            ("1E+16", 1e16),
            (".5", 0.5),
            ("-0.0", -0.0),
            ("0x20", 32),
            ("1_000", 1000),
            ("123456789012345678901234567890", 123456789012345678901234567890),
            ("true", True),
            ("False", False),
            ("null", None),
            ("~", None),
            ("''", ""),
            ("'1'", "1"),
            ('"true"', "true"),
            ("'null'", "null"),
            ("'2020-01-01'", "2020-01-01"),
            ("yes", "yes"),
            ("[1, 1.0, true, null, 'x']", [1, 1.0, True, None, "x"]),
            ("{a: [1, {b: 2.5}]}", {"a": [1, {"b": 2.5}]}),
        ],
    )
    def test_values_load_with_exact_types(self, tmp_path, text, expected):
        """Numbers, bools, null and quoted strings keep their YAML 1.2 types exactly."""
        config = load_config(write(tmp_path, one_arg(text)))

        assert typed(expected) == typed(config.steps["t"].plain_args()["x"])

    @pytest.mark.parametrize(("text", "is_nan"), [(".nan", True), (".NaN", True), (".inf", False)])
    def test_nan_and_infinities_load_as_floats(self, tmp_path, text, is_nan):
        """``.nan`` and ``.inf`` are floats, as the tracked types allow."""
        value = load_config(write(tmp_path, one_arg(text))).steps["t"].plain_args()["x"]

        assert (float, is_nan) == (type(value), math.isnan(value))

    def test_missing_file(self, tmp_path):
        """A path with no file is a ConfigError naming it."""
        path = tmp_path / "nope.yaml"

        expected = f"{path}:1:1: no such config file; check the path (a pipeline run writes one)"
        assert expected == load_error(path)

    def test_directory(self, tmp_path):
        """A directory is refused with the fix of naming the file in it."""
        expected = (
            f"{tmp_path}:1:1: this is a directory, not a config file; name the YAML file in it"
        )
        assert expected == load_error(tmp_path)

    def test_not_utf8(self, tmp_path):
        """Bytes that are not UTF-8 are refused at their position."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes(b"pipeline:\n  source: caf\xe9\n")

        expected = f"{path}:2:14: the byte b'\\xe9' is not UTF-8; save the file as UTF-8"
        assert expected == load_error(path)

    def test_syntax_error_names_the_position(self, tmp_path):
        """A YAML syntax error reports ruamel's problem at its line and column."""
        path = write(tmp_path, "pipeline:\n  source: a.b\n steps: {}\n")

        expected = (
            f"{path}:3:2: invalid YAML (while parsing a block mapping: expected <block end>, "
            "but found '<block mapping start>'); fix the YAML syntax (often the indentation) "
            "at or just before this position"
        )
        assert expected == load_error(path)

    def test_second_document(self, tmp_path):
        """A config is one document; a second one is refused where it starts."""
        path = write(tmp_path, minimal() + "---\nx: 1\n")

        message = load_error(path)

        assert f"{path}:7:1: invalid YAML (" == message[: len(f"{path}:7:1: invalid YAML (")]
        assert message.endswith("so remove the second '---' and what follows")

    def test_control_character(self, tmp_path):
        """A raw control character is refused with the escape to write instead."""
        path = write(tmp_path, "pipeline:\n  source: a\x01b\nsteps: {}\n")

        expected = (
            f"{path}:2:12: the character U+0001 is not allowed in YAML; remove it, or write it "
            'as the escape "\\u0001" inside a double-quoted string'
        )
        assert expected == load_error(path)

    @pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
    def test_empty_file(self, tmp_path, text):
        """An empty file (or one with only comments) says what a config needs."""
        path = write(tmp_path, text)

        expected = (
            f"{path}:1:1: the config is empty; it needs `pipeline:` (with a source) and `steps:`"
        )
        assert expected == load_error(path)

    @pytest.mark.parametrize(("text", "kind"), [("- 1\n- 2\n", "a list"), ("hi\n", "a string")])
    def test_top_level_not_a_mapping(self, tmp_path, text, kind):
        """The top level must be a mapping."""
        path = write(tmp_path, text)

        expected = (
            f"{path}:1:1: the top level is {kind}, not a mapping; a config is a mapping with "
            "'pipeline' and 'steps'"
        )
        assert expected == load_error(path)

    @pytest.mark.parametrize(
        ("text", "where", "message"),
        [
            (
                "steps: {}\n",
                "1:1",
                "'pipeline' is missing; add `pipeline:` with `source: package.module.function` "
                "naming the function decorated with @zentrack.pipeline",
            ),
            (
                "pipeline: a.b\nsteps: {}\n",
                "1:11",
                "'pipeline' must be a mapping with a 'source' (got 'a.b' that is a string); add "
                "`source: package.module.function` naming the function decorated with "
                "@zentrack.pipeline",
            ),
            (
                "pipeline:\n  args: {}\nsteps: {}\n",
                "1:1",
                "'pipeline' has no 'source'; add `source: package.module.Name` naming the "
                "function decorated with @zentrack.pipeline",
            ),
            (
                "pipeline:\n  source: 12\nsteps: {}\n",
                "2:11",
                "the source of 'pipeline' must be a dotted name like 'package.module.Name' (got "
                "12 that is an int); write the import path of the function decorated with "
                "@zentrack.pipeline",
            ),
            (
                "pipeline:\n  source: a.b\n  run_id: 12\nsteps: {}\n",
                "3:11",
                "'pipeline.run_id' must be a string or null (got 12 that is an int); quote it",
            ),
            (
                "pipeline:\n  source: a.b\n  args: [1]\nsteps: {}\n",
                "3:9",
                "'pipeline.args' must be a mapping of argument names to values (got [1] that is "
                "a list); write `args: {}` for none",
            ),
            (
                "pipeline:\n  source: a.b\n",
                "1:1",
                "'steps' is missing; add `steps:` mapping each step key to its source and args "
                "(`steps: {}` for none)",
            ),
            (
                "pipeline:\n  source: a.b\nsteps: [a]\n",
                "3:8",
                "'steps' must be a mapping of step keys to their source and args (got ['a'] that "
                "is a list); write `steps: {}` for none",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t: a.T\n",
                "4:6",
                "step 't' must be a mapping with 'source' and 'args' (got 'a.T' that is a "
                "string); write them under the step key",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t:\n    args: {}\n",
                "4:3",
                "step 't' has no 'source'; add `source: package.module.Name` naming the function "
                "or class decorated with @zentrack.step",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t:\n    source: [a.T]\n    args: {}\n",
                "5:13",
                "the source of step 't' must be a dotted name like 'package.module.Name' (got "
                "['a.T'] that is a list); write the import path of the function or class "
                "decorated with @zentrack.step",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t:\n    source: a.T\n",
                "4:3",
                "step 't' has no 'args'; add `args:` with its parameters (`args: {}` for none)",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t:\n    source: a.T\n    args: 3\n",
                "6:11",
                "the args of step 't' must be a mapping of parameter names to values (got 3 "
                "that is an int); write `args: {}` for none",
            ),
            (
                "pipeline:\n  source: a.b\nsteps:\n  t:\n    source: a.T\n    args:\n",
                "6:5",
                "the args of step 't' must be a mapping of parameter names to values (got null); "
                "write `args: {}` for none",
            ),
            (
                minimal() + "step: {}\n",
                "7:1",
                "unknown top-level key 'step'; a config has only 'pipeline' and 'steps', so "
                "remove it or fix its name",
            ),
            (
                minimal() + "    arg: {}\n",
                "7:5",
                "unknown key 'arg' in step 't'; a step has only 'source' and 'args', so remove "
                "it or fix its name",
            ),
        ],
    )
    def test_bad_shape(self, tmp_path, text, where, message):
        """Each missing or mistyped part of the layout is one located, fixable error."""
        path = write(tmp_path, text)

        assert f"{path}:{where}: {message}" == load_error(path)

    def test_every_problem_is_reported_at_once(self, tmp_path):
        """Several problems come in one ConfigError, one line each, in file order."""
        path = write(
            tmp_path,
            "pipeline:\n  source: 1\nsteps:\n  a:\n    source: x.A\n  b:\n    args: {}\n",
        )

        expected = [
            f"{path}:2:11: the source of 'pipeline' must be a dotted name like "
            "'package.module.Name' (got 1 that is an int); write the import path of the function "
            "decorated with @zentrack.pipeline",
            f"{path}:4:3: step 'a' has no 'args'; add `args:` with its parameters "
            "(`args: {}` for none)",
            f"{path}:6:3: step 'b' has no 'source'; add `source: package.module.Name` naming the "
            "function or class decorated with @zentrack.step",
        ]
        assert expected == load_error(path).splitlines()

    @pytest.mark.parametrize(
        "payload",
        [
            '!!python/object/apply:os.system ["touch {marker}"]',
            '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
            '!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
            "!!python/object/apply:builtins.exec [\"open('{marker}', 'w').close()\"]",
            '!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
            '!!python/object:builtins.object {{x: "{marker}"}}',
            "!!python/name:os.system",
            "!!python/module:os",
        ],
    )
    @pytest.mark.parametrize("where", ["arg", "key", "source", "top"])
    def test_python_tags_are_refused_and_never_run(self, tmp_path, payload, where):
        """No tag can construct a Python object: the payload is refused and nothing runs."""
        marker = tmp_path / "pwned"
        tagged = payload.format(marker=marker)
        text = {
            "arg": one_arg(tagged),
            "key": minimal("{? " + tagged + " : 1}"),
            "source": f"pipeline:\n  source: {tagged}\nsteps: {{}}\n",
            "top": tagged + "\n",
        }[where]
        path = write(tmp_path, text)

        message = load_error(path)

        assert False is marker.exists()
        assert "could construct arbitrary Python objects" in message

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                "!!binary aGVsbG8=",
                "binary data (!!binary) is not a tracked type; save it to a file and put the "
                "file's path in the config",
            ),
            ("!!set {a, b}", "!!set is not a tracked type; write a list or a mapping instead"),
            ("!!omap [a: 1]", "!!omap is not a tracked type; write a list or a mapping instead"),
            (
                "!!str 12",
                "the tag !!str is not supported; quote the value instead to make it a string",
            ),
            (
                "!!float 1",
                "the tag !!float is not supported; remove it and write the value plainly",
            ),
            (
                "!!timestamp 2020-01-01",
                "the tag !!timestamp is not supported; remove it (a config holds plain values: "
                "int, float, str, bool, None, or lists, tuples and str-keyed dicts of these)",
            ),
            (
                "!env HOME",
                "the tag !env is not supported; remove it (a config holds plain values: int, "
                "float, str, bool, None, or lists, tuples and str-keyed dicts of these)",
            ),
        ],
    )
    def test_other_tags_are_refused(self, tmp_path, value, message):
        """Every explicit tag is refused where it is written, with a fix for its kind."""
        path = write(tmp_path, one_arg(value))

        assert f"{path}:7:10: {message}" == load_error(path)

    @pytest.mark.parametrize("value", ["2020-01-01", "2020-01-01 10:00:00", "2001-12-14t21:59:43Z"])
    def test_dates_are_refused_with_quote_it(self, tmp_path, value):
        """An unquoted date is not a tracked value: the fix is to quote it."""
        path = write(tmp_path, one_arg(value))

        expected = (
            f"{path}:7:10: {value} reads as a date or time, which is not a tracked type; quote "
            f"it ('{value}') to keep it as a string"
        )
        assert expected == load_error(path)

    @pytest.mark.parametrize(("key", "column"), [("1", 11), ("true", 11), ("~", 11), ("1.5", 11)])
    def test_mapping_keys_must_be_strings(self, tmp_path, key, column):
        """A non-string key inside an arg is refused with the fix of quoting it."""
        path = write(tmp_path, one_arg("{" + key + ": a}"))

        expected = (
            f"{path}:7:{column}: the key {key} is not a string; mapping keys must be strings, "
            f"so quote it ('{key}':)"
        )
        assert expected == load_error(path)

    def test_duplicate_keys(self, tmp_path):
        """A key written twice is refused at the second one."""
        path = write(tmp_path, minimal("\n      a: 1\n      a: 2"))

        expected = f"{path}:8:7: duplicate key 'a' (first at line 7); remove one of them"
        assert expected == load_error(path)

    def test_aliases_of_single_values_are_allowed(self, tmp_path):
        """An anchor may name one value that other args repeat."""
        path = write(
            tmp_path,
            "pipeline:\n  source: a.b\n  args: {lr: &lr 0.5, on: &on true}\n"
            "steps:\n  t:\n    source: a.T\n    args: {lr: *lr, on: *on}\n",
        )

        config = load_config(path)

        assert typed({"lr": 0.5, "on": True}) == typed(config.steps["t"].plain_args())

    def test_aliases_of_containers_are_refused(self, tmp_path):
        """Aliased lists (the billion-laughs expansion) are refused, each where it is used."""
        path = write(
            tmp_path,
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
        )

        lines = load_error(path).splitlines()

        assert [f"{path}:2:4", f"{path}:3:4", f"{path}:4:4"] == [
            line.split(": ")[0] for line in lines
        ]
        assert lines[0].endswith(
            "an alias (*a) of a list is not supported, because an edit through one place would "
            "change both; write the list out (aliases may repeat single values only)"
        )

    def test_merge_keys_are_refused(self, tmp_path):
        """``<<`` merges are refused: an edit would have to choose where it lands."""
        path = write(
            tmp_path,
            "pipeline:\n  source: a.b\nsteps:\n  t:\n    source: a.T\n"
            "    args:\n      <<: {lr: 1}\n      n: 2\n",
        )

        expected = f"{path}:7:7: merge keys ('<<') are not supported; write the keys out"
        assert expected == load_error(path)

    def test_deep_nesting_is_refused(self, tmp_path):
        """Values nested deeper than a parameter can be are refused, not recursed into."""
        path = write(tmp_path, one_arg("[" * 150 + "]" * 150))

        assert (
            "values nested over 100 levels deep are not supported; flatten this value"
            in load_error(path)
        )

    def test_pathological_nesting_is_a_config_error(self, tmp_path):
        """Nesting deep enough to exhaust the parser's recursion is still a ConfigError."""
        path = write(tmp_path, one_arg("[" * 5000 + "]" * 5000))

        assert "nested" in load_error(path)


class TestConfigSave:
    @pytest.mark.parametrize(
        ("dotted", "value", "old_line", "new_line"),
        [
            (
                "trainer.lr",
                0.02,
                "            lr: 0.001                 # tuned by hand",
                "            lr: 0.02                 # tuned by hand",
            ),
            (
                "pipeline.lr",
                0.02,
                "    args: {lr: 0.01,  epochs: 3}",
                "    args: {lr: 0.02,  epochs: 3}",
            ),
            (
                "trainer#2.lr",
                1e-07,
                "        args: {lr: .NaN, batch_size: 1_000}   # second call",
                "        args: {lr: 1.0e-07, batch_size: 1_000}   # second call",
            ),
            (
                "trainer.name",
                "run two",
                "            name: 'run one'",
                "            name: 'run two'",
            ),
            ("trainer.note", "x", '            note: "it\'s \\"fine\\""', '            note: "x"'),
            ("trainer.seed", 7, "            seed: ~", "            seed: 7"),
            ("trainer.warmup", [1, 2], "            warmup:", "            warmup: [1, 2]"),
            (
                "trainer.weights",
                [4],
                "            weights: [1,  2,   3]",
                "            weights: [4]",
            ),
            ("trainer.hidden_layers", [128, 32], "              - 64", "              - 128"),
            ("trainer.shuffle", False, "            shuffle: True", "            shuffle: false"),
            ("trainer.threshold", "1", "            threshold: +3", "            threshold: '1'"),
            (
                "trainer.momentum",
                None,
                "            momentum:   1.0E-3",
                "            momentum:   null",
            ),
        ],
    )
    @pytest.mark.parametrize("how", ["args", "set"])
    def test_an_edit_changes_only_that_value(
        self, tmp_path, dotted, value, old_line, new_line, how
    ):
        """Comments, spacing, quoting and number spellings elsewhere stay byte-identical."""
        path = tmp_path / "user.yaml"
        original = USER_EDITED.read_text(encoding="utf-8")
        path.write_text(original, encoding="utf-8")
        config = load_config(path)

        if how == "set":
            config.set(dotted, value)
        else:
            key, _, name = dotted.partition(".")
            args = config.pipeline_args if key == "pipeline" else config.steps[key].args
            args[name] = value
        config.save()

        expected = original.splitlines(keepends=True)
        expected[expected.index(old_line + "\n")] = new_line + "\n"
        assert expected == path.read_text(encoding="utf-8").splitlines(keepends=True)

    def test_saving_without_edits_is_byte_identical(self, tmp_path):
        """Spellings ruamel itself would normalise (``~``, ``True``, ``+3``) survive a save."""
        path = tmp_path / "user.yaml"
        path.write_bytes(USER_EDITED.read_bytes())

        load_config(path).save()

        assert USER_EDITED.read_bytes() == path.read_bytes()

    def test_structural_edit_keeps_comments_order_quoting_and_spellings(self, tmp_path):
        """Adding an arg inserts one line; ruamel's round trip keeps all the rest."""
        original = (
            "# hand-tuned; 4-space indentation and indented lists\n"
            "pipeline:\n"
            "    source: mypackage.pipelines.training   # the pipeline\n"
            "    run_id: '3f2a'\n"
            "    args:\n"
            "        lr: 1.0e-3\n"
            "steps:\n"
            "    # the trainer\n"
            "    trainer:\n"
            "        args:\n"
            "            batch_size: 0x20    # hex on purpose\n"
            "            dropout: .5\n"
            "            hidden_layers:\n"
            "              - 64\n"
            "              - 32\n"
            '            name: "run one"\n'
            "            note: 'it''s'\n"
            "            steps: 1_000\n"
            "            tags: [a, 'b', \"c\"]\n"
            f"            text: {'a' * 120}\n"
            "        source: mypackage.steps.TrainerStep\n"
            "    evaluate:\n"
            "        args: {threshold: 0.5, metric: f1}\n"
            "        source: mypackage.steps.evaluate\n"
        )
        path = write(tmp_path, original)
        config = load_config(path)

        config.steps["trainer"].args["epochs"] = 3
        config.save()

        expected = original.splitlines(keepends=True)
        expected.insert(20, "            epochs: 3\n")
        assert expected == path.read_text(encoding="utf-8").splitlines(keepends=True)

    @pytest.mark.parametrize(
        ("edit", "old", "new"),
        [
            pytest.param(
                lambda c: c.steps["trainer"].args["hidden_layers"].append(16),
                "        - 32\n",
                "        - 32\n        - 16\n",
                id="block-list-appended",
            ),
            pytest.param(
                lambda c: c.set("trainer.hidden_layers", [64, 32, 16]),
                "        - 32\n",
                "        - 32\n        - 16\n",
                id="block-list-set-longer",
            ),
            pytest.param(
                lambda c: c.set("trainer.hidden_layers", [64, 8, 32]),
                "        - 64\n",
                "        - 64\n        - 8\n",
                id="block-list-item-inserted",
            ),
            pytest.param(
                lambda c: c.set("trainer.hidden_layers", [32]),
                "        - 64\n",
                "",
                id="block-list-shrinks",
            ),
            pytest.param(
                lambda c: c.set("trainer.layers", [8, 8, 4]),
                "[8,  8]",
                "[8,  8, 4]",
                id="flow-list-grows",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args["layers"].pop(),
                "[8,  8]",
                "[8]",
                id="flow-list-shrinks",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args["options"].update(dampening=0.5),
                "        nesterov: true\n",
                "        nesterov: true\n        dampening: 0.5\n",
                id="block-mapping-gains-a-key",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args["options"].insert(0, "first", [[1], 2]),
                "      options:\n",
                "      options:\n        first:\n          - [1]\n          - 2\n",
                id="block-mapping-gains-a-first-key",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args["options"].pop("momentum"),
                "        momentum: 1_0.0      # underscores\n",
                "",
                id="block-mapping-loses-a-key",
            ),
            pytest.param(
                lambda c: c.steps["evaluate"].args["extra"].update(delta=[1, "a b"]),
                "gamma: 1_0.0}",
                "gamma: 1_0.0, delta: [1, a b]}",
                id="flow-mapping-gains-a-key",
            ),
            pytest.param(
                lambda c: c.steps["evaluate"].args["extra"].pop("beta"),
                "{beta: +12, gamma: 1_0.0}",
                "{gamma: 1_0.0}",
                id="flow-mapping-loses-a-key",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args.update(epochs=3),
                "      layers: [8,  8]        # two spaces\n",
                "      layers: [8,  8]        # two spaces\n      epochs: 3\n",
                id="arg-added",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args.update(name="it's"),
                "      layers: [8,  8]        # two spaces\n",
                "      layers: [8,  8]        # two spaces\n      name: 'it''s'\n",
                id="quoted-arg-added",
            ),
            pytest.param(
                lambda c: c.steps["evaluate"].args.update(metric="auc"),
                "gamma: 1_0.0}}",
                "gamma: 1_0.0}, metric: auc}",
                id="arg-added-to-flow-args",
            ),
            pytest.param(
                lambda c: c.pipeline_args.update(seed=None),
                "epochs: +12}",
                "epochs: +12, seed: null}",
                id="pipeline-arg-added",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args.pop("lr"),
                "      lr: .5\n",
                "",
                id="arg-deleted",
            ),
            pytest.param(
                lambda c: c.steps["trainer"].args.pop("hidden_layers"),
                "      hidden_layers:\n        - 64\n        - 32\n",
                "",
                id="block-arg-deleted",
            ),
            pytest.param(
                lambda c: c.set("trainer.hidden_layers", {"a": 1, "b": [1, [2]]}),
                "        - 64\n        - 32\n",
                "        a: 1\n        b:\n          - 1\n          - [2]\n",
                id="block-list-becomes-a-mapping",
            ),
            pytest.param(
                lambda c: c.set("trainer.options", None),
                "options:\n        momentum: 1_0.0      # underscores\n        nesterov: true\n",
                "options: null\n",
                id="block-mapping-becomes-null",
            ),
        ],
    )
    def test_structural_edit_changes_only_its_entries(self, tmp_path, edit, old, new):
        """Entries added or removed are whole lines (or flow items) in the collection's style.

        Comments, the trailing ``# end`` and spellings elsewhere (``+12``, ``1_0.0``,
        ``0x1F``, ``.5``, ``1e-07``) stay byte-identical.
        """
        path = write(tmp_path, STRUCTURAL)
        config = load_config(path)
        assert STRUCTURAL.count(old) == 1

        edit(config)
        config.save()

        expected = STRUCTURAL.replace(old, new)
        assert expected == path.read_text(encoding="utf-8")
        assert config._snapshot == load_config(path)._snapshot

    def test_several_structural_edits_at_once(self, tmp_path):
        """Appending to the last arg and adding an arg after it keep their order."""
        path = write(tmp_path, minimal("\n      b: {x: 1}\n      a:\n        - 1  # one"))
        config = load_config(path)
        args = config.steps["t"].args

        args["a"].append(2)
        args["b"]["z"] = 2
        del args["b"]["x"]
        args["c"] = [3]
        config.save()

        expected = minimal(
            "\n      b: {z: 2}\n      a:\n        - 1  # one\n        - 2\n      c: [3]"
        )
        assert expected == path.read_text(encoding="utf-8")

    def test_structural_edits_after_a_save(self, tmp_path):
        """After a structural save the next one patches the text just written."""
        path = write(tmp_path, STRUCTURAL)
        config = load_config(path)
        config.steps["trainer"].args["hidden_layers"].append(16)
        config.save()

        config.steps["trainer"].args["hidden_layers"].pop(0)
        config.save()

        expected = STRUCTURAL.replace(
            "        - 64\n        - 32\n", "        - 32\n        - 16\n"
        )
        assert expected == path.read_text(encoding="utf-8")

    def test_file_without_a_final_line_break_keeps_none(self, tmp_path):
        """Entries added or cut at the very end leave the file without a final line break."""
        original = minimal("\n      a: 1\n      b: [1]").removesuffix("\n")
        path = write(tmp_path, original)
        config = load_config(path)
        config.steps["t"].args["c"] = {"d": [1, [2]]}
        config.save()
        added = path.read_text(encoding="utf-8")

        del config.steps["t"].args["c"]
        del config.steps["t"].args["b"]
        config.save()

        expected = (original + "\n      c:\n        d:\n          - 1\n          - [2]", original)
        assert expected == (added, path.read_text(encoding="utf-8") + "\n      b: [1]")

    def test_sequence_of_mappings_keeps_its_dash_style(self, tmp_path):
        """New items follow the list's own dash spacing; a first key after a dash can go."""
        original = minimal("\n      xs:\n      -   a: 1  # first\n          b: 2\n      -   c: 3")
        path = write(tmp_path, original)
        config = load_config(path)

        del config.steps["t"].args["xs"][0]["a"]
        config.steps["t"].args["xs"].append({"d": [4, {"e": 5}]})
        config.save()

        expected = minimal(
            "\n      xs:\n      -   b: 2\n      -   c: 3\n      -   d:\n"
            "          -   4\n          -   {e: 5}"
        )
        assert expected == path.read_text(encoding="utf-8")

    def test_structural_edit_keeps_what_precedes_the_document_start(self, tmp_path):
        """Directives and comments before ``---``, and a closing ``...``, are kept."""
        original = "%YAML 1.2\n# head\n---\n" + minimal() + "...\n"
        path = write(tmp_path, original)
        config = load_config(path)

        config.pipeline_args["lr"] = 0.5
        config.save()

        expected = original.splitlines(keepends=True)
        expected.insert(5, "  args:\n    lr: 0.5\n")
        assert "".join(expected) == path.read_text(encoding="utf-8")

    def test_pipeline_args_are_added_to_a_file_without_them(self, tmp_path):
        """Pipeline args set in memory go after the source when the file had none."""
        path = write(tmp_path, minimal())
        config = load_config(path)

        config.pipeline_args["lr"] = 0.5
        config.save()

        expected = {"lr": 0.5}
        assert expected == load_config(path).plain_pipeline_args()
        assert "pipeline:\n  source: a.pipe\n  args:\n    lr: 0.5\nsteps:\n" in path.read_text()

    def test_anchored_value_edit_changes_one_place(self, tmp_path):
        """Editing an arg that an alias repeats leaves the other place as it was."""
        path = write(
            tmp_path,
            "pipeline:\n  source: a.b\nsteps:\n"
            "  a:\n    source: a.A\n    args:\n      lr: &lr 0.5\n"
            "  b:\n    source: a.B\n    args:\n      lr: *lr\n",
        )
        config = load_config(path)

        config.set("a.lr", 0.25)
        config.save()
        reloaded = load_config(path)

        expected = {"a": {"lr": 0.25}, "b": {"lr": 0.5}}
        assert expected == {key: step.plain_args() for key, step in reloaded.steps.items()}

    def test_crlf_line_ends_and_bom_are_kept(self, tmp_path):
        """A Windows file stays a Windows file."""
        path = tmp_path / "windows.yaml"
        original = b"\xef\xbb\xbf" + one_arg("1  # one").replace("\n", "\r\n").encode()
        path.write_bytes(original)
        config = load_config(path)

        config.set("t.x", 2)
        config.save()

        assert original.replace(b"x: 1", b"x: 2") == path.read_bytes()

    def test_save_elsewhere_leaves_the_original(self, tmp_path):
        """``save(path)`` writes there, returns it and makes it the config's file."""
        source = write(tmp_path, one_arg("1"))
        target = tmp_path / "sub" / "copy.yaml"
        target.parent.mkdir()
        config = load_config(source)
        config.set("t.x", 2)

        returned = config.save(target)

        assert (target, target) == (returned, config.path)
        assert one_arg("1") == source.read_text()
        assert one_arg("2") == target.read_text()

    def test_second_edit_after_a_save(self, tmp_path):
        """After a save the next edit patches the text just written."""
        path = write(tmp_path, minimal("\n      a: 1  # A\n      b: 2  # B"))
        config = load_config(path)
        config.set("t.a", 10)
        config.save()

        config.set("t.b", 20)
        config.save()

        assert minimal("\n      a: 10  # A\n      b: 20  # B") == path.read_text()

    def test_untracked_value_in_memory_is_refused(self, tmp_path):
        """A value assigned in memory that is not tracked fails the save; the file stays."""
        path = write(tmp_path, one_arg("1"))
        config = load_config(path)
        config.steps["t"].args["x"] = datetime.date(2020, 1, 1)

        with pytest.raises(ConfigError) as info:
            config.save()

        expected = (
            "config['steps']['t']['args']['x'] must be of a tracked type (int, float, str, bool, "
            "None, or lists, tuples and str-keyed dicts of these), nested at most 100 levels "
            "(got datetime.date(2020, 1, 1) that is a datetime.date); convert it to one, e.g. "
            "float(x) for a numpy float or str(x) for a date."
        )
        assert expected == str(info.value)
        assert one_arg("1") == path.read_text()

    def test_file_mode_is_kept(self, tmp_path):
        """The atomic replace keeps an existing file's permissions."""
        path = write(tmp_path, one_arg("1"))
        path.chmod(0o600)
        config = load_config(path)

        config.set("t.x", 2)
        config.save()

        expected = 0o600
        assert expected == stat.S_IMODE(path.stat().st_mode)

    @pytest.mark.parametrize("dotted", ["trainer.lr", "pipeline.lr", "trainer#2.lr"])
    @settings(max_examples=60)
    @given(value=tracked_values)
    def test_any_tracked_value_saves_and_loads_back(self, dotted, value):
        """Any tracked value set in block or flow context loads back (tuples as lists)."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "user.yaml"
            path.write_bytes(USER_EDITED.read_bytes())
            config = load_config(path)

            config.set(dotted, value)
            config.save()

            reloaded = load_config(path)
        key = dotted.rpartition(".")[0]
        args = (
            reloaded.plain_pipeline_args()
            if key == "pipeline"
            else reloaded.steps[key].plain_args()
        )
        assert typed(as_lists(value)) == typed(args["lr"])


class TestConfigSet:
    def test_sets_a_step_arg(self, tmp_path):
        """``STEP.ARG`` sets that step's arg in the live args mapping."""
        config = load_config(write(tmp_path, one_arg("1")))

        config.set("t.x", 0.5)

        expected = {"x": 0.5}
        assert expected == config.steps["t"].plain_args()

    def test_sets_a_pipeline_arg(self, tmp_path):
        """``pipeline.ARG`` sets the pipeline function's own arg."""
        config = load_config(
            write(tmp_path, minimal().replace("steps:", "  args: {lr: 1}\nsteps:"))
        )

        config.set("pipeline.lr", 2)

        expected = {"lr": 2}
        assert expected == config.plain_pipeline_args()

    def test_sets_a_key_inside_a_mapping_arg(self, tmp_path):
        """``STEP.ARG.KEY`` reaches into a mapping arg."""
        config = load_config(write(tmp_path, one_arg("{opt: {lr: 1}}")))

        config.set("t.x.opt.lr", 3)

        expected = {"x": {"opt": {"lr": 3}}}
        assert expected == config.steps["t"].plain_args()

    def test_steps_prefix_names_a_step_called_pipeline(self, tmp_path):
        """``steps.KEY.ARG`` reaches a step keyed ``pipeline``."""
        text = minimal().replace("  t:", "  pipeline:").replace("args: {}", "args: {lr: 1}")
        config = load_config(write(tmp_path, text))

        config.set("steps.pipeline.lr", 2)

        expected = {"lr": 2}
        assert expected == config.steps["pipeline"].plain_args()

    def test_tuples_become_lists(self, tmp_path):
        """A tuple is written (and read back) as a list."""
        path = write(tmp_path, one_arg("1"))
        config = load_config(path)

        config.set("t.x", (1, (2, 3)))
        config.save()

        expected = {"x": [1, [2, 3]]}
        assert expected == load_config(path).steps["t"].plain_args()

    @pytest.mark.parametrize(("old", "new"), [("'a'", "'b'"), ('"a"', '"b"'), ("a", "b")])
    def test_quoting_is_kept(self, tmp_path, old, new):
        """A string replacing a quoted string is quoted the same way."""
        path = write(tmp_path, one_arg(old))
        config = load_config(path)

        config.set("t.x", "b")
        config.save()

        assert one_arg(new) == path.read_text()

    def test_unknown_step(self, tmp_path):
        """A dotted key naming no step lists the step keys."""
        path = write(tmp_path, one_arg("1"))
        config = load_config(path)

        with pytest.raises(ConfigError) as info:
            config.set("trainer.lr", 1)

        expected = (
            f"{path}: 'trainer.lr' names no arg; write 'pipeline.ARG' or 'STEP.ARG' with STEP "
            "one of ['t']."
        )
        assert expected == str(info.value)

    def test_unknown_arg(self, tmp_path):
        """An arg the step does not have is refused, listing the ones it has."""
        path = write(tmp_path, one_arg("1"))
        config = load_config(path)

        with pytest.raises(ConfigError) as info:
            config.set("t.lr", 1)

        expected = (
            f"{path}:7:7: step 't' has no arg 'lr' (it has ['x']); fix the name in 't.lr', or "
            "add the arg to the file first."
        )
        assert expected == str(info.value)

    def test_unknown_key_inside_a_mapping_arg(self, tmp_path):
        """A missing key inside a mapping arg names the arg it was looked up in."""
        path = write(tmp_path, one_arg("{a: 1}"))
        config = load_config(path)

        with pytest.raises(ConfigError) as info:
            config.set("t.x.b", 1)

        expected = (
            f"{path}:7:10: step 't' arg 'x' has no arg 'b' (it has ['a']); fix the name in "
            "'t.x.b', or add the arg to the file first."
        )
        assert expected == str(info.value)

    @pytest.mark.parametrize(
        ("dotted", "value", "where", "message"),
        [
            (
                "trainer.verbose",
                "yes",
                "9:16",
                "arg 'verbose' of step 'trainer' is 'yes' that is a string, but its default "
                "False is a bool; write a bool",
            ),
            (
                "trainer#2.lr",
                "0.5",
                "13:16",
                "arg 'lr' of step 'trainer#2' is '0.5' that is a string, but its default 0.01 is "
                "a float; write a float without quotes",
            ),
            (
                "pipeline.lr",
                [1],
                "4:9",
                "arg 'lr' of the pipeline is [1] that is a list, but its default 0.01 is a "
                "float; write a float",
            ),
            (
                "evaluate.extra",
                3,
                "18:14",
                "arg 'extra' of step 'evaluate' holds its **extra keyword args, so it must be a "
                "mapping such as {momentum: 0.9}",
            ),
        ],
    )
    def test_value_contradicting_the_signature_is_refused(
        self, tmp_path, dotted, value, where, message
    ):
        """With importable sources, a value ``run`` would refuse is refused; nothing changes."""
        path = write(tmp_path, VALID)
        config = load_config(path)

        with pytest.raises(ConfigError) as info:
            config.set(dotted, value)

        expected = (f"{path}:{where}: {message}", [], VALID)
        actual = (str(info.value), diff_configs(load_config(path), config), config.to_text())
        assert expected == actual

    @pytest.mark.parametrize(
        ("dotted", "value"),
        [("trainer#2.lr", 2), ("trainer.hidden_layers", "abc"), ("evaluate.extra.anything", "x")],
    )
    def test_values_the_signature_allows_are_set(self, tmp_path, dotted, value):
        """An int where the default is a float, anything where it is None or in ``**extra``."""
        path = write(tmp_path, VALID)
        config = load_config(path)

        config.set(dotted, value)
        config.save()

        assert None is validate_against(load_config(path), resolve)

    def test_sources_that_do_not_import_are_not_checked(self, tmp_path):
        """Without the code there is no signature to check against: any tracked value is set."""
        config = load_config(write(tmp_path, VALID.replace(f"{HERE}.Trainer", "nowhere_zz.T")))

        config.set("trainer.verbose", "yes")

        expected = "yes"
        assert expected == config.steps["trainer"].plain_args()["verbose"]

    @pytest.mark.parametrize("value", [datetime.date(2020, 1, 1), np.float64(0.5), {1, 2}, b"x"])
    def test_untracked_value(self, tmp_path, value):
        """A value of an untracked type is refused before anything changes."""
        config = load_config(write(tmp_path, one_arg("1")))

        with pytest.raises(ConfigError) as info:
            config.set("t.x", value)

        assert str(info.value).startswith("The value for 't.x' must be of a tracked type")
        expected = {"x": 1}
        assert expected == config.steps["t"].plain_args()


class TestConfigToText:
    def test_unedited_text_is_the_file(self):
        """Without edits the text is the file's own text."""
        assert USER_EDITED.read_text(encoding="utf-8") == load_config(USER_EDITED).to_text()

    def test_text_is_what_save_writes(self, tmp_path):
        """``to_text`` shows the edit exactly as ``save`` will write it."""
        path = write(tmp_path, one_arg("1"))
        config = load_config(path)
        config.set("t.x", [1, 2])

        text = config.to_text()
        config.save()

        assert path.read_text() == text


class TestStepConfig:
    def test_is_frozen(self, tmp_path):
        """Reassigning a field (which saving would miss) raises; edit ``args`` instead."""
        step = load_config(write(tmp_path, one_arg("1"))).steps["t"]

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            step.source = "b.T"  # type: ignore[misc]

    def test_fields(self, tmp_path):
        """Key, source and the live args mapping of the document."""
        config = load_config(write(tmp_path, one_arg("1")))

        step = config.steps["t"]

        expected = ("t", "a.T")
        assert expected == (step.key, step.source)
        assert step.args is config._data["steps"]["t"]["args"]

    def test_plain_args_have_builtin_types(self, tmp_path):
        """ruamel's float and string subclasses become exactly float and str."""
        config = load_config(write(tmp_path, one_arg("{a: 1.5, b: 'q', c: 0x1, d: [1]}")))

        plain = config.steps["t"].plain_args()

        assert typed({"x": {"a": 1.5, "b": "q", "c": 1, "d": [1]}}) == typed(plain)

    def test_repr(self, tmp_path):
        """The repr shows the args as values."""
        step = load_config(write(tmp_path, one_arg("1"))).steps["t"]

        expected = "StepConfig(key='t', source='a.T', args={'x': 1})"
        assert expected == repr(step)


class TestToPlain:
    def test_ruamel_types_become_builtins(self):
        """Anchored bools, hex ints, float spellings and quoted strings become builtins."""
        yaml = YAML()
        data = yaml.load("a: [0x10, 1.0e-3, 'q', &t true, *t, {k: .inf}]\n")

        assert typed({"a": [16, 0.001, "q", True, True, {"k": math.inf}]}) == typed(to_plain(data))

    def test_tuples_become_lists(self):
        """Tuples are lists in a config."""
        expected = [[1, [2]], {"a": [3]}]
        assert expected == to_plain(((1, (2,)), {"a": (3,)}))

    @pytest.mark.parametrize(
        "value",
        [datetime.date(2020, 1, 1), {1, 2}, np.float64(1.0), b"x", {1: "a"}, [object()]],
        ids=repr,
    )
    def test_untracked_values_are_refused(self, value):
        """What a step could not take as a parameter is a ConfigError."""
        with pytest.raises(ConfigError):
            to_plain(value)


class TestParseValue:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("0.02", 0.02),
            ("1", 1),
            ("1.0", 1.0),
            ("1e-07", 1e-07),
            ("-0.0", -0.0),
            ("null", None),
            ("~", None),
            ("true", True),
            ("abc", "abc"),
            ("hello world", "hello world"),
            ("'1'", "1"),
            ('"null"', "null"),
            ("[1, 2]", [1, 2]),
            ("{a: [1.5, x]}", {"a": [1.5, "x"]}),
            ("", ""),
            ("  ", "  "),
            ("12345678901234567890123", 12345678901234567890123),
        ],
    )
    def test_yaml_scalars(self, text, expected):
        """One value is read with the same YAML rules as a config file."""
        assert typed(expected) == typed(parse_value(text))

    def test_nan(self):
        """``.nan`` is a float NaN."""
        assert True is math.isnan(parse_value(".nan"))

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "2020-01-01",
                "value '2020-01-01':1:1: 2020-01-01 reads as a date or time, which is not a "
                "tracked type; quote it ('2020-01-01') to keep it as a string",
            ),
            (
                "!!python/name:os.system",
                "value '!!python/name:os.system':1:1: the tag !!python/name:os.system is refused "
                "because it could construct arbitrary Python objects; remove it (a config holds "
                "plain values: int, float, str, bool, None, or lists, tuples and str-keyed dicts "
                "of these)",
            ),
            (
                "[1, 2",
                "value '[1, 2':1:6: invalid YAML (while parsing a flow sequence: expected ',' or "
                "']', but got '<stream end>'); fix the YAML syntax (often the indentation) at or "
                "just before this position",
            ),
            (
                "# x",
                "value '# x':1:1: '# x' is a YAML comment, which would be dropped from the value; "
                "to set the text as a string, quote it as YAML ('# x', inside the shell's own "
                "quotes), or leave the comment out",
            ),
            (
                "it's 0.5  # tuned",
                "value \"it's 0.5  # tuned\":1:11: '# tuned' is a YAML comment, which would be "
                "dropped from the value; to set the text as a string, quote it as YAML "
                "('it''s 0.5  # tuned', inside the shell's own quotes), or leave the comment out",
            ),
            (
                "2e400",
                "value '2e400':1:1: 2e400 is out of a float's range and would be read as .inf; "
                "write .inf for infinity, or quote it ('2e400') to keep it as a string",
            ),
            (
                "[1, -1.5e309]",
                "value '[1, -1.5e309]':1:5: -1.5e309 is out of a float's range and would be read "
                "as -.inf; write -.inf for infinity, or quote it ('-1.5e309') to keep it as a "
                "string",
            ),
            (
                "{a: 1e-400}",
                "value '{a: 1e-400}':1:5: 1e-400 is out of a float's range and would be read as "
                "0.0; write 0.0 for zero, or quote it ('1e-400') to keep it as a string",
            ),
            (
                "---",
                "value '---':1:1: '---' is not a single YAML value (a '---' or '...' marks a "
                "document); write null for None, or quote it ('---') to set it as a string",
            ),
        ],
    )
    def test_refusals(self, text, message):
        """Dates, tags, broken YAML, comments and floats out of range are refused."""
        with pytest.raises(ConfigError) as info:
            parse_value(text)

        assert message == str(info.value)


class TestDiffConfigs:
    def test_lists_changed_added_and_removed_args_sorted(self, tmp_path):
        """Rows are (dotted key, value in a, value in b), MISSING where absent, sorted."""
        a = load_config(
            write(
                tmp_path,
                "pipeline:\n  source: p.q\n  args: {lr: 1, seed: 0}\nsteps:\n"
                "  trainer:\n    source: a.T\n    args: {lr: 0.1, layers: [1, 2], same: x}\n"
                "  gone:\n    source: a.G\n    args: {k: 1}\n",
                "a.yaml",
            )
        )
        b = load_config(
            write(
                tmp_path,
                "pipeline:\n  source: p.q\n  args: {lr: 2, seed: 0}\nsteps:\n"
                "  trainer:\n    source: a.T\n"
                "    args: {lr: 0.2, layers: [1, 3], same: x, new: n}\n",
                "b.yaml",
            )
        )

        expected = [
            ("gone.k", 1, MISSING),
            ("pipeline.lr", 1, 2),
            ("trainer.layers", [1, 2], [1, 3]),
            ("trainer.lr", 0.1, 0.2),
            ("trainer.new", MISSING, "n"),
        ]
        assert expected == diff_configs(a, b)

    @pytest.mark.parametrize(
        ("left", "right"), [("1", "1.0"), ("1", "true"), ("0.0", "-0.0"), ("'1'", "1")]
    )
    def test_types_count(self, tmp_path, left, right):
        """``1``, ``1.0``, ``true`` and ``'1'`` differ, as in the fingerprint."""
        a = load_config(write(tmp_path, one_arg(left), "a.yaml"))
        b = load_config(write(tmp_path, one_arg(right), "b.yaml"))

        assert [("t.x", parse_value(left), parse_value(right))] == [
            (key, x, y) for key, x, y in diff_configs(a, b)
        ]

    def test_identical_configs_have_no_rows(self, tmp_path):
        """NaN equals NaN and key order does not matter."""
        a = load_config(write(tmp_path, one_arg("{p: .nan, q: 1}"), "a.yaml"))
        b = load_config(write(tmp_path, one_arg("{q: 1, p: .nan}"), "b.yaml"))

        expected = []
        assert expected == diff_configs(a, b)

    def test_step_keyed_pipeline_gets_the_steps_prefix(self, tmp_path):
        """A step keyed ``pipeline`` cannot be confused with the pipeline's own args."""
        text = minimal().replace("  t:", "  pipeline:")
        a = load_config(write(tmp_path, text.replace("args: {}", "args: {x: 1}"), "a.yaml"))
        b = load_config(write(tmp_path, text.replace("args: {}", "args: {x: 2}"), "b.yaml"))

        expected = [("steps.pipeline.x", 1, 2)]
        assert expected == diff_configs(a, b)

    def test_missing_repr(self):
        """The sentinel reads as what it means."""
        expected = "MISSING"
        assert expected == repr(MISSING)


class TestWriteRunConfig:
    def test_a_config_too_large_to_self_check_still_loads_back_exactly(self, tmp_path):
        """Over 256 KiB the writer skips reading its text back; the values still round-trip."""
        text = "a\\b\x00 ü\t\n'\"" * 2_600  # backslashes, NUL, tabs, quotes: every escape
        args: dict[str, Any] = {f"text{i}": text + str(i) for i in range(8)}  # each inlined
        args.update({"rate": 1e-07, "n": 1, "nested": [[1.0, None], {"k": "v"}]})
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="mypackage.pipelines.training",
            pipeline_args={},
            run_id="big",
            steps=[("take", "mypackage.steps.take", args)],
            meta={},
        )

        loaded = load_config(path).steps["take"].plain_args()
        expected = (True, args)
        assert expected == (path.stat().st_size > 256 * 1024, loaded)

    def test_an_arg_too_large_to_inline_is_kept_beside_the_config(self, tmp_path, caplog):
        """An arg over 64 KiB: a warning, a pointer with its sha256, the exact value on load."""
        table = {f"k{i:07d}": (i, float(i)) for i in range(5_000)}
        with caplog.at_level(logging.WARNING, logger="zentrack"):
            path = write_run_config(
                tmp_path / "run.yaml",
                pipeline_source="mypackage.pipelines.training",
                pipeline_args={},
                run_id="big",
                steps=[("take", "mypackage.steps.take", {"table": table, "n": 1})],
                meta={},
            )
        (value_file,) = tmp_path.glob("run.values/*.json")
        loaded = load_config(path).steps["take"].plain_args()
        value_file.write_bytes(value_file.read_bytes().replace(b"k0000001", b"k0000002", 1))
        with pytest.raises(ConfigError, match="changed since it was written"):
            load_config(path).steps["take"].plain_args()
        warned = any("'table'" in r.getMessage() for r in caplog.records)
        expected = (True, True, {"table": table, "n": 1})
        assert expected == (path.stat().st_size < 1024, warned, loaded)

    def test_writes_the_seed_shape(self, tmp_path):
        """Header comment, pipeline with source, run id, args and meta, then sorted step args."""
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="mypackage.pipelines.training",
            pipeline_args={"lr": 0.01},
            run_id="3f2a",
            steps=[
                (
                    "trainer",
                    "mypackage.steps.TrainerStep",
                    {"lr": 0.001, "batch_size": 1, "hidden_layers": None},
                )
            ],
            meta={"zentrack": "0.1.0", "fingerprint_scheme": 1},
        )

        expected = (
            "# written by zentrack for run 3f2a; edit args and rerun with "
            "`zentrack config run FILE`\n"
            "pipeline:\n"
            "  source: mypackage.pipelines.training\n"
            "  run_id: 3f2a\n"
            "  args:\n"
            "    lr: 0.01\n"
            "  zentrack: 0.1.0\n"
            "  fingerprint_scheme: 1\n"
            "steps:\n"
            "  trainer:\n"
            "    args:\n"
            "      batch_size: 1\n"
            "      hidden_layers: null\n"
            "      lr: 0.001\n"
            "    source: mypackage.steps.TrainerStep\n"
        )
        assert (tmp_path / "run.yaml", expected) == (path, path.read_text())

    def test_containers_layout(self, tmp_path):
        """Lists and mappings of scalars are flow style, deeper ones block style."""
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="r",
            steps=[
                ("t#2", "a.T", {"layers": (64, 64), "opt": {"name": "adam", "betas": [0.9, 0.99]}})
            ],
            meta={},
        )

        expected = (
            "steps:\n"
            "  t#2:\n"
            "    args:\n"
            "      layers: [64, 64]\n"
            "      opt:\n"
            "        name: adam\n"
            "        betas: [0.9, 0.99]\n"
            "    source: a.T\n"
        )
        assert expected == path.read_text().split("args: {}\n", 1)[1]

    @pytest.mark.parametrize(
        ("value", "spelled"),
        [
            (1e-07, "1.0e-07"),
            (1e16, "1.0e+16"),
            (5e-324, "5.0e-324"),
            (1.5e300, "1.5e+300"),
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (123456789.125, "123456789.125"),
            (math.inf, ".inf"),
            (-math.inf, "-.inf"),
            (1, "1"),
            (-(2**70), "-1180591620717411303424"),
            (10**40, "1" + "0" * 40),
            (True, "true"),
            (None, "null"),
            ("plain text", "plain text"),
            ("1", "'1'"),
            ("1e3", "'1e3'"),
            ("true", "'true'"),
            ("yes", "'yes'"),
            ("null", "'null'"),
            ("~", "'~'"),
            ("", "''"),
            ("1:20", "'1:20'"),
            ("2020-01-01", "'2020-01-01'"),
            ("0x1F", "'0x1F'"),
            (".inf", "'.inf'"),
            ("a: b", "'a: b'"),
            ("it's", "'it''s'"),
            ("two\nlines", '"two\\nlines"'),
            ("\u2028", '"\\L"'),
        ],
    )
    def test_spellings_load_back_with_the_same_type(self, tmp_path, value, spelled):
        """Each value is spelled so that it loads back as the same value of the same type."""
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="r",
            steps=[("t", "a.T", {"x": value})],
            meta={},
        )

        assert f"      x: {spelled}\n" in path.read_text()
        assert typed(value) == typed(load_config(path).steps["t"].plain_args()["x"])

    def test_nan(self, tmp_path):
        """NaN is written ``.nan`` and loads back as a float NaN."""
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="r",
            steps=[("t", "a.T", {"x": math.nan})],
            meta={},
        )

        value = load_config(path).steps["t"].plain_args()["x"]
        assert ("      x: .nan\n", float, True) == (
            path.read_text().splitlines(keepends=True)[-2],
            type(value),
            math.isnan(value),
        )

    def test_yaml_1_1_readers_see_the_same_values(self, tmp_path):
        """PyYAML (YAML 1.1) reads floats as floats and look-alike strings as strings."""
        yaml = pytest.importorskip("yaml")
        args = {
            "a": 1e-07,
            "b": 1e16,
            "c": "yes",
            "d": "1:20",
            "e": "1e3",
            "f": 10**30,
            "g": [1.0, "on", None],
        }
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="r",
            steps=[("t", "a.T", args)],
            meta={},
        )

        loaded = yaml.safe_load(path.read_text())["steps"]["t"]["args"]

        assert typed(args) == typed(loaded)

    @given(args=param_mappings, meta=param_mappings, value=tracked_values)
    def test_every_tracked_value_loads_back(self, args, meta, value):
        """Any tracked args and meta load back equal, with the same types (tuples as lists)."""
        meta = {f"m_{key}": item for key, item in meta.items()}
        with tempfile.TemporaryDirectory() as directory:
            path = write_run_config(
                Path(directory) / "run.yaml",
                pipeline_source="p.q",
                pipeline_args={"v": value},
                run_id="r",
                steps=[("t", "a.T", args)],
                meta=meta,
            )
            config = load_config(path)
        assert typed(as_lists(args)) == typed(config.steps["t"].plain_args())
        assert list(config.steps["t"].args) == sorted(args)
        assert typed(as_lists(meta)) == typed(config.meta)
        assert typed(as_lists({"v": value})) == typed(config.plain_pipeline_args())

    def test_values_nested_as_deep_as_a_parameter_may_be(self, tmp_path):
        """A value as deeply nested as zentrack tracks loads back, as an arg and as meta."""
        value: Any = 1
        for _ in range(101):
            value = [value]
        assert True is is_tracked(value)

        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={"v": value},
            run_id="r",
            steps=[("t", "a.T", {"v": value})],
            meta={"m": value},
        )
        config = load_config(path)

        expected = ({"v": value}, {"v": value}, {"m": value})
        assert expected == (
            config.plain_pipeline_args(),
            config.steps["t"].plain_args(),
            config.meta,
        )

    def test_creates_missing_directories(self, tmp_path):
        """Configs go under directories that may not exist yet."""
        path = write_run_config(
            tmp_path / "a" / "b" / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="r",
            steps=[],
            meta={},
        )

        expected = []
        assert expected == list(load_config(path).steps)

    def test_odd_run_id_is_escaped_in_the_header(self, tmp_path):
        """A run id with a line break cannot break out of the header comment."""
        path = write_run_config(
            tmp_path / "run.yaml",
            pipeline_source="p.q",
            pipeline_args={},
            run_id="a\nb: 1",
            steps=[],
            meta={},
        )

        expected = (
            '# written by zentrack for run "a\\nb: 1"; edit args and rerun with '
            "`zentrack config run FILE`"
        )
        assert expected == path.read_text().splitlines()[0]
        expected = "a\nb: 1"
        assert expected == load_config(path).run_id

    def test_untracked_value(self, tmp_path):
        """An arg of an untracked type names the step and the arg."""
        with pytest.raises(ConfigError) as info:
            write_run_config(
                tmp_path / "run.yaml",
                pipeline_source="p.q",
                pipeline_args={},
                run_id="r",
                steps=[("t", "a.T", {"when": datetime.date(2020, 1, 1)})],
                meta={},
            )

        expected = (
            "The value for \"args of step 't': when\" must be of a tracked type (int, float, "
            "str, bool, None, or lists, tuples and str-keyed dicts of these) (got "
            "datetime.date(2020, 1, 1) that is a datetime.date); convert it to one."
        )
        assert expected == str(info.value)
        assert False is (tmp_path / "run.yaml").exists()

    def test_meta_cannot_shadow_the_config_keys(self, tmp_path):
        """``meta`` keys live beside source, run_id and args, so they may not be those."""
        with pytest.raises(ConfigError) as info:
            write_run_config(
                tmp_path / "run.yaml",
                pipeline_source="p.q",
                pipeline_args={},
                run_id="r",
                steps=[],
                meta={"source": "x"},
            )

        expected = (
            "write_run_config: meta keys ['source'] clash with the config's own keys; rename them."
        )
        assert expected == str(info.value)

    def test_step_keys_are_unique(self, tmp_path):
        """Two steps under one key would lose one; it is refused."""
        with pytest.raises(ConfigError) as info:
            write_run_config(
                tmp_path / "run.yaml",
                pipeline_source="p.q",
                pipeline_args={},
                run_id="r",
                steps=[("t", "a.T", {}), ("t", "a.T", {})],
                meta={},
            )

        expected = "write_run_config: the step key 't' repeats; step keys must be unique."
        assert expected == str(info.value)

    def test_io_errors_stay_os_errors(self, tmp_path):
        """A file that cannot be written is an OSError, not a config problem."""
        (tmp_path / "run.yaml").mkdir()

        with pytest.raises(OSError):
            write_run_config(
                tmp_path / "run.yaml",
                pipeline_source="p.q",
                pipeline_args={},
                run_id="r",
                steps=[],
                meta={},
            )

        expected = []
        assert expected == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


class TestValidateAgainst:
    def test_a_matching_config_passes(self, tmp_path):
        """Sources resolve to steps and a pipeline, and every arg fits its parameter."""
        config = load_config(write(tmp_path, VALID))

        assert None is validate_against(config, resolve)

    def problems(self, tmp_path: Path, text: str) -> list[str]:
        """The lines of the ConfigError validating ``text`` raises."""
        config = load_config(write(tmp_path, text))
        with pytest.raises(ConfigError) as info:
            validate_against(config, resolve)
        return str(info.value).splitlines()

    @pytest.mark.parametrize(
        ("edit", "expected"),
        [
            pytest.param(
                ("threshold: 0.7\n", "threshold: 0.7\n      momentum: 0.9\n"),
                [
                    "18:7: step 'evaluate' has no arg 'momentum'; its other keyword args go "
                    "under 'extra' (its **extra), so write it as extra: {momentum: ...}"
                ],
                id="keyword-arg-beside-the-var-keyword-mapping",
            ),  # A **extra step's extra args go under 'extra': a key beside it would be dropped.
            pytest.param(
                ("extra: {anything: [1, 2]}", "extra: [1, 2]"),
                [
                    "18:14: arg 'extra' of step 'evaluate' holds its **extra keyword args, so "
                    "it must be a mapping such as {momentum: 0.9}"
                ],
                id="var-keyword-arg-that-is-not-a-mapping",
            ),  # The 'extra' of a **extra step holds keyword args: a list there is refused.
            pytest.param(
                (f"{HERE}.tune", f"{HERE}.plain_function"),
                [
                    f"22:13: '{HERE}.plain_function' is a function, not a zentrack step; source "
                    "must name a function or class decorated with @zentrack.step"
                ],
                id="source-that-is-not-a-step",
            ),  # A source naming a plain function is refused at the source.
            pytest.param(
                ("    lr: 0.02", "    lr: 0.02\n    epochs: 2.5\n    seed: 1"),
                [
                    "5:13: arg 'epochs' of the pipeline is 2.5 that is a float, but its default "
                    "2 is an int; write an int",
                    "6:5: the pipeline has no arg 'seed'; valid args are lr, epochs, so remove "
                    "it or fix its name",
                ],
                id="pipeline-args-are-checked",
            ),  # The pipeline's own args are checked against its signature like a step's.
            pytest.param(
                ("args: {lr: 0.2}", "args: {lr: 0.2, table: 1}"),
                [
                    "21:21: 'table' is an input of step 'tune', not a parameter (see params= of "
                    "its @step); remove it from the config"
                ],
                id="declared-inputs-are-not-args",
            ),  # With ``params=`` declared, the other arguments are inputs a config cannot set.
        ],
    )
    def test_one_edit_is_refused_at_its_place(self, tmp_path, edit, expected):
        """One edit of VALID: the problems it makes, as ``line:column: message`` in the file."""
        path = tmp_path / "config.yaml"
        text = VALID.replace(*edit)

        assert [f"{path}:{line}" for line in expected] == self.problems(tmp_path, text)

    def test_unknown_arg_names_the_valid_ones(self, tmp_path):
        """A misspelt arg is refused at its line, listing the step's parameters."""
        path = tmp_path / "config.yaml"

        lines = self.problems(tmp_path, VALID.replace("      verbose: false", "      verbos: no"))

        expected = [
            f"{path}:9:7: step 'trainer' has no arg 'verbos'; valid args are batch_size, lr, "
            "hidden_layers, name, verbose, layers, options, so remove it or fix its name"
        ]
        assert expected == lines

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            (
                "      lr: '0.1'",
                "arg 'lr' of step 'trainer' is '0.1' that is a string, but its default 0.01 is a "
                "float; write a float without quotes",
            ),
            (
                "      lr: true",
                "arg 'lr' of step 'trainer' is True that is a bool, but its default 0.01 is a "
                "float; write a float",
            ),
            (
                "      batch_size: 1.5",
                "arg 'batch_size' of step 'trainer' is 1.5 that is a float, but its default 1 is "
                "an int; write an int",
            ),
            (
                "      batch_size: true",
                "arg 'batch_size' of step 'trainer' is True that is a bool, but its default 1 is "
                "an int; write an int",
            ),
            (
                "      name: 3",
                "arg 'name' of step 'trainer' is 3 that is an int, but its default 't' is a "
                "string; write a string",
            ),
            (
                "      verbose: 1",
                "arg 'verbose' of step 'trainer' is 1 that is an int, but its default False is a "
                "bool; write a bool",
            ),
            (
                "      layers: 8",
                "arg 'layers' of step 'trainer' is 8 that is an int, but its default (8, 8) is a "
                "list; write a list",
            ),
        ],
    )
    def test_type_contradicting_the_default(self, tmp_path, line, message):
        """A value whose type the default's type rules out is refused at the value."""
        path = tmp_path / "config.yaml"
        text = VALID.replace("      verbose: false\n      name: null\n", line + "\n")
        column = line.index(":") + 3

        assert [f"{path}:9:{column}: {message}"] == self.problems(tmp_path, text)

    @pytest.mark.parametrize(
        "line",
        [
            "      lr: 3",
            "      name: null",
            "      batch_size: null",
            "      options: {a: [1]}",
            "      layers: []",
        ],
    )
    def test_compatible_types_pass(self, tmp_path, line):
        """An int for a float, None for anything, and anything where the default is None pass."""
        config = load_config(write(tmp_path, VALID.replace("      name: null", line)))

        assert None is validate_against(config, resolve)

    @pytest.mark.parametrize(
        ("source", "error"),
        [
            (f"{HERE}.missing", f"AttributeError: module '{HERE}' has no attribute 'missing'"),
            ("nowhere_zz.T", "ModuleNotFoundError: No module named 'nowhere_zz'"),
        ],
    )
    def test_source_that_cannot_be_imported(self, tmp_path, source, error):
        """An unresolvable source says why, at the source."""
        path = tmp_path / "config.yaml"
        text = VALID.replace(f"{HERE}.tune", source)

        expected = [
            f"{path}:22:13: '{source}' cannot be imported ({error}); check the dotted name and "
            "that its package is importable"
        ]
        assert expected == self.problems(tmp_path, text)

    def test_pipeline_source_must_be_a_pipeline(self, tmp_path):
        """The pipeline source must carry ``__zentrack_pipeline__``."""
        path = tmp_path / "config.yaml"
        text = VALID.replace(f"{HERE}.training", f"{HERE}.plain_function")

        lines = self.problems(tmp_path, text)

        expected = [
            f"{path}:2:11: '{HERE}.plain_function' is a function, not a pipeline; source must "
            "name a function decorated with @zentrack.pipeline"
        ]
        assert expected == lines

    @pytest.mark.parametrize("key", ["trainr", "trainer#1", "trainer#x", "Trainer"])
    def test_step_key_must_match_the_step_name(self, tmp_path, key):
        """The key is the step's name, or ``name#N`` (N >= 2) for later calls in the run."""
        path = tmp_path / "config.yaml"
        text = VALID.replace("  trainer#2:", f"  {key}:")

        expected = [
            f"{path}:12:3: the step key {key!r} does not match the name 'trainer' of its "
            "source; write 'trainer' (or 'trainer#2' for its second call)"
        ]
        assert expected == self.problems(tmp_path, text)

    def test_every_problem_in_one_error(self, tmp_path):
        """All problems are collected, in file order, before anything could run."""
        path = tmp_path / "config.yaml"
        text = (
            VALID.replace(f"{HERE}.training", f"{HERE}.missing")
            .replace("      name: null", "      lr: 'x'")
            .replace("extra: {anything: [1, 2]}", "extra: {anything: [1, 2]}\n      metric: 1")
        )

        lines = self.problems(tmp_path, text)

        assert [f"{path}:2:11", f"{path}:10:11", f"{path}:19:15"] == [
            line.split(": ")[0] for line in lines
        ]

    def test_resolve_errors_other_than_import_propagate(self, tmp_path):
        """An exception raised while importing user code is not hidden behind a ConfigError."""
        config = load_config(write(tmp_path, VALID))

        def broken(source: str) -> Any:
            raise ZeroDivisionError("in user code")

        with pytest.raises(ZeroDivisionError):
            validate_against(config, broken)
