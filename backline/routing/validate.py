"""Validate escalation.yml (and its signals file) against the Rasa domain and experts.yml, like
`rasa data validate`: every problem as ``path:line: message``. Pure routing; the command line, and the
warnings that need the rest of the project, are `backline.validation`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from backline.routing.directory import ExpertDirectory, load_experts
from backline.routing.matrix import EscalationMatrix, base_intent, is_external, load_matrix
from backline.routing.source import ConfigError, PathLike, Problem, YamlSource, read_yaml

Located = Tuple[str, Optional[int]]


def domain_intents(domain_path: PathLike) -> Tuple[Dict[str, Located], List[Problem]]:
    """Intents a Rasa domain declares (a file or a directory of domain files), with where each is declared.

    Entries may be plain names (``- greet``) or one-key mappings (``- greet: {use_entities: []}``).
    """
    root = Path(domain_path)
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml")) if root.is_dir() else [root]
    intents: Dict[str, Located] = {}
    problems: List[Problem] = []
    for file in files:
        source = read_yaml(file)
        problems.extend(source.problems)
        if source.problems or not isinstance(source.data, CommentedMap) or "intents" not in source.data:
            continue
        _collect(source, intents, problems)
    if not intents and not problems:
        problems.append(Problem(str(domain_path), None, None, "the domain declares no intents"))
    return intents, problems


def domain_forms(domain_path: PathLike) -> Dict[str, List[str]]:
    """The forms a Rasa domain declares, with their required slots (in order)."""
    root = Path(domain_path)
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml")) if root.is_dir() else [root]
    forms: Dict[str, List[str]] = {}
    for file in files:
        source = read_yaml(file)
        data = source.data if not source.problems else None
        if not isinstance(data, CommentedMap) or not isinstance(data.get("forms"), CommentedMap):
            continue
        for name, form in data["forms"].items():
            required = form.get("required_slots") if isinstance(form, CommentedMap) else None
            forms[str(name)] = [str(slot) for slot in required] if isinstance(required, CommentedSeq) else []
    return forms


def _form_problems(matrix: EscalationMatrix, forms: Mapping[str, Sequence[str]]) -> List[Problem]:
    """A collect_then_route row needs the form `collect_<intent>` with exactly its `collect` fields
    (a form listed without slots is checked by name only)."""
    problems: List[Problem] = []
    assert matrix.source is not None
    for row in matrix.collect_rows():
        keys = ("intents", row.intent, "collect")
        if row.form is None or row.form not in forms:
            message = (
                f"intents.{row.intent}.collect: the domain has no form {row.form!r} to collect {list(row.collect)}"
            )
            problems.append(matrix.source.problem(keys, message, at_key=True))
        elif forms[row.form] and list(forms[row.form]) != list(row.collect):
            message = (
                f"intents.{row.intent}.collect: {list(row.collect)}, but the domain's form {row.form!r} "
                f"requires {list(forms[row.form])}"
            )
            problems.append(matrix.source.problem(keys, message, at_key=True))
    return problems


def domain_problems(
    matrix: EscalationMatrix,
    intents: Mapping[str, Located],
    forms: Optional[Mapping[str, Sequence[str]]] = None,
    *,
    need_no_row: Sequence[str] = (),
) -> List[Problem]:
    """The matrix against a Rasa domain: every domain intent has a row (EXTERNAL_ ones excepted), every row
    and every intent the matrix names elsewhere (triggers, categories, hand-back) is a domain intent, and
    each collect_then_route row has its form. The one check, used by `validate-matrix` (intents with
    where they are declared) and by the routing policy at training time (`backline.rasa.routing_policy`;
    Rasa prunes form slots from the domain it gives policies, so there forms are checked by name).
    ``need_no_row``: domain intents that may lack a row (Rasa's own default intents)."""
    problems: List[Problem] = []
    src = matrix.source
    if src is None:
        return problems
    for intent, (path, line) in intents.items():
        if intent not in matrix.rows and not is_external(intent) and intent not in need_no_row:
            where = f"{path}:{line}" if line else path
            message = f"intents: domain intent {intent!r} ({where}) has no row"
            problems.append(src.problem(("intents",), message, at_key=True))
    for intent in matrix.rows:
        if intent not in intents:
            message = f"intents.{intent}: not an intent of the domain"
            problems.append(src.problem(("intents", intent), message, at_key=True))
    for owner, names in matrix.referenced_intents().items():
        keys: Tuple[Union[str, int], ...] = tuple(owner.split("."))
        for i, intent in enumerate(names):
            if intent not in intents:
                message = f"{owner}: intent {intent!r} is not an intent of the domain"
                problems.append(src.problem(keys + (i,), message))
    if forms is not None:
        problems.extend(_form_problems(matrix, forms))
    return problems


def _collect(source: YamlSource, intents: Dict[str, Located], problems: List[Problem]) -> None:
    entries = source.data["intents"]
    if not isinstance(entries, CommentedSeq):
        problems.append(source.problem(("intents",), "intents: expected a list", at_key=True))
        return
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            name = entry
        elif isinstance(entry, CommentedMap) and len(entry) == 1:
            name = str(next(iter(entry)))
        else:
            message = f"intents[{i}]: expected an intent name or a one-key mapping"
            problems.append(source.problem(("intents", i), message))
            continue
        intents.setdefault(base_intent(name), (source.path, source.position(("intents", i))[0]))


def _check(
    matrix: Optional[EscalationMatrix],
    experts: Optional[ExpertDirectory],
    intents: Optional[Dict[str, Located]],
) -> List[Problem]:
    problems: List[Problem] = []
    if matrix is None or matrix.source is None:
        return problems
    src = matrix.source
    if intents is not None:
        problems.extend(domain_problems(matrix, intents))
    if experts is not None:
        known = ", ".join(sorted(experts.queues))
        uses: List[Tuple[Tuple[str, ...], str]] = [(("defaults", "queue"), matrix.defaults.queue)]
        uses += [(("intents", name, "queue"), row.queue) for name, row in matrix.rows.items()]
        uses += [(("exception_categories", name, "queue"), c.queue) for name, c in matrix.categories.items()]
        for keys, queue in uses:
            if queue not in experts.queues:
                message = f"{'.'.join(keys)}: unknown queue {queue!r} (experts.yml queues: {known})"
                problems.append(src.problem(keys, message))
    return problems


def run(
    matrix_path: PathLike, experts_path: PathLike, domain_path: PathLike
) -> Tuple[List[Problem], Optional[EscalationMatrix], Optional[ExpertDirectory]]:
    """(problems sorted by file and line, the matrix and the directory when they load)."""
    problems: List[Problem] = []
    matrix: Optional[EscalationMatrix] = None
    experts: Optional[ExpertDirectory] = None
    try:
        matrix = load_matrix(matrix_path)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        experts = load_experts(experts_path)
    except ConfigError as exc:
        problems.extend(exc.problems)
    intents, domain_problems = domain_intents(domain_path)
    problems.extend(domain_problems)
    problems.extend(_check(matrix, experts, None if domain_problems else intents))
    if matrix is not None and matrix.source is not None and not domain_problems:
        problems.extend(_form_problems(matrix, domain_forms(domain_path)))
    problems.sort(key=order)
    return problems, matrix, experts


def order(problem: Problem) -> Tuple[str, int, int, str]:
    """Findings in file, line, column order."""
    return (problem.path, problem.line or 0, problem.column or 0, problem.message)


def validate(matrix_path: PathLike, experts_path: PathLike, domain_path: PathLike) -> List[Problem]:
    """Every problem in the matrix, the expert directory and their fit with the domain; empty when valid.
    Warnings are not problems: see `backline.validation.validate_with_warnings`."""
    return run(matrix_path, experts_path, domain_path)[0]
