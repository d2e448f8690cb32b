"""A generated corpus of config edits: value styles x hostile values x edit kinds.

Every case is a small config whose step ``t`` has an arg ``v`` written in one
style (plain, quoted, block scalar, flow or block collection, anchored, an
alias, an explicit key, empty ...) among siblings that YAML 1.1 and 1.2
readers read differently (``yes``, ``0x1F``, ``12:30``, ``1e-7``, ``[on,
off]``), with a uniquely named comment (``# c-NAME``) at every position a
comment can take.  One edit is made through the public API and saved.

Oracles, for each saved file:

* bytes: the file differs from the original only inside the region the edit
  may touch (the edited entry's lines, or the point where a key is added);
  a file without an edit is byte-identical; a CRLF file gains no bare LF.
* comments: every ``# c-NAME`` comment is still there, except the ones on
  the lines of items the edit removed (``owned``).
* values: ruamel's safe loader (YAML 1.2) and PyYAML's ``safe_load`` (YAML
  1.1) read the saved file as they read the original, with the edit made
  to that reading: exact types, key order included.

A ``ConfigError`` that names the file, leaves it unchanged and does not ask
to report a bug is an accepted refusal; any other exception is an error.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML

import zentrack as zt
from zentrack.exceptions import ConfigError

#: Strings that some reader takes for something else, or that need escapes.
HOSTILE_STRINGS: tuple[str, ...] = (
    "yes", "no", "on", "off", "y", "True", "null", "~", "", " x", "x ", "a: b", "a #b", "#x",
    "- x", "12:30", "1e-7", "1e3", "0x1F", "0o17", "+1", ".5", "1_000", ".inf", ".nan",
    "2001-01-01", "a\x85b", "a\u2028b", "a\u2029b", "a\tb", "a\nb", "a\n", "\ufeffx", "it's",
    'say "hi"', "back\\slash", "[x]", "{x: 1}", "*a", "&a", "!t", "%x", "|", ">", "---", "?",
    "-", "x" * 300,
)  # fmt: skip
#: An int too long for Python (and so for either reader) to read back: must be refused.
TOO_LONG_INT = 10**4300
#: Numbers, bools and null, the long and odd ones included.
HOSTILE_NUMBERS: tuple[Any, ...] = (
    0, -1, 10**30, -(10**4299), TOO_LONG_INT, -0.0, 1e-7, 5e-324, 1 / 3, math.nan, -math.inf,
    True, None,
)  # fmt: skip
#: Containers, empty and nested, holding hostile strings and keys.
HOSTILE_CONTAINERS: tuple[Any, ...] = (
    [], {}, [1, "on"], ("a: b", "#x"), {"a": "yes", "b": [1, None]},
    {"yes": 1, "on": [2.5], "12:30": "x"}, {"a": {"b": {"c": [1, [2, {"d": "no"}]]}}},
    [[1, 2], [], {"k": "v w"}],
)  # fmt: skip
SCALARS: tuple[Any, ...] = (*HOSTILE_STRINGS, *HOSTILE_NUMBERS)
#: The scalars shared out among the styles that meet only a few.
FEW_SCALARS: tuple[Any, ...] = (
    "yes", "", "a: b", "12:30", "a\x85b", "a\nb", "#x", 1e-7, None, True, 10**30, "0x1F",
)  # fmt: skip

HEAD = "# c-head\npipeline:\n  source: a.pipe  # c-src\n"
PIPELINE_ARGS = "  args: {lr: 1e-7, flags: [on, off]}\n"
STEP = "steps:\n  t:\n    source: a.T\n"
#: Block args before the target entry: a comment above, a YAML 1.1 misread.
BEFORE = "    args:\n      # c-before\n      first: yes  # c-first\n"
#: Block args after the target entry: more misreads, escapes and odd spellings.
AFTER = (
    "      # c-mid\n"
    "      sexa: 12:30  # c-sexa\n"
    '      odd: [0x1F, 1e-7, ~, .NaN, -.inf, 0o17, "a\\Nb", 123456789012345678901234567890]\n'
    "      last: 'on'  # c-last\n"
)
TAIL = "# c-tail\n"


@dataclass(frozen=True)
class Style:
    """How the target arg ``v`` is written in block args (lines indented 6 spaces)."""

    name: str
    kind: str  # "scalar", "seq" or "map"
    entry: str
    before: str = ""  # lines it needs before it, outside its region (an anchor)
    after: str = ""  # lines after it inside its region (an alias its edit may rewrite)
    owned: tuple[str, ...] = ()  # comments on lines of its items
    full: tuple[Any, ...] = ()  # hostile scalars it meets all of (others get a few)


STYLES: tuple[Style, ...] = (
    Style("plain-int", "scalar", "      v: 12  # c-v\n", full=HOSTILE_NUMBERS),
    Style("plain-str", "scalar", "      v: adam  # c-v\n"),
    Style("plain-multiline", "scalar", "      v: a long\n        plain text  # c-v\n"),
    Style("single", "scalar", "      v: 'it''s'  # c-v\n", full=HOSTILE_STRINGS),
    Style("double", "scalar", '      v: "tab\\there"  # c-v\n', full=HOSTILE_STRINGS),
    Style(
        "literal",
        "scalar",
        "      v: |  # c-v\n        line one\n        line two\n",
        full=HOSTILE_STRINGS,
    ),
    Style("folded", "scalar", "      v: >-  # c-v\n        folded\n        text\n"),
    Style("empty", "scalar", "      v:  # c-v\n"),
    Style("tilde", "scalar", "      v: ~  # c-v\n"),
    Style("quoted-key", "scalar", "      'v': 1  # c-v\n"),
    Style("explicit-key", "scalar", "      ? v  # c-q\n      : 0.5  # c-v\n"),
    Style("anchored", "scalar", "      v: &anc 0.5  # c-v\n", after="      w: *anc  # c-w\n"),
    Style(
        "anchored-str",
        "scalar",
        "      v: &anc adam  # c-v\n",
        after="      w: *anc  # c-w\n",
        full=HOSTILE_STRINGS,
    ),
    Style("alias", "scalar", "      v: *anc  # c-v\n", before="      src: &anc 7  # c-s\n"),
    Style("flow-seq", "seq", "      v: [1,  'a', \"b\"]  # c-v\n"),
    Style(
        "flow-seq-multiline",
        "seq",
        "      v: [\n        1,  # c-v1\n        2,\n      ]  # c-v\n",
        owned=("c-v1",),
    ),
    Style("flow-map", "map", "      v: {x: 1,  y: 'b'}  # c-v\n"),
    Style(
        "flow-map-multiline",
        "map",
        "      v: {\n        x: 'a',  # c-vx\n        y: 0.01,  # c-vy\n      }  # c-v\n",
        owned=("c-vx", "c-vy"),
    ),
    Style(
        "block-seq",
        "seq",
        "      v:  # c-v\n        # c-vfirst\n        - 64  # c-v1\n        - [1, 2]\n"
        "        - x  # c-vlast\n",
        owned=("c-v1", "c-vlast"),
    ),
    Style(
        "block-seq-unindented", "seq", "      v:\n      - a  # c-v1\n      - b\n", owned=("c-v1",)
    ),
    Style(
        "block-seq-empty-item",
        "seq",
        "      v:\n        - 1  # c-v1\n        -   # c-vempty\n        - 3  # c-vlast\n",
        owned=("c-v1", "c-vempty", "c-vlast"),
    ),
    Style(
        "block-map",
        "map",
        "      v:  # c-v\n        a: 1  # c-va\n        b:\n          - x\n",
        owned=("c-va",),
    ),
    Style("anchored-map", "map", "      v: &m  # c-v\n        a: 1  # c-va\n", owned=("c-va",)),
)

#: Entries of ``v`` inside flow args ``{first: yes, ENTRY, last: 'on'}``.
FLOW_ENTRIES: tuple[tuple[str, str], ...] = (
    ("flow-args-plain", "v: adam"),
    ("flow-args-single", "v: 'it''s'"),
    ("flow-args-double", 'v: "a\\tb"'),
    ("flow-args-seq", "v: [1, 'a']"),
    ("flow-args-map", "v: {x: 1}"),
    ("flow-args-no-colon", "v"),
)

#: How lines end: every line LF, every line CRLF, or one CRLF line in an LF file.
ENDINGS = ("lf", "crlf", "mixed")


@dataclass(frozen=True)
class Case:
    """One original file, one edit, and where the edit may change bytes."""

    category: str  # the edit kind
    style: str  # the target's style
    ending: str  # "lf", "crlf" or "mixed"
    name: str
    text: str
    live: Callable[[Any], None]  # makes the edit on a loaded Config
    plain: Callable[[dict[str, Any]], None]  # makes it on the plain args a reader read
    region: tuple[int, int] | None  # None: no edit, the file stays byte-identical
    owned: frozenset[str]  # comments the edit may remove
    insert: bool = False  # the edit only adds: the original survives whole around one chunk


@dataclass(frozen=True)
class Result:
    case: Case
    failures: tuple[str, ...]  # "bytes", "comments", "values", "errors"
    refused: bool
    detail: str


# --------------------------------------------------------------------------- edits


def _args(config: Any) -> Any:
    return config.steps["t"].args


def _assign(key: str, value: Any) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        _args(config)[key] = copy.deepcopy(value)

    def plain(args: dict[str, Any]) -> None:
        args[key] = _as_lists(value)

    return live, plain


def _set(value: Any) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        config.set("t.v", copy.deepcopy(value))

    def plain(args: dict[str, Any]) -> None:
        args["v"] = _as_lists(value)

    return live, plain


def _append(value: Any) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        _args(config)["v"].append(copy.deepcopy(value))

    def plain(args: dict[str, Any]) -> None:
        args["v"].append(_as_lists(value))

    return live, plain


def _add_inner(value: Any) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        _args(config)["v"]["zz"] = copy.deepcopy(value)

    def plain(args: dict[str, Any]) -> None:
        args["v"]["zz"] = _as_lists(value)

    return live, plain


def _delete(key: str) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        del _args(config)[key]

    def plain(args: dict[str, Any]) -> None:
        del args[key]

    return live, plain


def _move_to_end(key: str) -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    def live(config: Any) -> None:
        args = _args(config)
        args[key] = args.pop(key)

    def plain(args: dict[str, Any]) -> None:
        args[key] = args.pop(key)

    return live, plain


def _nothing() -> tuple[Callable[[Any], None], Callable[[dict[str, Any]], None]]:
    return (lambda config: None), (lambda args: None)


def _as_lists(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_as_lists(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_lists(item) for key, item in value.items()}
    return value


def _shown(value: Any) -> str:
    if type(value) is int and value.bit_length() > 256:
        return f"int of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}...{len(text)}"


# --------------------------------------------------------------------------- generation


def _endings(pieces: list[str], ending: str) -> list[str]:
    """The pieces with every line ending CRLF, or only the first line's (``mixed``)."""
    if ending == "crlf":
        return [piece.replace("\n", "\r\n") for piece in pieces]
    if ending == "mixed":
        return [pieces[0].replace("\n", "\r\n", 1), *pieces[1:]]
    return pieces


