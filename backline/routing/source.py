"""YAML sources with line numbers, schema checking, and located problems."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

PathLike = Union[str, Path]
Keys = Sequence[Union[str, int]]


ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding in a file, rendered as ``path:line: message``; line and column are 1-based.

    A ``warning`` (``path:line: warning: message``) is worth a look but does not make the file invalid.
    """

    path: str
    line: Optional[int]
    column: Optional[int]
    message: str
    severity: str = ERROR

    @property
    def is_warning(self) -> bool:
        return self.severity == WARNING

    def __str__(self) -> str:
        text = f"warning: {self.message}" if self.is_warning else self.message
        if self.line is None:
            return f"{self.path}: {text}"
        return f"{self.path}:{self.line}: {text}"


ValidationProblem = Problem


class ConfigError(ValueError):
    """A routing configuration file could not be loaded; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: List[Problem] = sorted(problems, key=_problem_order)
        if not self.problems:
            raise ValueError("ConfigError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def path(self) -> str:
        return self.problems[0].path

    @property
    def line(self) -> Optional[int]:
        return self.problems[0].line

    @property
    def column(self) -> Optional[int]:
        return self.problems[0].column

    @property
    def message(self) -> str:
        return self.problems[0].message


class MatrixError(ConfigError):
    """escalation.yml is invalid."""


class ExpertsError(ConfigError):
    """experts.yml is invalid."""


def _problem_order(problem: Problem) -> Tuple[str, int, int, str]:
    return (problem.path, problem.line or 0, problem.column or 0, problem.message)


def dotted(keys: Keys) -> str:
    """Render a key path such as ``intents.refund_request.thresholds.high``."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


@dataclass
class YamlSource:
    """A parsed YAML document that remembers where every key and item came from."""

    path: str
    data: Any
    problems: List[Problem] = field(default_factory=list)

    def position(self, keys: Keys) -> Tuple[int, int]:
        """1-based (line, column) of the node at ``keys``, or of its nearest existing ancestor."""
        node = self.data
        line, col = _start(node)
        for key in keys:
            if isinstance(node, CommentedMap) and key in node:
                child = node[key]
                line, col = node.lc.value(key) if not _is_container(child) else node.lc.key(key)
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
                child = node[key]
                line, col = node.lc.item(key)
            else:
                break
            node = child
        return line + 1, col + 1

    def key_position(self, keys: Keys) -> Tuple[int, int]:
        """1-based (line, column) of the mapping key at the end of ``keys``."""
        parent = self.get(keys[:-1])
        if isinstance(parent, CommentedMap) and keys and keys[-1] in parent:
            line, col = parent.lc.key(keys[-1])
            return line + 1, col + 1
        return self.position(keys)

    def get(self, keys: Keys) -> Any:
        node = self.data
        for key in keys:
            node = node[key]
        return node

    def problem(self, keys: Keys, message: str, *, at_key: bool = False, severity: str = ERROR) -> Problem:
        line, col = self.key_position(keys) if at_key else self.position(keys)
        return Problem(self.path, line, col, message, severity)

    def add(self, keys: Keys, message: str, *, at_key: bool = False) -> None:
        self.problems.append(self.problem(keys, message, at_key=at_key))


def _is_container(node: Any) -> bool:
    return isinstance(node, (CommentedMap, CommentedSeq))


def _start(node: Any) -> Tuple[int, int]:
    if _is_container(node) and node.lc.line is not None:
        return node.lc.line, node.lc.col or 0
    return 0, 0


def read_yaml(path: PathLike) -> YamlSource:
    """Parse ``path`` keeping line information; syntax and I/O errors become problems."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return YamlSource(shown, None, [Problem(shown, None, None, f"cannot read file: {exc.strerror or exc}")])
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        return YamlSource(shown, None, [Problem(shown, line, col, f"invalid YAML: {message}")])
    except YAMLError as exc:
        return YamlSource(shown, None, [Problem(shown, None, None, f"invalid YAML: {exc}")])
    _dates_to_text(data)
    return YamlSource(shown, data)


def _dates_to_text(node: Any) -> None:
    """Turn YAML timestamps (``2025-12-25``) into ISO strings so the schema sees plain text."""
    items: Iterable[Tuple[Any, Any]]
    if isinstance(node, Mapping):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    else:
        return
    for key, value in items:
        if isinstance(value, (dt.date, dt.datetime)):
            node[key] = value.isoformat()
        else:
            _dates_to_text(value)


def check_schema(source: YamlSource, schema: Mapping[str, Any]) -> List[Problem]:
    """Validate ``source`` against a JSON schema; each error is located at its YAML line."""
    if source.data is None:
        return [Problem(source.path, None, None, "the file is empty")]
    validator = Draft202012Validator(schema)
    problems = [_locate(source, error) for error in validator.iter_errors(source.data)]
    return sorted(set(problems), key=_problem_order)


def _locate(source: YamlSource, error: ValidationError) -> Problem:
    keys = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        if extra:
            keys.append(extra[0])
            kind = error.schema.get("x-key-kind", "key")
            message = f"{dotted(keys)}: unknown {kind} (allowed: {', '.join(sorted(allowed))})"
            return source.problem(keys, message, at_key=True)
    if "propertyNames" in error.schema_path and isinstance(error.instance, str):
        keys.append(error.instance)
        return source.problem(keys, f"{dotted(keys)}: invalid name: {error.message}", at_key=True)
    if error.validator in ("anyOf", "oneOf") and "description" in error.schema:
        message = f"{dotted(keys)}: {error.instance!r} is not valid: expected {error.schema['description']}"
        return source.problem(keys, message)
    return source.problem(keys, f"{dotted(keys)}: {error.message}")
