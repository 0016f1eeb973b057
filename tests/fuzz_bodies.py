"""Seeded generator of bad request bodies for the fuzz suite (tests/test_fuzz.py).

`generate(shape, seed)` turns what an endpoint takes (a `Shape`: valid example documents, how they
are encoded, which fields the endpoint checks) into at least 1,000 `Body` values in ten families:

- ``random_bytes``: random bytes, printable noise, JSON-looking prefixes;
- ``truncated``: a valid body cut short;
- ``deep_nesting``: ``[`` / ``{"a":`` nested 33 to 100,000 levels, closed or not, at the top or in a field;
- ``huge``: bodies exactly at the size limit, one byte over, 2x, 4x, 16x; texts at the message
  limit and one character over; long keys, many keys, long arrays, multi-byte padding;
- ``wrong_types``: every checked field replaced by a value of every other JSON type, or missing;
  the whole body a scalar or an array; random values of random types;
- ``unicode``: NUL, unpaired and reversed surrogates, RTL overrides, zero-width and combining
  characters, emoji sequences, non-characters, invalid UTF-8, UTF-16 and UTF-32 bodies;
- ``content_types``: the valid document sent as JSON, as a form, as multipart, as text, without a
  content type, with a wrong charset;
- ``empty``: nothing, blanks, ``{}``, ``[]``, ``null``, ``""``, ``0``;
- ``random_json``: random JSON documents of random shapes;
- ``odd_json``: NaN and Infinity, duplicate keys, trailing commas, comments, single quotes, huge
  numbers, a byte-order mark.

Each body says what any correct endpoint must answer (`Body.expect`): ``413`` (over the size
limit), ``4xx`` (cannot be read as the endpoint's format at all), ``refuse`` (readable, but a
checked field has the wrong type, unstorable text or too many characters: an endpoint that checks
its fields answers 4xx) or ``any`` (well formed; the endpoint may accept it). The same seed gives
the same bodies.
"""

from __future__ import annotations

import copy
import json
import random
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 4096
FAMILIES = (
    "random_bytes",
    "truncated",
    "deep_nesting",
    "huge",
    "wrong_types",
    "unicode",
    "content_types",
    "empty",
    "random_json",
    "odd_json",
)
EXPECTATIONS = ("413", "4xx", "refuse", "any")
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain;charset=UTF-8"

WRONG_VALUES: Tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    2**64,
    -(2**63),
    "",
    "x",
    "123",
    [],
    [1],
    ["x"],
    {},
    {"a": 1},
)
"""One or more values of every JSON type: a field of one type gets each value of the others."""

UNICODE: Tuple[str, ...] = (
    "\u0000",
    "a\u0000b",
    "\ud800",
    "\udfff",
    "x\udc00\ud800y",
    "\ud83d",
    "\ude00 tail",
    "\u202egnp.exe",
    "\u200f\u05e9\u05dc\u05d5\u05dd",
    "\u0645\u0631\u062d\u0628\u0627",
    "\ufeffBOM",
    "\uffff",
    "\ufffe",
    "\U0010ffff",
    "\U0001f44d\U0001f3fd",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\U0001f3f3\ufe0f\u200d\U0001f308",
    "Z\u0337\u0322\u0327\u031ba\u0334l\u0338g\u0337o\u0335",
    "\u0301",
    "e\u0301",
    "\u00a0nbsp",
    "\u2028line\u2029para",
    "\x1b[31mred\x1b[0m",
    "\x7f\x80\x9f",
    "tab\tnl\ncr\r",
    "\u210c\U0001d522\U0001d529\U0001d529\U0001d52c",
    "\u4e2d\u6587\u5b57\u7b26",
    "\u65e5\u672c\u8a9e",
    "\ud55c\uad6d\uc5b4",
    "\ufdfa",
    "\u216b",
    "\u00b2\u00b3",
    "\u0663",
    "\U0001f642" * 50,
    "\\u0000",
    '"quoted"',
    "</script><script>alert(1)</script>",
    "' OR 1=1 --",
    "${jndi:ldap://x/a}",
    "{{7*7}}",
    "%s%s%n",
    "../../etc/passwd",
    "\u115f\u3164",
    "\U00013080",
    "\u200b\u200c\u200d\u2060",
    "\ufff9\ufffb",
    "\U000e0041",
    "\u0600\u0601",
    "A" * 300,
    " ",
    "",
)
"""Strings that have broken text handling somewhere; the first seven and "a\\0b" are unstorable."""