#: Edits that only add text: appending an item, adding a key.
_INSERTS = frozenset({"append", "add-inner-key", "add-key"})


def _rotated(values: tuple[Any, ...], turn: int, count: int) -> tuple[Any, ...]:
    """``count`` of ``values`` starting at the ``turn``-th group, so styles share them out."""
    return tuple(values[(turn * count + i) % len(values)] for i in range(count))


def _block_cases(style: Style, turn: int, ending: str) -> Iterator[Case]:
    """The edits of ``v`` written in ``style`` inside block args.

    Styles that keep a string's own style (quotes, block scalars, an anchor)
    meet every hostile scalar; the others a few, shared out by ``turn``.
    Files with other line ends get fewer edits of each kind.
    """
    label = style.name if ending == "lf" else f"{style.name}/{ending}"

    def make(category: str, name: str, edit: Any, where: str, owned: tuple[str, ...]) -> Case:
        insert = category in _INSERTS
        head = HEAD + PIPELINE_ARGS + STEP + BEFORE + style.before
        body = style.entry + style.after
        pieces = _endings([head, body, AFTER, TAIL], ending)
        start = len(pieces[0])
        region: tuple[int, int] | None
        if where == "entry":
            region = (start, start + len(pieces[1]))
        elif where == "end":  # a key added after the last arg
            region = (len("".join(pieces[:3])),) * 2
        elif where == "from-entry":  # the entry moved after the last arg
            region = (start, len("".join(pieces[:3])))
        elif where == "args":  # the first arg moved after the last
            first = pieces[0].index("      # c-before")
            region = (first, len("".join(pieces[:3])))
        else:
            region = None
        return Case(
            category, style.name, ending, f"{category}/{label}/{name}", "".join(pieces), *edit,
            region, frozenset(owned), insert,
        )  # fmt: skip

    kind = "scalar" if style.kind == "scalar" else "container"
    to_scalar = f"{kind}-to-scalar"
    if ending != "lf":
        value = _rotated(FEW_SCALARS, turn, 1)[0]
        yield make(to_scalar, _shown(value), _assign("v", value), "entry", style.owned)
        if ending == "crlf":
            extend = {"seq": _append, "map": _add_inner}.get(style.kind)
            if extend is not None:
                yield make("append", "[1, 'on']", extend([1, "on"]), "entry", ())
            yield make("add-key", "{'a': 'yes'}", _assign("zz", {"a": "yes"}), "end", ())
        yield make("no-edit", "-", _nothing(), "none", ())
        return
    for value in style.full or _rotated(FEW_SCALARS, turn, 4):
        yield make(to_scalar, _shown(value), _assign("v", value), "entry", style.owned)
    for value in _rotated(HOSTILE_CONTAINERS, turn, 2):
        yield make(f"{kind}-to-container", _shown(value), _assign("v", value), "entry", style.owned)
    value = _rotated(FEW_SCALARS + HOSTILE_CONTAINERS, turn, 1)[0]
    yield make("config-set", _shown(value), _set(value), "entry", style.owned)
    extend = {"seq": ("append", _append), "map": ("add-inner-key", _add_inner)}.get(style.kind)
    if extend is not None:
        for value in _rotated(SCALARS, turn, 3) + _rotated(HOSTILE_CONTAINERS, turn, 1):
            yield make(extend[0], _shown(value), extend[1](value), "entry", ())
    value = _rotated(FEW_SCALARS + HOSTILE_CONTAINERS, turn, 1)[0]
    yield make("add-key", _shown(value), _assign("zz", value), "end", ())
    comments = tuple(re.findall(r"# (c-[\w-]+)", style.entry))
    yield make("delete-key", "v", _delete("v"), "entry", comments)
    yield make("reorder", "v-last", _move_to_end("v"), "from-entry", ())
    yield make("reorder", "first-last", _move_to_end("first"), "args", ())
    yield make("no-edit", "-", _nothing(), "none", ())


