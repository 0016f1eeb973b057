"""`python -m backline report`: the governance report (Markdown / HTML with plots, CSV) from seeded stores whose
values are known by construction (tests/governance_stores.py), the window rules, and clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

from backline.governance import report
from tests.governance_stores import SINCE, UNTIL, History, seed_history

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PLOTS = ["csat_overrides.png", "verdicts_by_intent.png", "wait_times.png", "weekly.png"]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return seed_history(tmp_path_factory.mktemp("governance_history"))


def stores(history: History) -> List[str]:
    return ["--consult-url", history.consult_url, "--tracker-url", history.tracker_url]


def test_markdown_report_states_every_outcome_with_its_definition(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "md"
    assert report.main(["--since", SINCE, "--until", UNTIL, "--out", str(out), *stores(history)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["metrics.csv", "report.md", *PLOTS, "weekly.csv"])
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "8 conversations, 4 consultations; writing the report" in printed
    assert f"wrote {out / 'report.md'}" in printed and f"wrote {out / 'metrics.csv'}" in printed
    text = (out / "report.md").read_text()
    assert text.startswith("# Governance report: 2026-11-02 to 2026-11-16\n")
    assert "Window: 2026-11-02T00:00:00+00:00 to 2026-11-16T00:00:00+00:00 (until excluded)" in text
    assert f"by `python -m backline report --since {SINCE} --until {UNTIL} --out {out} --consult-url" in text
    for line in (
        "| Containment | 50.0% (4 of 8 conversations) | conversations that started in the window and never escalated, over all that started |",
        "| Escalation rate | 50.0% (4 of 8 conversations) |",
        "| Escalation accuracy | 50.0% (Escalation needed 2, Not needed 2, Should have come earlier 0) |",
        "| Missed escalations | 1 (50.0% of reviewed AI-alone conversations) |",
        "| First reply | median 25.0 min, P90 60.0 min (4 cases) |",
        "| First reply, business hours | median 20.0 min, P90 30.0 min (3 cases) |",
        "| First reply, off hours | median 60.0 min, P90 60.0 min (1 case) |",
        "| Resolution | median 25.0 min, P90 60.0 min (4 cases) |",
        "| Hand-back rate | 25.0% |",
        "| Reopened | 0.0% (0 of 8 resolutions) | AI answers, closes and hand-backs followed within 72 h",
        "| CSAT | 4.00 of 5 (2 answers) |",
        "| Override rate | 66.7% |",
        "| Override reasons | Tone 1, Wrong intent 1 |",
        "| SLA breaches | 1 (25.0% of cases) |",
        "| SLA ladder steps | sla next person 1 |",
        "| QA reviews | 0 pending, 2 reviewed (right 1, should have escalated 1) |",
        # where the matrix looks wrong
        "| intent | Escalation needed | Not needed | Should have come earlier | not needed share |",
        "| return_item | 0 | 2 | 0 | 100.0% |",
        "| billing_dispute | 1 | 1 |",
        "| intent | Wrong intent | Tone |",
        "| refund_request | 1 | 0 |",
        "| return_item | 0 | 1 |",
        # breakdowns
        "| support | 4 | 2 | 50.0% | 50.0% | 0.0% | 0 | 45.0 min | 60.0 min | 45.0 min | 50.0% | 0.0% | 3.00 | 100.0% | 1 |",
        "| explicit_request | — | 1 | — | — | 0.0% | 0 | 60.0 min | 60.0 min | 60.0 min | 100.0% | 0.0% | 3.00 | — | 1 |",
        "| socketio | 8 | 4 | 50.0% | 50.0% | 50.0% | 1 | 25.0 min | 60.0 min | 25.0 min | 25.0% | 0.0% | 4.00 | 66.7% | 1 |",
        "| 2026-W45 | 3 | 0 | 100.0% | 0.0% | — | 1 | — | — | — | — | 0.0% | — | — | 0 |",
        "| 2026-W46 | 5 | 4 | 20.0% | 80.0% | 50.0% | 0 | 25.0 min | 60.0 min | 25.0 min | 25.0% | 0.0% | 4.00 | 66.7% | 1 |",
        "![Outcomes per week](weekly.png)",
        "![Verdicts per matrix row](verdicts_by_intent.png)",
    ):
        assert line in text, line
    for heading in ("### By queue", "### By intent", "### By reason", "### By channel", "### By week"):
        assert heading in text


def test_csv_files_hold_each_dimension_value_and_metric(history: History, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    assert report.main(["--since", SINCE, "--until", UNTIL, "--out", str(out), *stores(history)]) == 0
    lines = (out / "metrics.csv").read_text().splitlines()
    assert lines[:4] == [
        "dimension,value,metric,metric_value",
        "overall,all,conversations,8",
        "overall,all,consultations,4",
        "overall,all,containment_rate,0.5",
    ]
    for row in (
        "overall,all,escalation_accuracy,0.5",
        "overall,all,first_reply_median,1500.0",
        "overall,all,first_reply_business_hours_median,1200.0",
        "overall,all,first_reply_off_hours_median,3600.0",
        "overall,all,override_rate,0.6667",
        "overall,all,override_reason_wrong_intent,1",
        "overall,all,verdicts_not_needed,2",
        "overall,all,ladder_sla_next_person,1",
        "queue,support,sla_breaches,1",
        "intent,return_item,escalation_accuracy,0.0",
        "intent,billing_dispute,missed_escalations,1",
        "intent,billing_dispute,escalation_accuracy,",
        "reason,medium_confidence,override_rate,0.6667",
        "channel,socketio,handback_rate,0.25",
        "week,2026-W46,containment_rate,0.2",
    ):
        assert row in lines, row
    assert len([line for line in lines if line.startswith("intent,return_item,")]) == len(report.FLAT)
    assert (out / "weekly.csv").read_text().splitlines() == [
        "week,conversations,consultations,containment_rate,escalation_rate,escalation_accuracy,missed_escalations,"
        "first_reply_median,first_reply_p90,resolution_median,resolution_p90,handback_rate,reopened_rate,csat,"
        "override_rate,sla_breaches",
        "2026-W45,3,0,1.0,0.0,,1,,,,,,0.0,,,0",
        "2026-W46,5,4,0.2,0.8,0.5,0,1500.0,3600.0,1500.0,3600.0,0.25,0.0,4,0.6667,1",
    ]


def test_the_window_decides_what_counts(history: History, tmp_path: Path) -> None:
    out = tmp_path / "w46"
    assert (
        report.main(["--since", "2026-11-09", "--until", "2026-11-15T23:59:59", "--out", str(out), *stores(history)])
        == 0
    )
    text = (out / "report.md").read_text()
    assert "| Containment | 20.0% (1 of 5 conversations) |" in text
    assert "| Missed escalations | 0 (n/a of reviewed AI-alone conversations) |" in text
    assert "2026-W45" not in (out / "weekly.csv").read_text()


def test_html_report_stands_alone(history: History, tmp_path: Path) -> None:
    out = tmp_path / "html"
    assert (
        report.main(["--since", SINCE, "--until", UNTIL, "--format", "html", "--out", str(out), *stores(history)]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "report.html", "weekly.csv"]
    text = (out / "report.html").read_text()
    assert text.count('src="data:image/png;base64,iVBORw0KGgo') == 4
    assert 'src="http' not in text and "<link" not in text and "<script" not in text
    assert "<td>Containment</td><td>50.0% (4 of 8 conversations)</td>" in text
    assert "<td>return_item</td><td>0</td><td>2</td><td>0</td><td>100.0%</td>" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--since", "yesterday"],
            "--since: expected 30d, 12w, 24h or an ISO date such as 2026-11-01; got 'yesterday'",
        ),
        (["--since", "30x"], "--since: expected 30d, 12w, 24h or an ISO date"),
        (["--until", "2026-13-01"], "--until: expected 30d, 12w, 24h or an ISO date"),
        (
            ["--since", "2026-11-20", "--until", "2026-11-10"],
            "--since (2026-11-20T00:00:00+00:00) must be before --until",
        ),
    ],
)
def test_a_bad_window_is_refused_with_exit_2(
    argv: List[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert report.main([*argv, "--out", str(tmp_path / "never")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_the_command_line_refuses_a_bad_since() -> None:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "backline", "report", "--since", "lastweek"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        "backline report: --since: expected 30d, 12w, 24h or an ISO date such as 2026-11-01; got 'lastweek'"
        in done.stderr
    )


def test_an_unreachable_store_is_a_clear_error_without_secrets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nowhere.db"
    assert report.main(["--consult-url", f"sqlite:///{missing}", "--out", str(tmp_path / "r")]) == 1
    assert (
        f"backline report: no consultation store at sqlite:///{missing} (the file does not exist)"
        in capsys.readouterr().err
    )
    assert not missing.exists()
    url = "postgresql://backline:hunter2secret@127.0.0.1:9/backline"
    assert report.main(["--consult-url", url, "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert (
        "backline report: cannot reach the consultation store at postgresql://backline:***@127.0.0.1:9/backline" in err
    )
    assert "hunter2secret" not in err
    assert not (tmp_path / "r").exists()