PRINTABLE = 'abcdefghijklmnopqrstuvwxyz0123456789 {}[]":,=&%'
INVALID_UTF8: Tuple[bytes, ...] = (
    b"\xff",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xe2\x82",
    b"\xf4\x90\x80\x80",
)


def unstorable(text: str) -> bool:
    """True for text that neither UTF-8 nor PostgreSQL can hold: NUL or an unpaired surrogate."""
    return "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text)


@dataclass(frozen=True)
class Shape:
    """What an endpoint takes.

    ``examples``: valid documents; ``encoding``: ``json`` (the body is the document), ``form_payload``
    (a form whose field ``payload`` holds the document as JSON: Slack interactivity), ``form`` (the
    document's fields as a form: a sign-in) or ``socketio`` (an Engine.IO message carrying the
    Socket.IO event ``[event, document]``); ``checked``: dotted paths whose type the endpoint relies
    on, with the JSON types each may have (``string``, ``number``, ``integer``, ``boolean``, ``array``,
    ``object``, ``null``); ``required``: checked paths that must be present; ``texts``: paths of
    customer text (at most `MAX_MESSAGE_CHARS`); ``ids``: paths of ids (at most 255 characters);
    ``stored``: string paths whose value is kept (NUL and unpaired surrogates are refused there);
    ``pad``: a path free to grow (for bodies exactly at the limit; default a top-level
    ``padding`` the endpoint ignores); ``serial``: a path numbered per body (``update_id``, ``event_id``)
    and whether it is an ``int`` or ``str``; ``event``: the Socket.IO event name."""

    examples: Tuple[Dict[str, Any], ...]
    encoding: str = "json"
    checked: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    required: Tuple[str, ...] = ()
    texts: Tuple[str, ...] = ()
    ids: Tuple[str, ...] = ()
    stored: Tuple[str, ...] = ()
    pad: Optional[str] = None
    serial: Optional[Tuple[str, str]] = None
    event: str = "user_uttered"


@dataclass(frozen=True)
class Body:
    """One request body: its family, bytes, content type (None: no header), a short note and what any
    correct endpoint answers (`EXPECTATIONS`)."""

    family: str
    data: bytes
    content_type: Optional[str]
    note: str
    expect: str


# --- documents and paths ------------------------------------------------------------------------


def _get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _set(doc: Any, path: str, value: Any) -> Any:
    """A deep copy of ``doc`` with ``path`` set to ``value`` (created when missing)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def _delete(doc: Any, path: str) -> Any:
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        del node[int(last)]
    else:
        node.pop(last, None)
    return doc


def _has(doc: Any, path: str) -> bool:
    try:
        _get(doc, path)
        return True
    except (KeyError, IndexError, TypeError, ValueError):
        return False


def json_type(value: Any) -> str:
    """The JSON type of a Python value; integers are also ``number``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fits(value: Any, types: Sequence[str]) -> bool:
    kind = json_type(value)
    return kind in types or (kind == "integer" and "number" in types)


# --- encodings -----------------------------------------------------------------------------------


def _dumps(doc: Any, ascii_only: bool = True) -> str:
    return json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":"))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # an unpaired surrogate becomes invalid UTF-8, on purpose