def _flow_cases(name: str, entry: str) -> Iterator[Case]:
    """Every edit of ``v`` written as ``entry`` inside flow args."""
    prefix = HEAD + PIPELINE_ARGS + STEP + "    args: {first: yes, "
    line = f"{prefix}{entry}, last: 'on'}}  # c-args\n"
    text = line + TAIL
    start, end = len(prefix), len(prefix) + len(entry)
    close = line.index("}  # c-args")
    spans = {"entry": (start - 2, end), "end": (close, close), "all": (len(prefix) - 12, close)}

    def make(category: str, label: str, edit: Any, where: str, owned: tuple[str, ...]) -> Case:
        region = spans.get(where)
        return Case(category, name, "lf", f"{category}/{name}/{label}", text, *edit, region,
                    frozenset(owned), category in _INSERTS)  # fmt: skip

    kind = "container" if entry.startswith(("v: [", "v: {")) else "scalar"
    for value in HOSTILE_STRINGS if name == "flow-args-plain" else FEW_SCALARS[:6]:
        yield make(f"{kind}-to-scalar", _shown(value), _assign("v", value), "entry", ())
    for value in HOSTILE_CONTAINERS[2:5]:
        yield make(f"{kind}-to-container", _shown(value), _assign("v", value), "entry", ())
    if entry.startswith("v: ["):
        for value in FEW_SCALARS[:4]:
            yield make("append", _shown(value), _append(value), "entry", ())
    for value in FEW_SCALARS[:2]:
        yield make("add-key", _shown(value), _assign("zz", value), "end", ())
    yield make("delete-key", "v", _delete("v"), "entry", ())
    yield make("reorder", "v-last", _move_to_end("v"), "all", ())
    yield make("reorder", "first-last", _move_to_end("first"), "all", ())
    yield make("no-edit", "-", _nothing(), "none", ())


