"""The governance report's plots as PNG bytes (matplotlib on its Agg backend: no display, no network).

Each function takes the metrics dict of `backline.governance.service.GovernanceService.metrics` (and, for the
verdicts per intent, counts gathered by the report) and returns the PNG, or None when there is nothing to
draw. `all_plots` gives them by file name, in the report's order.
"""

from __future__ import annotations

import io
from typing import Any, Dict, List, Mapping, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

WEEKLY_SERIES = (
    ("containment_rate", "containment"),
    ("escalation_rate", "escalation rate"),
    ("escalation_accuracy", "escalation accuracy"),
    ("override_rate", "override rate"),
)
VERDICT_COLOURS = {"needed": "#2e7d32", "not_needed": "#c62828", "too_late": "#ef6c00"}


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def weekly(metrics: Mapping[str, Any]) -> Optional[bytes]:
    """Containment, escalation rate, escalation accuracy and override rate per ISO week (%)."""
    weeks = sorted(metrics.get("breakdowns", {}).get("week", {}).items())
    if not weeks:
        return None
    figure, axes = plt.subplots(figsize=(8, 3.6))
    labels = [week for week, _ in weeks]
    for key, label in WEEKLY_SERIES:
        values = [None if row.get(key) is None else 100 * row[key] for _, row in weeks]
        axes.plot(labels, [float("nan") if v is None else v for v in values], marker="o", label=label)
    axes.set_ylim(-5, 130)
    axes.set_ylabel("%")
    axes.set_title("Outcomes per week")
    axes.legend(fontsize="small", loc="upper center", ncol=4)
    axes.grid(alpha=0.3)
    return _png(figure)


def wait_times(metrics: Mapping[str, Any]) -> Optional[bytes]:
    """First reply and resolution, median and P90, business hours vs off hours (minutes)."""
    groups = ("business_hours", "off_hours")
    bars: List[tuple] = []
    for name, key in (("first reply", "first_reply_seconds"), ("resolution", "resolution_seconds")):
        for stat in ("median", "p90"):
            values = [(metrics.get(key) or {}).get(group, {}).get(stat) for group in groups]
            bars.append((f"{name} {'P90' if stat == 'p90' else stat}", [0.0 if v is None else v / 60 for v in values]))
    if not any(v for _, values in bars for v in values):
        return None
    figure, axes = plt.subplots(figsize=(8, 3.6))
    width = 0.38
    positions = range(len(bars))
    for offset, (index, group) in zip((-width / 2, width / 2), enumerate(groups)):
        axes.bar(
            [p + offset for p in positions], [values[index] for _, values in bars], width, label=group.replace("_", " ")
        )
    axes.set_xticks(list(positions))
    axes.set_xticklabels([label for label, _ in bars], fontsize="small")
    axes.set_ylabel("minutes")
    axes.set_ylim(0, 1.3 * max(v for _, values in bars for v in values))
    axes.set_title("Waiting times: business hours vs off hours")
    axes.legend(fontsize="small", loc="upper left", ncol=2)
    axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def verdicts_by_intent(verdicts: Mapping[str, Mapping[str, int]]) -> Optional[bytes]:
    """Experts' verdicts per matrix row (intent), stacked: needed / not needed / too late."""
    rows = sorted((intent, counts) for intent, counts in verdicts.items() if sum(counts.values()))
    if not rows:
        return None
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.6))
    left = [0] * len(rows)
    labels = [intent for intent, _ in rows]
    for key, colour in VERDICT_COLOURS.items():
        values = [counts.get(key, 0) for _, counts in rows]
        axes.barh(labels, values, left=left, color=colour, label=key.replace("_", " "))
        left = [a + b for a, b in zip(left, values)]
    axes.set_xlabel("escalations judged")
    axes.set_title("Verdicts per matrix row")
    axes.legend(fontsize="small", loc="lower right")
    axes.invert_yaxis()
    return _png(figure)


def satisfaction_and_overrides(metrics: Mapping[str, Any]) -> Optional[bytes]:
    """CSAT answers per score (1-5) beside the override reasons."""
    scores = (metrics.get("csat_responses") or {}).get("scores") or {}
    reasons = metrics.get("override_reasons") or {}
    if not sum(scores.values()) and not reasons:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    keys = [str(s) for s in range(1, 6)]
    left.bar(keys, [scores.get(k, 0) for k in keys], color="#1565c0")
    left.set_title("CSAT answers per score")
    left.set_xlabel("score")
    names = sorted(reasons, key=lambda r: (-reasons[r], r))
    right.barh([n.replace("_", " ") for n in names], [reasons[n] for n in names], color="#6a1b9a")
    right.set_title("Override reasons")
    right.invert_yaxis()
    return _png(figure)


def all_plots(metrics: Mapping[str, Any], verdicts: Mapping[str, Mapping[str, int]]) -> Dict[str, Dict[str, Any]]:
    """``{file name: {"title", "png"}}`` for the plots there is something to draw for."""
    made = {
        "weekly.png": ("Outcomes per week", weekly(metrics)),
        "wait_times.png": ("Waiting times: business hours vs off hours", wait_times(metrics)),
        "verdicts_by_intent.png": ("Verdicts per matrix row", verdicts_by_intent(verdicts)),
        "csat_overrides.png": ("CSAT answers and override reasons", satisfaction_and_overrides(metrics)),
    }
    return {name: {"title": title, "png": png} for name, (title, png) in made.items() if png}