def _form_value(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


def encode(shape: Shape, doc: Any, ascii_only: bool = True) -> Tuple[bytes, str]:
    """The body and content type that carry ``doc`` to the endpoint."""
    if shape.encoding == "json":
        return _utf8(_dumps(doc, ascii_only)), JSON
    if shape.encoding == "form_payload":
        return b"payload=" + urllib.parse.quote_from_bytes(_utf8(_dumps(doc, ascii_only))).encode(), FORM
    if shape.encoding == "form":
        if not isinstance(doc, dict):
            return urllib.parse.quote_from_bytes(_utf8(_dumps(doc, ascii_only))).encode(), FORM
        pairs = [(k, _form_value(v)) for k, v in doc.items()]
        return "&".join(
            f"{urllib.parse.quote_from_bytes(_utf8(k))}={urllib.parse.quote_from_bytes(_utf8(v))}" for k, v in pairs
        ).encode(), FORM
    if shape.encoding == "socketio":
        return b"42" + _utf8(_dumps([shape.event, doc], ascii_only)), TEXT
    raise ValueError(f"unknown encoding {shape.encoding}")


def _raw(shape: Shape, json_text: bytes) -> Tuple[bytes, str]:
    """Raw JSON bytes (perhaps broken) wrapped the way the endpoint's encoding carries a document."""
    if shape.encoding == "form_payload":
        return b"payload=" + urllib.parse.quote_from_bytes(json_text).encode(), FORM
    if shape.encoding == "socketio":
        return b'42["' + shape.event.encode() + b'",' + json_text + b"]", TEXT
    return json_text, (FORM if shape.encoding == "form" else JSON)


# --- the families --------------------------------------------------------------------------------


class _Generator:
    def __init__(self, shape: Shape, seed: int, limit: int, max_chars: int) -> None:
        self.shape, self.limit, self.max_chars = shape, limit, max_chars
        self.rng = random.Random(seed)
        self.serial = 0
        self.form = shape.encoding == "form"
        self.checked = dict(shape.checked) or {  # an endpoint that checks nothing: its examples' own fields
            key: (json_type(value),) for example in shape.examples for key, value in example.items()
        }

    def example(self, having: Optional[str] = None) -> Dict[str, Any]:
        """A valid document (one that has the path ``having``, when given), numbered."""
        examples = [e for e in self.shape.examples if having is None or _has(e, having)] or self.shape.examples
        doc = copy.deepcopy(self.rng.choice(examples))
        if self.shape.serial:
            path, kind = self.shape.serial
            self.serial += 1
            number = 1_000_000 + self.serial
            if _has(doc, path):
                doc = _set(doc, path, number if kind == "int" else f"Fz{number}")
        return doc

    def body(self, family: str, doc: Any, note: str, expect: str, ascii_only: bool = True) -> Body:
        data, content_type = encode(self.shape, doc, ascii_only)
        if len(data) > self.limit:
            expect = "413"
        return Body(family, data, content_type, note, expect)

    def raw(self, family: str, json_text: bytes, note: str, expect: str) -> Body:
        data, content_type = _raw(self.shape, json_text)
        return Body(family, data, content_type, note, "413" if len(data) > self.limit else expect)

    def unreadable(self) -> str:
        """What a body the endpoint cannot read at all must get: a form endpoint reads anything as a
        (perhaps empty) form, so there the fields are missing instead."""
        return "refuse" if self.form else "4xx"

    # random bytes
    def random_bytes(self, count: int) -> Iterator[Body]:
        for i in range(count):
            size = self.rng.choice((1, 2, 8, 64, 300, 1000, 4000))
            style = i % 4
            if style == 0:
                data = bytes(self.rng.getrandbits(8) for _ in range(size))
            elif style == 1:
                data = "".join(self.rng.choice(PRINTABLE) for _ in range(size)).encode()
            elif style == 2:
                data = b"{" + bytes(self.rng.getrandbits(8) for _ in range(size))
            else:
                data = b'{"' + bytes(self.rng.randrange(0x80, 0x100) for _ in range(size)) + b'": 1}'
            content_type = self.rng.choice((JSON, FORM, None, "application/octet-stream", TEXT))
            expect = "any" if _is_json(data) else self.unreadable()  # noise can spell valid JSON: {"é": 1}
            yield Body("random_bytes", data, content_type, f"{size} random bytes, style {style}", expect)

    # truncated
    def truncated(self, count: int) -> Iterator[Body]:
        for _ in range(count):
            doc = self.example()
            text = _utf8(_dumps(doc))
            cut = self.rng.randrange(1, len(text))
            if self.form:
                data, content_type = encode(self.shape, doc)
                yield Body("truncated", data[: self.rng.randrange(0, len(data))], content_type, "form cut short", "any")
            else:
                yield self.raw("truncated", text[:cut], f"cut at {cut} of {len(text)}", "4xx")

    # deep nesting
    def deep_nesting(self, count: int) -> Iterator[Body]:
        depths = (33, 64, 100, 500, 999, 1000, 1001, 5000, 10_000, 20_000, 100_000)
        styles = ("array", "object", "mixed")
        n = 0
        while n < count:
            for levels in depths:
                style = styles[n % 3]
                closed = (n // 3) % 2 == 0
                placement = ("top", "field", "extra")[(n // 6) % 3]
                opening, closing = self._nest(style, levels)
                inner = opening + b"1" + (closing if closed else b"")
                if placement == "top":
                    text, where = inner, "the whole body"
                else:
                    path = self._checked_path() if placement == "field" else "nest"
                    marker = "__NEST__"
                    text = _utf8(_dumps(_set(self.example(path), path, marker))).replace(
                        b'"' + marker.encode() + b'"', inner
                    )
                    where = path
                if self.form:
                    expect = "refuse"
                elif not closed or levels >= 5000 or (placement == "top" and style != "object"):
                    expect = "4xx"
                else:
                    expect = "refuse"  # deeper than any document an endpoint needs
                body = self.raw(
                    "deep_nesting",
                    text,
                    f"{levels} levels of {style}, {'closed' if closed else 'unclosed'}, in {where}",
                    expect,
                )
                yield body
                n += 1
                if n >= count:
                    return

    @staticmethod
    def _nest(style: str, levels: int) -> Tuple[bytes, bytes]:
        if style == "array":
            return b"[" * levels, b"]" * levels
        if style == "object":
            return b'{"a":' * levels, b"}" * levels
        return b'[{"a":' * (levels // 2), b"}]" * (levels // 2)

    def _checked_path(self) -> str:
        paths = list(self.checked)
        return self.rng.choice(paths)

    # huge
    def huge(self) -> Iterator[Body]:
        doc = self.example()
        for target, note in (
            (self.limit, "exactly the limit"),
            (self.limit + 1, "one byte over the limit"),
            (2 * self.limit, "2x the limit"),
            (4 * self.limit, "4x the limit"),
            (17 * self.limit, "17x the limit"),
        ):
            yield self._padded(doc, target, "x", note)
            yield self._padded(doc, target, "\U0001f642", note + " (4-byte characters)", multibyte=True)
            yield self._padded(doc, target - 100, "\u00e9", note + " minus 100 (2-byte characters)", multibyte=True)
        for path in self.shape.texts:
            for chars, letter in (
                (self.max_chars, "a"),
                (self.max_chars + 1, "a"),
                (self.max_chars, "\U0001f642"),
                (self.max_chars + 1, "\U0001f642"),
                (10 * self.max_chars, "a"),
            ):
                over = chars > self.max_chars
                yield self.body(
                    "huge",
                    _set(self.example(path), path, letter * chars),
                    f"{path}: {chars} x {letter!r}",
                    "refuse" if over else "any",
                    ascii_only=False,
                )
        for path in self.shape.ids:
            yield self.body("huge", _set(self.example(path), path, "i" * 256), f"{path}: 256 characters", "refuse")
            yield self.body("huge", _set(self.example(path), path, "i" * 5000), f"{path}: 5,000 characters", "refuse")
        yield self.body("huge", _set(doc, "k" * 60_000, 1), "a key of 60,000 characters", "any")
        yield self.body("huge", {**doc, **{f"k{i}": i for i in range(5000)}}, "5,000 extra keys", "any")
        yield self.body("huge", _set(doc, "numbers", list(range(12_000))), "an array of 12,000 numbers", "any")
        yield self.body("huge", _set(doc, "nested", [[i] for i in range(8000)]), "8,000 small arrays", "any")

    def _padded(self, doc: Dict[str, Any], target: int, letter: str, note: str, multibyte: bool = False) -> Body:
        """``doc`` with its pad field grown until the body is ``target`` bytes long."""
        path = self.shape.pad or "padding"
        ascii_only = not multibyte
        base = len(encode(self.shape, _set(doc, path, ""), ascii_only)[0])
        unit = len(encode(self.shape, _set(doc, path, letter), ascii_only)[0]) - base
        room = max(0, target - base)
        filler = letter * (room // unit) + "x" * (room % unit)
        body = self.body("huge", _set(doc, path, filler), note, "any", ascii_only)
        if body.expect != "413" and path in self.shape.texts and len(filler) > self.max_chars:
            return Body(body.family, body.data, body.content_type, body.note, "refuse")
        return body

    # wrong types
    def wrong_types(self, count: int) -> Iterator[Body]:
        made = 0
        if self.form:
            yield from self._wrong_form(count)
            return
        for value in (None, True, 1, 1.5, "text", [], [self.example()], ["a", "b"]):
            yield self.body("wrong_types", value, f"the whole body is {json_type(value)} {_short(value)}", "4xx")
            made += 1
        for path, types in self.checked.items():
            for value in WRONG_VALUES:
                if not _fits(value, types):
                    yield self.body(
                        "wrong_types", _set(self.example(path), path, value), f"{path} = {_short(value)}", "refuse"
                    )
                    made += 1
            if path in self.shape.required:
                yield self.body("wrong_types", _delete(self.example(path), path), f"{path} missing", "refuse")
                made += 1
        while made < count:
            path, types = self.rng.choice(list(self.checked.items()))
            value = self.random_value(3)
            while _fits(value, types):
                value = self.random_value(3)
            yield self.body(
                "wrong_types", _set(self.example(path), path, value), f"{path} = random {json_type(value)}", "refuse"
            )
            made += 1

    def _wrong_form(self, count: int) -> Iterator[Body]:
        made = 0
        doc = self.example()
        for key in doc:
            yield Body(
                "wrong_types",
                encode(self.shape, {k: v for k, v in doc.items() if k != key})[0],
                FORM,
                f"{key} missing",
                "refuse" if key in self.shape.required else "any",
            )
            yield Body(
                "wrong_types",
                encode(self.shape, {**doc, key: ""})[0],
                FORM,
                f"{key} empty",
                "refuse" if key in self.shape.required else "any",
            )
            made += 2
        while made < count:
            key = self.rng.choice(list(doc))
            style = made % 5
            if style == 0:
                data = encode(self.shape, doc)[0] + f"&{key}={self.rng.random()}".encode()
                note = f"{key} twice"
            elif style == 1:
                data = encode(self.shape, {**{k: v for k, v in doc.items() if k != key}, f"{key}[]": "x"})[0]
                note = f"{key}[] instead of {key}"
            elif style == 2:
                data = encode(self.shape, {**doc, key: self.random_value(2)})[0]
                note = f"{key} holds JSON"
            elif style == 3:
                data = encode(self.shape, doc)[0].replace(f"{key}=".encode(), key.encode() + b"&", 1)
                note = f"{key} without a value"
            else:
                data = encode(self.shape, doc)[0].replace(b"=", b"==", 1).replace(b"&", b";")
                note = "odd separators"
            yield Body("wrong_types", data, FORM, note, "any")
            made += 1

    def random_value(self, depth: int) -> Any:
        kind = self.rng.randrange(8 if depth > 0 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.random() < 0.5
        if kind == 2:
            return self.rng.choice((0, -1, 7, 2**31, 2**53 + 1, -(2**63), 2**70))
        if kind == 3:
            return self.rng.choice((0.5, -1e-300, 1e300, 3.14159))
        if kind in (4, 5):
            return "".join(self.rng.choice("ab\u00e9\u4e2d\U0001f642 ") for _ in range(self.rng.randrange(0, 12)))
        if kind == 6:
            return [self.random_value(depth - 1) for _ in range(self.rng.randrange(0, 4))]
        return {f"k{i}": self.random_value(depth - 1) for i in range(self.rng.randrange(0, 4))}

    # unicode
    def unicode(self, count: int) -> Iterator[Body]:
        strings = [p for p, t in self.checked.items() if "string" in t] or list(self.shape.stored) or ["note"]
        for i in range(count):
            text = UNICODE[i % len(UNICODE)]
            if i >= len(UNICODE):
                text = "".join(self.rng.choice(UNICODE) for _ in range(self.rng.randrange(2, 5)))
            path = strings[i % len(strings)]
            expect = "refuse" if path in self.shape.stored and unstorable(text) else "any"
            if self.form:
                expect = "any"
            ascii_only = i % 2 == 0
            body = self.body(
                "unicode",
                _set(self.example(path), path, text),
                f"{path} = {_short(text)}",
                expect,
                ascii_only=ascii_only,
            )
            if not ascii_only and any("\ud800" <= c <= "\udfff" for c in text):  # raw: not UTF-8 at all
                raw_expect = "4xx" if self.shape.encoding == "json" else "any"  # forms decode it as U+FFFD
                body = Body(body.family, body.data, body.content_type, body.note + " (raw)", raw_expect)
            yield body
        for i, bad in enumerate(INVALID_UTF8):
            path = strings[i % len(strings)]
            doc = self.example(path)
            marker = "__BAD__"
            data, content_type = encode(self.shape, _set(doc, path, marker))
            if self.form:
                raw = data.replace(marker.encode(), urllib.parse.quote_from_bytes(bad).encode())
                yield Body("unicode", raw, content_type, f"{path} holds invalid UTF-8 {bad!r} (percent-encoded)", "any")
            else:
                text = _utf8(_dumps(_set(doc, path, marker))).replace(marker.encode(), bad)
                expect = "any" if self.shape.encoding == "form_payload" else "4xx"  # a form decodes it as U+FFFD
                yield self.raw("unicode", text, f"{path} holds invalid UTF-8 {bad!r}", expect)
        if not self.form:
            for codec in ("utf-16", "utf-16-le", "utf-32", "utf-16-be"):
                text = _dumps(self.example(), ascii_only=False)
                data, _ = _raw(self.shape, text.encode(codec))
                expect = "any" if self.shape.encoding == "json" else "4xx"
                yield Body(
                    "unicode",
                    data,
                    JSON if self.shape.encoding == "json" else _raw(self.shape, b"")[1],
                    f"the body in {codec}",
                    expect,
                )

    # content types
    def content_types(self, count: int) -> Iterator[Body]:
        types = (
            JSON,
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            FORM,
            "multipart/form-data",
            "multipart/form-data; boundary=xyz",
            "text/plain",
            "text/html",
            "application/xml",
            None,
            "",
            "*/*",
            "application/x-www-form-urlencoded; charset=utf-16",
            "application/json, text/plain",
            "\u00e9/\u00e9".encode().decode("latin-1"),
        )
        for i in range(count):
            doc = self.example()
            style = i % 3
            content_type = types[(i // 3) % len(types)]
            if style == 0:  # the endpoint's own body under another content type
                data, _ = encode(self.shape, doc)
                note = f"its own body as {content_type!r}"
            elif style == 1:  # the document as a plain form (no JSON at all)
                flat = {k: _form_value(v) for k, v in doc.items()}
                data = urllib.parse.urlencode(flat).encode("utf-8", "surrogatepass")
                note = f"the fields as a form, sent as {content_type!r}"
            else:  # multipart
                parts = "".join(
                    f'--xyz\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{_form_value(v)}\r\n'
                    for k, v in doc.items()
                )
                data = (parts + "--xyz--\r\n").encode("utf-8", "surrogatepass")
                note = f"the fields as multipart, sent as {content_type!r}"
            expect = "any" if style == 0 or self.form else "4xx"
            yield Body("content_types", data, content_type, note, "413" if len(data) > self.limit else expect)

    # empty
    def empty(self) -> Iterator[Body]:
        for data in (b"", b" ", b"\r\n", b"\t \n"):
            for content_type in (JSON, None, FORM):
                expect = "refuse" if self.form else "4xx"
                yield Body("empty", data, content_type, f"{data!r} as {content_type}", expect)
        for data in (b"{}", b"[]", b"null", b'""', b"0", b"{ }"):
            body, content_type = _raw(self.shape, data)
            if self.form:
                expect = "refuse"
            elif data in (b"{}", b"{ }"):
                expect = "refuse" if self.shape.required else "any"
            else:
                expect = "4xx"
            yield Body("empty", body, content_type, f"{data!r}", expect)

    # random JSON
    def random_json(self, count: int) -> Iterator[Body]:
        for i in range(count):
            if i % 2:
                value: Any = {f"k{j}": self.random_value(3) for j in range(self.rng.randrange(0, 6))}
                expect = "refuse" if self.shape.required else "any"
            else:
                value = self.random_value(4)
                expect = "4xx" if not isinstance(value, dict) else ("refuse" if self.shape.required else "any")
            if self.form:
                expect = "refuse" if self.shape.required else "any"
            yield self.body("random_json", value, f"random {json_type(value)}", expect)

    # odd JSON
    def odd_json(self) -> Iterator[Body]:
        doc = self.example()
        text = _dumps(doc)
        variants = [
            (text[:-1] + ',"nan":NaN}', "NaN", "any"),
            (text[:-1] + ',"inf":Infinity,"ninf":-Infinity}', "Infinity", "any"),
            (text[:-1] + ',"big":1e999999}', "1e999999", "any"),
            (text[:-1] + ',"digits":' + "9" * 5000 + "}", "a 5,000-digit number", "any"),
            (text[:-1] + ',"neg":-' + "9" * 30 + "}", "a 30-digit negative number", "any"),
            (text[:-1] + ",}", "a trailing comma", "4xx"),
            ("/* comment */" + text, "a comment", "4xx"),
            (text.replace('"', "'"), "single quotes", "4xx"),
            ("\ufeff" + text, "a byte-order mark", "any"),
            (text + text, "two documents", "4xx"),
            (text + " \n\t ", "trailing blanks", "any"),
            (text + "garbage", "trailing garbage", "4xx"),
            ("[" + text + "]", "the body in an array", "4xx"),
            (text.replace(":", ": ", 1), "a space after the first colon", "any"),
            (text.replace('{"', '{"dup":1,"dup":2,"', 1), "duplicate keys", "any"),
            (text.replace('"', '"\\u0061', 1), "an escaped key", "any"),
            ("\x00" + text, "a NUL before the body", "4xx"),
            (text + "\x00", "a NUL after the body", "4xx"),
            (text.replace(",", ",\x0b", 1), "a vertical tab between fields", "4xx"),
            (text.upper(), "upper case", "any"),
        ]
        for key in list(doc)[:3]:
            variants.append((text.replace(f'"{key}"', f'"{key}"' + ":0," + f'"{key}"', 1), f"{key} twice", "any"))
        for raw_text, note, expect in variants:
            if self.form:
                expect = "refuse" if self.shape.required else "any"
            yield self.raw("odd_json", _utf8(raw_text), note, expect)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


FAMILY_SIZES = {
    "random_bytes": 160,
    "truncated": 120,
    "deep_nesting": 66,
    "wrong_types": 230,
    "unicode": 170,
    "content_types": 120,
    "random_json": 110,
}
"""Bodies per family (``huge``, ``empty`` and ``odd_json`` have a fixed list each)."""


def generate(shape: Shape, seed: int, *, limit: int = MAX_BODY_BYTES, max_chars: int = MAX_MESSAGE_CHARS) -> List[Body]:
    """At least 1,000 bodies for an endpoint taking ``shape``, the same for the same ``seed``."""
    g = _Generator(shape, seed, limit, max_chars)
    bodies: List[Body] = []
    bodies += g.random_bytes(FAMILY_SIZES["random_bytes"])
    bodies += g.truncated(FAMILY_SIZES["truncated"])
    bodies += g.deep_nesting(FAMILY_SIZES["deep_nesting"])
    bodies += g.huge()
    bodies += g.wrong_types(FAMILY_SIZES["wrong_types"])
    bodies += g.unicode(FAMILY_SIZES["unicode"])
    bodies += g.content_types(FAMILY_SIZES["content_types"])
    bodies += g.empty()
    bodies += g.random_json(FAMILY_SIZES["random_json"])
    bodies += g.odd_json()
    return bodies


def _is_json(data: bytes) -> bool:
    """Whether ``data`` happens to be valid UTF-8 JSON."""
    try:
        json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True