def cases() -> list[Case]:
    """The whole corpus, in a fixed order."""
    found: list[Case] = []
    for turn, style in enumerate(STYLES):
        for ending in ENDINGS if turn % 3 == 0 else ENDINGS[:2]:
            found += _block_cases(style, turn, ending)
    for name, entry in FLOW_ENTRIES:
        found += _flow_cases(name, entry)
    return found


# --------------------------------------------------------------------------- checking


def _typed(value: Any) -> Any:
    """A value with its exact types spelled out, NaN equal to NaN, key order kept."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if math.isnan(value) else repr(value))
    if kind in (bool, int, str) or value is None:
        return (kind.__name__, value)
    if kind is list:
        return ("list", [_typed(item) for item in value])
    if kind is dict:
        return ("map", [(_typed(key), _typed(item)) for key, item in value.items()])
    return (kind.__name__, repr(value))


def _read12(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


def _read11(text: str) -> Any:
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=256)
def _original(text: str, reader: Callable[[str], Any]) -> Any:
    """How a reader reads an original (many cases share one); deep-copied before use."""
    return reader(text)


def _comments(text: str) -> Counter[str]:
    return Counter(re.findall(r"# (c-[\w-]+)", text))


def _changed(original: str, saved: str) -> tuple[int, int]:
    """The span of ``original`` that differs from ``saved`` (common head and tail cut off)."""
    limit = min(len(original), len(saved))
    head = 0
    while head < limit and original[head] == saved[head]:
        head += 1
    tail = 0
    while tail < limit - head and original[-1 - tail] == saved[-1 - tail]:
        tail += 1
    return head, len(original) - tail


def _inserted_within(original: str, saved: str, region: tuple[int, int]) -> bool:
    """Whether ``saved`` is ``original`` with one chunk inserted at a point of ``region``."""
    if len(saved) < len(original):
        return False
    head = 0
    while head < len(original) and original[head] == saved[head]:
        head += 1
    tail = 0
    while tail < len(original) and original[-1 - tail] == saved[-1 - tail]:
        tail += 1
    # the insertion points p with original[:p] a prefix and original[p:] a suffix of saved
    low, high = len(original) - tail, head
    return low <= high and max(low, region[0]) <= min(high, region[1])


def check(case: Case, path: Path) -> Result:
    """Make the case's edit on a real file and judge the saved text by every oracle."""
    path.write_bytes(case.text.encode("utf-8"))
    try:
        config = zt.load_config(path)
    except Exception as exc:  # the originals are valid configs
        return Result(case, ("errors",), False, f"load: {type(exc).__name__}: {exc}")
    try:
        case.live(config)
        config.save()
    except ConfigError as exc:
        message = str(exc)
        unchanged = path.read_bytes() == case.text.encode("utf-8")
        if str(path) in message and "report this" not in message and unchanged:
            return Result(case, (), True, message)
        return Result(case, ("errors",), False, f"save: ConfigError: {message}")
    except Exception as exc:
        return Result(case, ("errors",), False, f"save: {type(exc).__name__}: {exc}")
    saved = path.read_bytes().decode("utf-8")
    failures: list[str] = []
    details: list[str] = []

    start, stop = _changed(case.text, saved)
    if case.region is None:
        moved = saved != case.text
    elif case.insert:  # saved == original[:p] + new + original[p:], p inside the region
        moved = not _inserted_within(case.text, saved, case.region)
    else:  # saved == original[:a] + anything + original[b:], with a..b inside the region
        a, b = case.region
        moved = not (
            saved.startswith(case.text[:a])
            and saved.endswith(case.text[b:])
            and len(saved) >= a + len(case.text) - b
        )
    bare_lf = "\r\n" in case.text and case.text.count("\r\n") == case.text.count("\n")
    if moved or (bare_lf and saved.count("\r\n") != saved.count("\n")):
        failures.append("bytes")
        details.append(f"bytes changed at {start}..{stop}, allowed {case.region}")

    lost = sorted((_comments(case.text) - _comments(saved)).keys() - case.owned)
    if lost:
        failures.append("comments")
        details.append(f"lost {lost}")

    for reader, name in ((_read12, "yaml1.2"), (_read11, "yaml1.1")):
        data = copy.deepcopy(_original(case.text, reader))
        case.plain(data["steps"]["t"]["args"])
        try:
            read = reader(saved)
        except Exception as exc:
            read = f"unreadable: {type(exc).__name__}"
        if _typed(read) != _typed(data):
            failures.append("values")
            details.append(f"{name} reads other values")
            break
    detail = "; ".join(details)
    if failures:
        detail += f"\n    --- original\n{case.text}    --- saved\n{saved}"
    return Result(case, tuple(failures), False, detail)


