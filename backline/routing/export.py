"""Export the routing model for governance review: Markdown (`export_markdown`), CSV and JSON,
deterministically ordered; `backline export-matrix` writes the three to docs/routing/."""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from backline.routing.directory import ExpertDirectory, load_experts
from backline.routing.export_markdown import (  # noqa: F401  (re-exported: the Markdown tables' columns)
    CATEGORY_COLUMNS,
    FOLLOWUP_COLUMNS,
    MD_COLUMNS,
    SIGNAL_COLUMNS,
    TEAM_COLUMNS,
    to_markdown,
)
from backline.routing.export_words import (  # noqa: F401  (re-exported)
    categories_in_order,
    describe_pattern,
    describe_route,
    rows_in_order,
    teams,
)
from backline.routing.matrix import EscalationMatrix, load_matrix
from backline.routing.source import ConfigError, PathLike

STEM = "routing-model"
CSV_COLUMNS = (
    "intent",
    "ai_may",
    "high",
    "low",
    "queue",
    "priority",
    "sla_minutes",
    "context_package",
    "exceptions",
    "reason",
    "detail",
    "collect",
    "route",
    "description",
)


def to_json(matrix: EscalationMatrix, directory: Optional[ExpertDirectory] = None) -> Dict[str, Any]:
    """The routing model as plain JSON data (with the queues' team names when ``directory`` is given)."""
    t = matrix.triggers
    d = matrix.defaults
    h = matrix.hand_back
    return {
        "source": Path(matrix.path).name,
        "signals_source": Path(matrix.signals_path).name if matrix.signals_path else None,
        "version": matrix.version,
        "defaults": {
            "ai_may": d.ai_may,
            "thresholds": {"high": d.thresholds.high, "low": d.thresholds.low, "basis": d.thresholds.basis},
            "queue": d.queue,
            "sla_minutes": d.sla_minutes,
            "priority": d.priority,
            "context_package": d.context_package,
        },
        "hand_back": {
            "expires_after_minutes": h.expires_after_minutes,
            "always_allowed": list(h.always_allowed),
            "followups": [{"name": f.name, "label": f.label, "intents": list(f.intents)} for f in h.followups.values()],
        },
        "while_waiting": {"answers": h.while_waiting, "intents": list(h.informational)},
        "teams": teams(directory),
        "currency_rates": dict(sorted(matrix.currency_rates.items())),
        "triggers": {
            "explicit_request": {
                "intents": list(t.explicit_request.intents),
                "min_confidence": t.explicit_request.min_confidence,
                "phrases": list(t.explicit_request.phrases),
                "patterns": [list(p) for p in t.explicit_request.patterns],
                "not_phrases": list(t.explicit_request.not_phrases),
            },
            "no_convergence": {
                "same_intent_turns": t.no_convergence.same_intent_turns,
                "overlap": t.no_convergence.overlap,
                "rejection_intents": list(t.no_convergence.rejection_intents),
            },
            "sentiment": {
                "negative_below": t.sentiment.negative_below,
                "frustration_intents": list(t.sentiment.frustration_intents),
                "frustration_repeats": t.sentiment.frustration_repeats,
            },
            "high_value": {
                "tiers": list(t.high_value.tiers),
                "amount_above": asdict(t.high_value.amount_above) if t.high_value.amount_above else None,
                "limit_eur": t.high_value.limit_eur,
            },
        },
        "context_packages": {name: list(fields) for name, fields in sorted(matrix.context_packages.items())},
        "signals": [
            {
                "name": spec.name,
                "phrases": list(spec.phrases),
                "patterns": [list(p) for p in spec.patterns],
                "not_phrases": list(spec.not_phrases),
            }
            for spec in matrix.signal_specs()
        ],
        "categories": [
            {
                "name": c.name,
                "label": c.label,
                "reason": c.reason,
                "detail": c.detail,
                "queue": c.queue,
                "priority": c.priority,
                "intents": list(c.intents),
                "amount_above": asdict(c.amount_above) if c.amount_above else None,
                "limit_eur": c.limit_eur,
                "unrated_detail": c.unrated_detail,
                "phrases": list(c.phrases),
                "patterns": [list(p) for p in c.patterns],
                "description": c.description,
            }
            for c in categories_in_order(matrix)
        ],
        "rows": [
            {
                "intent": r.intent,
                "ai_may": r.ai_may,
                "thresholds": {"high": r.thresholds.high, "low": r.thresholds.low},
                "queue": r.queue,
                "priority": r.priority,
                "sla_minutes": r.sla_minutes,
                "context_package": r.context_package,
                "context_fields": list(matrix.context_packages[r.context_package]),
                "exceptions": list(r.exceptions),
                "reason": r.route_reason,
                "detail": r.detail,
                "reason_from": r.derived_from,
                "collect": list(r.collect),
                "form": r.form,
                "route": describe_route(r),
                "description": r.description,
            }
            for r in rows_in_order(matrix)
        ],
    }


def to_csv(matrix: EscalationMatrix) -> str:
    """One line per intent; exceptions are separated by ``;``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows_in_order(matrix):
        writer.writerow(
            [
                r.intent,
                r.ai_may,
                f"{r.thresholds.high:.2f}",
                f"{r.thresholds.low:.2f}",
                r.queue,
                r.priority,
                r.sla_minutes,
                r.context_package,
                ";".join(r.exceptions),
                r.route_reason or "",
                r.detail or "",
                ";".join(r.collect),
                describe_route(r),
                r.description,
            ]
        )
    return buffer.getvalue()


def export(matrix: EscalationMatrix, out_dir: PathLike, directory: Optional[ExpertDirectory] = None) -> List[Path]:
    """Write routing-model.md, .csv and .json into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    contents = {
        out / f"{STEM}.md": to_markdown(matrix, directory),
        out / f"{STEM}.csv": to_csv(matrix),
        out / f"{STEM}.json": json.dumps(to_json(matrix, directory), indent=2, ensure_ascii=False) + "\n",
    }
    for path, text in contents.items():
        path.write_text(text, encoding="utf-8", newline="")
    return list(contents)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="backline export-matrix", description=__doc__)
    parser.add_argument("--matrix", default="escalation.yml", help="escalation matrix (default: %(default)s)")
    parser.add_argument(
        "--experts",
        default="experts.yml",
        help="expert directory, for the queues' team names (default: %(default)s; '' to leave out)",
    )
    parser.add_argument("--out", default="docs/routing", help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
        directory = load_experts(args.experts) if args.experts else None
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for path in export(matrix, args.out, directory):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
