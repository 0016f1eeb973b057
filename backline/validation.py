"""The `backline validate-matrix` command: `backline.routing.validate`'s checks of escalation.yml,
signals.yml and experts.yml against the Rasa domain, governance.yml (`backline.governance.config`)
against both, plus the findings that need another part of the project.

Errors make the files invalid; warnings (``path:line: warning: message``) are printed too but do not
fail: a currency the money parser reads (backline/nlp/money.py) without a rate in ``currency_rates``
is one (an amount in it escalates on a money limit instead of being compared).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from backline.governance.config import GovernanceError, load_governance
from backline.nlp.money import CURRENCIES, markers_for
from backline.routing.matrix import EscalationMatrix
from backline.routing.source import WARNING, PathLike, Problem
from backline.routing.validate import order, run


def currency_warnings(matrix: EscalationMatrix, currencies: Sequence[str] = CURRENCIES) -> List[Problem]:
    """A warning, at ``currency_rates``, for each currency the money parser reads but the matrix has no
    rate for: such an amount cannot be compared with a limit, so on a category's intents it escalates."""
    if matrix.source is None:
        return []
    limited = [c for c in matrix.categories.values() if c.amount_above is not None and c.unrated_detail]
    intents = list(dict.fromkeys(i for c in limited for i in c.intents))
    details = list(dict.fromkeys(str(c.unrated_detail) for c in limited))
    warnings: List[Problem] = []
    for code in sorted(set(currencies)):
        if matrix.has_rate(code):
            continue
        markers = ", ".join(markers_for(code)) or code
        message = f"currency_rates: no rate for {code}, which the money parser reads ({markers})"
        if intents:
            message += (
                f": an amount in {code} on {', '.join(intents)} is not compared with the limit but escalates"
                f" (detail {', '.join(details)})"
            )
        else:
            message += f": an amount in {code} cannot be converted to EUR"
        warnings.append(matrix.source.problem(("currency_rates",), message, at_key=True, severity=WARNING))
    return warnings


def governance_problems(path: PathLike, experts: Any, matrix: Optional[EscalationMatrix]) -> List[Problem]:
    """governance.yml's own problems (`load_governance`), then the queues its sampling names that
    experts.yml does not define and the conversational intents that are no row of the matrix."""
    try:
        rules = load_governance(path)
    except GovernanceError as error:
        return list(error.problems)
    except OSError as error:
        return [Problem(str(path), None, None, f"cannot read: {error}")]
    problems = []
    if experts is not None:
        for queue in rules.sampling.closed_cases:
            if queue != "default" and queue not in experts.queues:
                problems.append(
                    Problem(str(path), None, None, f"qa_sampling.closed_cases: no queue {queue!r} in experts.yml")
                )
    if matrix is not None:
        for intent in rules.conversational_intents:
            if intent not in matrix.rows:
                problems.append(
                    Problem(str(path), None, None, f"conversational_intents: {intent!r} is not a row of the matrix")
                )
    return problems


def validate_with_warnings(
    matrix_path: PathLike, experts_path: PathLike, domain_path: PathLike
) -> Tuple[List[Problem], List[Problem]]:
    """(problems, warnings): `validate`'s problems, and the findings that do not make the files invalid."""
    problems, matrix, _ = run(matrix_path, experts_path, domain_path)
    warnings = sorted(currency_warnings(matrix), key=order) if matrix is not None else []
    return problems, warnings


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="backline validate-matrix", description=__doc__)
    parser.add_argument("--matrix", default="escalation.yml", help="escalation matrix (default: %(default)s)")
    parser.add_argument("--experts", default="experts.yml", help="expert directory (default: %(default)s)")
    parser.add_argument("--domain", default="domain.yml", help="Rasa domain file or directory (default: %(default)s)")
    parser.add_argument(
        "--governance",
        default=None,
        help="governance rules (default: governance.yml beside the matrix, when there is one)",
    )
    args = parser.parse_args(argv)
    problems, matrix, experts = run(args.matrix, args.experts, args.domain)
    governance_file = Path(args.governance) if args.governance else Path(args.matrix).parent / "governance.yml"
    if args.governance or governance_file.exists():
        problems = problems + governance_problems(governance_file, experts, matrix)
    warnings = sorted(currency_warnings(matrix), key=order) if matrix is not None else []
    for finding in sorted(problems + warnings, key=order):
        print(finding)
    warned = f", {len(warnings)} warning(s)" if warnings else ""
    if problems or matrix is None or experts is None:
        print(f"escalation matrix: {len(problems)} problem(s){warned}", file=sys.stderr)
        return 1
    specs = matrix.signal_specs()
    print(
        f"escalation matrix OK: {len(matrix.rows)} intents, {len(matrix.categories)} categories, "
        f"{len(specs)} signals ({sum(len(s.phrases) for s in specs)} phrases, "
        f"{sum(len(s.patterns) for s in specs)} patterns), {len(experts.queues)} queues{warned}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