def failure_counts(results: list[Result]) -> Counter[str]:
    """How many cases failed each oracle (a case may fail several)."""
    counts: Counter[str] = Counter({"bytes": 0, "comments": 0, "values": 0, "errors": 0})
    for result in results:
        counts.update(result.failures)
    return counts


def summary(cases: list[Case], results: list[Result], elapsed: float, cpu: float) -> str:
    """Failure rates by edit kind, style and line ends, with an example of each failure."""
    size = sum(len(case.text) for case in cases)
    lines = [
        f"yaml corpus: {len(cases)} cases, {size} bytes of YAML, {elapsed:.1f} s "
        f"({cpu:.1f} s of CPU)",
        f"{'':34}{'cases':>6}{'refused':>8}{'bytes':>7}{'comments':>9}{'values':>7}"
        f"{'errors':>7}{'any %':>7}",
    ]
    for title, key in (("edit", "category"), ("style", "style"), ("line ends", "ending")):
        groups: dict[str, list[Result]] = {}
        for result in results:
            groups.setdefault(getattr(result.case, key), []).append(result)
        lines.append(f"by {title}:")
        for group, members in [*sorted(groups.items()), ("ALL", results)]:
            counts = failure_counts(members)
            failed = sum(1 for result in members if result.failures)
            refused = sum(1 for result in members if result.refused)
            lines.append(
                f"  {group:32}{len(members):>6}{refused:>8}{counts['bytes']:>7}"
                f"{counts['comments']:>9}{counts['values']:>7}{counts['errors']:>7}"
                f"{100 * failed / len(members):>7.1f}"
            )
    shown: set[tuple[str, str]] = set()
    for result in results:
        for failure in result.failures:
            if (failure, result.case.category) not in shown:
                shown.add((failure, result.case.category))
                lines.append(f"first {failure} failure: {result.case.name}: {result.detail}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``python -m tests.yaml_corpus [TEXT]``: print the summary and each failure whose
    case name contains TEXT, with its original and saved text (for fixing the patcher)."""
    import tempfile
    import time

    started, cpu = time.perf_counter(), time.process_time()
    found = [case for case in cases() if not argv or argv[0] in case.name]
    with tempfile.TemporaryDirectory() as directory:
        results = [check(case, Path(directory) / "corpus.yaml") for case in found]
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for result in results:
        if result.failures:
            print(f"## {result.case.name} {list(result.failures)}\n{result.detail}\n")
    print(summary(found, results, elapsed, cpu))
    return 1 if any(result.failures for result in results) else 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
