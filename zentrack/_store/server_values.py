"""PostgreSQL and MySQL stores: what MLMD cannot write there, and what zentrack writes instead.

MLMD's SQL backends cannot store everything its SQLite backend can
(measured with ml-metadata 1.17.1, see ``docs/mlmd.md``):

* PostgreSQL: any backslash in a string (value, name, external id, URI)
  makes MLMD build invalid SQL (``'E'C:\\x'``, a syntax error); a string
  value whose index row passes 2,704 bytes (an incompressible value of
  ~2.7 kB) raises an index-size error.
* MySQL/MariaDB: a statement over ``max_allowed_packet`` (16 MiB by
  default, escaping doubles some bytes) fails and leaves the connection
  stuck; names compare case-insensitively, accent-insensitively and ignore
  trailing spaces, so ``lr``/``LR`` clash as property keys and
  ``Train``/``train`` as step types or pipelines.
* Both: ``int_value`` is a 32-bit column; names, external ids and property
  keys are ``VARCHAR(255)``; a NUL ends a string.

:class:`ServerStore` wraps the MLMD store object.  Every node, type and event
passed to it is copied and rewritten into the *server form*, every one read
back is rewritten to what was written, so the rest of zentrack (and its
readers) sees exactly the values it wrote.  The server form stays plain
MLMD:

* a string value MLMD cannot store verbatim is a ``proto_value`` holding a
  ``google.protobuf.StringValue``; an int beyond 32 bits an ``Int64Value``;
  a non-finite double a ``DoubleValue``; a string value longer than 4 MiB
  on MySQL is split into properties ``K``, ``K#2``, ... with ``K#parts``
  (an int) saying how many;
* a name (type and context names, external ids, property keys) that cannot
  be stored verbatim is written ``~`` + its percent-escaped text after
  zentrack's own prefix (``zentrack.step.~back%5Cslash``); on MySQL
  upper-case letters are marked with ``^`` (``zentrack.step.~^Trainer^Step``)
  and non-ASCII is escaped, so two names only compare equal when they are
  equal; a name longer than 240 characters keeps its first part and ends
  with ``%~`` and 16 hex digits of its SHA-256.

The wrapper itself, and connecting, are in :mod:`.server`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from typing import Any, Final
from urllib.parse import unquote

import attrs

from zentrack._store.schema import (
    FINGERPRINT_CONTEXT,
    METRIC_PREFIX,
    OUTPUT_ARTIFACT,
    PIPELINE_CONTEXT,
    PROP_FINGERPRINT,
    PROP_PIPELINE,
    RUN_CONTEXT,
    STEP_TYPE_PREFIX,
    STRUCT_PREFIX,
)

log = logging.getLogger("zentrack")

SERVER_KINDS: Final = frozenset({"postgresql", "mysql"})
#: Starts the escaped form of a name (after zentrack's own prefix, if any).
MARK: Final = "~"
#: Separates a shortened name from the hash of the whole name.
HASHED: Final = "%~"
#: Longest stored name: VARCHAR(255) less room for the ``#parts`` suffix.
NAME_MAX: Final = 240
#: Longest stored URI or event path key on PostgreSQL (an indexed ``text``: 600
#: characters are at most 2,400 bytes, under the 2,704-byte index row limit).
TEXT_MAX: Final = 600
#: Largest string value plus key (UTF-8 bytes) in one PostgreSQL index row (limit 2,704).
PG_INDEX_BYTES: Final = 2600
#: Largest part of a string value on MySQL (escaping at most doubles it; packets hold 16 MiB).
MYSQL_PART_BYTES: Final = 4 * 2**20
PARTS: Final = "#parts"
_INT32: Final = 2**31
_HASH_DIGITS: Final = 16
_WRAPPERS: Final = "type.googleapis.com/google.protobuf."

#: zentrack's own prefixes: kept verbatim so its types and ids stay readable.
HEADS: Final = (
    f"{RUN_CONTEXT}/",
    f"{PIPELINE_CONTEXT}/",
    f"{FINGERPRINT_CONTEXT}/",
    f"{OUTPUT_ARTIFACT}/",
    METRIC_PREFIX,
    STEP_TYPE_PREFIX,
)
#: zentrack's own names with upper-case letters (kept verbatim on MySQL).
#: ``zentrack.pipeline`` / ``zentrack.fingerprint`` are property keys, the
#: others type names: no two of them share a uniqueness scope.
FIXED: Final = frozenset(
    {
        RUN_CONTEXT,
        PIPELINE_CONTEXT,
        FINGERPRINT_CONTEXT,
        OUTPUT_ARTIFACT,
        PROP_PIPELINE,
        PROP_FINGERPRINT,
    }
)
_FOLDED_HEADS: Final = tuple({h.lower() for h in HEADS} | {n.lower() for n in FIXED})

# A name stored verbatim: PostgreSQL refuses backslashes, both cut at NUL, '#'
# is kept for the parts of split values; MySQL also needs names that only
# compare equal when they are equal (printable ASCII, no upper case, no
# trailing space).  Neither may start with the mark.
_PG_VERBATIM: Final = re.compile(r"[^~\\\0#][^\\\0#]*")
_MYSQL_VERBATIM: Final = re.compile(r"[ -\"$-@\[-}][ -\"$-@\[-~]*(?<! )")
#: Characters the escaped form keeps as they are (everything else is %XX or ^X).
_KEEP_PG: Final = r"[^%#^\\\0-\x1f\x7f]"
_KEEP_MYSQL: Final = r"[ !\"$&-@\[\]_-}~]"
_KEEP: Final = {False: re.compile(_KEEP_PG), True: re.compile(_KEEP_MYSQL)}
#: A shortened name exactly as :func:`encode_name` writes it, by ``folds_case``.
_SHORTENED: Final = {
    False: re.compile(rf"~(?:{_KEEP_PG}|%[0-9A-F]{{2}})*%~[0-9a-f]{{{_HASH_DIGITS}}}"),
    True: re.compile(rf"~(?:{_KEEP_MYSQL}|\^[A-Z]|%[0-9A-F]{{2}})*%~[0-9a-f]{{{_HASH_DIGITS}}}"),
}


@attrs.frozen
class Backend:
    """What one SQL backend can store verbatim.

    Attributes:
        kind: ``"postgresql"`` or ``"mysql"``.
        folds_case: names compare case-insensitively (MySQL's collations).
        index_bytes: most UTF-8 bytes of key plus string value (PostgreSQL's
            string index), or ``None``.
        part_bytes: most UTF-8 bytes of one stored string (MySQL's packet),
            or ``None``.
    """

    kind: str
    folds_case: bool
    index_bytes: int | None
    part_bytes: int | None


POSTGRESQL: Final = Backend("postgresql", folds_case=False, index_bytes=PG_INDEX_BYTES,
                            part_bytes=None)
MYSQL: Final = Backend("mysql", folds_case=True, index_bytes=None, part_bytes=MYSQL_PART_BYTES)
BACKENDS: Final = {"postgresql": POSTGRESQL, "mysql": MYSQL}


# -- names ---------------------------------------------------------------------------------


def _head(name: str) -> str:
    if not name.startswith("zentrack."):
        return ""
    for head in HEADS:
        if name.startswith(head):
            return head
    return ""


def _verbatim(name: str, head: str, backend: Backend, limit: int) -> bool:
    """Tell whether ``backend`` stores ``name`` as it is, and tells it apart from every other."""
    if len(name) > limit:
        return False
    rest = name[len(head) :]
    if not rest:
        return True
    if not backend.folds_case:
        return _PG_VERBATIM.fullmatch(rest) is not None
    if name in FIXED:
        return True
    if _MYSQL_VERBATIM.fullmatch(rest) is None:
        return False
    # A lower-case twin of one of zentrack's own names would compare equal to it.
    return bool(head) or not name.startswith(_FOLDED_HEADS)


def _escape(text: str, backend: Backend) -> str:
    """Percent-escape ``text``; on MySQL also mark upper case (``^``) and escape non-ASCII."""
    keep = _KEEP[backend.folds_case].fullmatch
    out = []
    for char in text:
        if keep(char):
            out.append(char)
        elif backend.folds_case and "A" <= char <= "Z":
            out.append("^" + char)
        else:
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass")))
    escaped = "".join(out)
    stripped = escaped.rstrip(" ")  # MySQL ignores trailing spaces when comparing
    return stripped + "%20" * (len(escaped) - len(stripped))


def _shorten(name: str, encoded: str, limit: int) -> str:
    """Cut ``encoded`` to ``limit`` characters, ending with a hash of the whole name."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
    cut = encoded[: limit - len(HASHED) - _HASH_DIGITS]
    # Never end inside an escape (%XX) or right after a case mark (^).
    percent = cut.rfind("%", len(cut) - 2)
    if percent >= 0:
        cut = cut[:percent]
    if cut.endswith("^"):
        cut = cut[:-1]
    return f"{cut}{HASHED}{digest}"


@functools.lru_cache(maxsize=8192)  # the same keys and type names recur in every record
def encode_name(name: str, backend: Backend, limit: int = NAME_MAX) -> str:
    """Return the form of ``name`` that ``backend`` stores and compares exactly.

    Names that need no change (almost all) are returned as they are.
    Deterministic, so lookups by name work; :func:`decode_name` undoes it,
    except for shortened names, which encode to themselves when reused.
    """
    head = _head(name)
    if _verbatim(name, head, backend, limit):
        return name
    rest = name[len(head) :]
    if len(name) <= limit and _SHORTENED[backend.folds_case].fullmatch(rest):
        return name  # a shortened name read back from the store
    encoded = f"{head}{MARK}{_escape(rest, backend)}"
    if len(encoded) > limit:
        encoded = _shorten(name, encoded, limit)
    return encoded


def decode_name(stored: str) -> str:
    """Return the name whose stored form is ``stored`` (a shortened one stays as it is)."""
    head = _head(stored)
    if not stored.startswith(MARK, len(head)) or HASHED in stored:
        return stored
    return head + unquote(stored[len(head) + 1 :].replace("^", ""), errors="surrogatepass")


def encode_text(text: str, backend: Backend) -> str:
    """The stored form of a URI or an event path key: like a name, but longer and case kept.

    Neither is unique, so MySQL's case folding does not matter; only a NUL
    (and, on PostgreSQL, a backslash or an over-long text) does.
    """
    if not backend.folds_case:
        return encode_name(text, backend, TEXT_MAX)
    if "\0" in text or text.startswith(MARK):
        return f"{MARK}{_escape(text, POSTGRESQL)}"
    return text


# -- values --------------------------------------------------------------------------------


def _pb() -> Any:
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2


def _wrappers() -> Any:
    import importlib  # no type stubs for protobuf here: keep mypy out of it

    return importlib.import_module("google.protobuf.wrappers_pb2")


def _fits(text: str, key: str, backend: Backend) -> bool:
    if "\0" in text or text.startswith(STRUCT_PREFIX):
        return False
    if backend.index_bytes is not None:
        if "\\" in text:
            return False
        size = len(text) + len(key)
        if size * 4 > backend.index_bytes:  # only long strings pay for encoding
            size = len(text.encode()) + len(key.encode())
        return size <= backend.index_bytes
    return True


def native_text(text: str, key: str, backend: Backend) -> bool:
    """Whether a string value under the stored key ``key`` is kept in ``string_value``.

    Else it is a ``proto_value`` (or split into parts), which no filter on
    ``string_value`` finds: see :func:`_encode_properties`.
    """
    limit = backend.part_bytes
    if limit is not None and len(text) * 4 > limit and len(text.encode()) > limit:
        return False
    return _fits(text, key, backend)


def _split(text: str, part_bytes: int) -> list[str]:
    """Split ``text`` at character boundaries into parts of at most ``part_bytes`` bytes."""
    data = text.encode("utf-8")
    parts = []
    start = 0
    while start < len(data):
        end = min(start + part_bytes, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1  # back off a UTF-8 continuation byte
        parts.append(data[start:end].decode("utf-8"))
        start = end
    return parts


def _pack(value: Any, wrapper: str, field: Any) -> None:
    """Replace the content of an MLMD Value by ``google.protobuf.<wrapper>``."""
    message = getattr(_wrappers(), wrapper)(value=field)
    value.proto_value.Pack(message)


def _encode_properties(props: Any, backend: Backend, names: dict[str, str]) -> None:
    """Rewrite a properties map into the server form, in place."""
    for key in list(props):
        stored = _remember(names, key, encode_name(key, backend))
        if stored != key:
            props[stored].CopyFrom(props[key])
            del props[key]
        value = props[stored]
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text = value.string_value
            limit = backend.part_bytes
            if limit is not None and len(text) * 4 > limit and len(text.encode()) > limit:
                parts = _split(text, limit)
                for index, part in enumerate(parts[1:], start=2):
                    _pack(props[f"{stored}#{index}"], "StringValue", part)
                props[stored + PARTS].int_value = len(parts)
                _pack(props[stored], "StringValue", parts[0])
            elif not _fits(text, stored, backend):
                _pack(value, "StringValue", text)
        elif kind == "int_value" and not -_INT32 <= value.int_value < _INT32:
            _pack(value, "Int64Value", value.int_value)
        elif kind == "double_value" and not math.isfinite(value.double_value):
            _pack(value, "DoubleValue", value.double_value)


def _decode_properties(props: Any, names: dict[str, str]) -> None:
    """Undo :func:`_encode_properties` on a properties map read back, in place."""
    keys = list(props)
    for key in keys:
        if key.endswith(PARTS) and props[key].WhichOneof("value") == "int_value":
            head = key[: -len(PARTS)]
            count = props[key].int_value
            wanted = [head] + [f"{head}#{i}" for i in range(2, count + 1)]
            if all(k in props for k in wanted):
                text = "".join(_unwrap_text(props[k]) for k in wanted)
                for k in wanted[1:]:
                    del props[k]
                del props[key]
                props[head].string_value = text
    for key in list(props):
        value = props[key]
        if value.WhichOneof("value") == "proto_value":
            _unwrap(value)
        name = _recall(names, key)
        if name != key:
            props[name].CopyFrom(value)
            del props[key]


def _unwrap_text(value: Any) -> str:
    if value.WhichOneof("value") == "proto_value":
        _unwrap(value)
    return str(value.string_value)


_NATIVE_FIELDS: Final = {
    _WRAPPERS + "StringValue": ("StringValue", "string_value"),
    _WRAPPERS + "Int64Value": ("Int64Value", "int_value"),
    _WRAPPERS + "DoubleValue": ("DoubleValue", "double_value"),
}


def _unwrap(value: Any) -> None:
    """Turn a StringValue/Int64Value/DoubleValue ``proto_value`` back into the native field."""
    found = _NATIVE_FIELDS.get(value.proto_value.type_url)
    if found is not None:
        wrapper, field = found
        content = getattr(_wrappers(), wrapper).FromString(value.proto_value.value).value
        setattr(value, field, content)


def _remember(names: dict[str, str], name: str, stored: str) -> str:
    """Note which name a changed stored form stands for (shortened forms cannot be decoded)."""
    if stored != name:
        if len(names) > 100_000:
            names.clear()
        names[stored] = name
    return stored


def _recall(names: dict[str, str], stored: str) -> str:
    name = names.get(stored)
    return name if name is not None else decode_name(stored)


# -- nodes, types, events ------------------------------------------------------------------


class Codec:
    """Rewrites MLMD protos to and from the server form of one backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        #: stored form -> name, for the names this process changed
        self.names: dict[str, str] = {}

    def name(self, name: str) -> str:
        return _remember(self.names, name, encode_name(name, self.backend))

    def text(self, text: str) -> str:
        return _remember(self.names, text, encode_text(text, self.backend))

    def encode(self, message: Any) -> Any:
        """Return a rewritten copy of a node, a type or an event (anything else as it is)."""
        pb = _pb()
        if isinstance(message, (pb.Execution, pb.Artifact, pb.Context)):
            copy = type(message)()
            copy.CopyFrom(message)
            self._encode_node(copy)
            return copy
        if isinstance(message, (pb.ExecutionType, pb.ArtifactType, pb.ContextType)):
            copy = type(message)()
            copy.CopyFrom(message)
            copy.name = self.name(copy.name)
            if copy.HasField("external_id"):
                copy.external_id = self.name(copy.external_id)
            for key in list(copy.properties):
                stored = self.name(key)
                if stored != key:
                    copy.properties[stored] = copy.properties[key]
                    del copy.properties[key]
            return copy
        if isinstance(message, pb.Event):
            copy = pb.Event()
            copy.CopyFrom(message)
            for step in copy.path.steps:
                if step.WhichOneof("value") == "key":
                    step.key = self.text(step.key)
            return copy
        return message

    def _encode_node(self, node: Any) -> None:
        if node.HasField("name"):
            node.name = self.name(node.name)
        if node.HasField("external_id"):
            node.external_id = self.name(node.external_id)
        if node.HasField("type"):
            node.type = self.name(node.type)
        if hasattr(node, "uri") and node.HasField("uri"):
            node.uri = self.text(node.uri)
        _encode_properties(node.properties, self.backend, self.names)
        _encode_properties(node.custom_properties, self.backend, self.names)

    def decode(self, result: Any) -> Any:
        """Rewrite, in place, the protos in a result read from the store; return it."""
        if isinstance(result, (list, tuple)):
            for item in result:
                self.decode(item)
            return result
        pb = _pb()
        if isinstance(result, (pb.Execution, pb.Artifact, pb.Context)):
            for field in ("name", "external_id", "type", "uri"):
                if hasattr(result, field) and result.HasField(field):
                    setattr(result, field, _recall(self.names, getattr(result, field)))
            _decode_properties(result.properties, self.names)
            _decode_properties(result.custom_properties, self.names)
        elif isinstance(result, (pb.ExecutionType, pb.ArtifactType, pb.ContextType)):
            result.name = _recall(self.names, result.name)
            if result.HasField("external_id"):
                result.external_id = _recall(self.names, result.external_id)
            for key in list(result.properties):
                name = _recall(self.names, key)
                if name != key:
                    result.properties[name] = result.properties[key]
                    del result.properties[key]
        elif isinstance(result, pb.Event):
            for step in result.path.steps:
                if step.WhichOneof("value") == "key":
                    step.key = _recall(self.names, step.key)
        elif isinstance(result, pb.LineageGraph):
            for field in ("artifact_types", "execution_types", "context_types", "artifacts",
                          "executions", "contexts", "events"):
                self.decode(list(getattr(result, field)))
        return result

    def encode_args(self, args: Any) -> Any:
        """Encode the protos in (nested lists and tuples of) call arguments."""
        if isinstance(args, list):
            return [self.encode_args(a) for a in args]
        if isinstance(args, tuple):
            return tuple(self.encode_args(a) for a in args)
        return self.encode(args)
