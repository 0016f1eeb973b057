"""governance.yml: loaded with every problem and its line, its choices read from keys or labels, and
checked against experts.yml and the matrix by `backline validate-matrix`."""

from __future__ import annotations

from pathlib import Path

import pytest

from backline.governance.config import GovernanceError, governance, load_governance
from backline.validation import main as validate_matrix

PROJECT = Path(__file__).resolve().parents[1]


def test_the_projects_file_loads() -> None:
    rules = governance()
    assert list(rules.verdicts) == ["needed", "not_needed", "too_late"]
    assert list(rules.override_reasons) == ["wrong_intent", "wrong_facts", "policy", "tone", "other"]
    assert (rules.reopen_window_hours, rules.csat.after_modes) == (72.0, ("handoff", "consult"))
    assert (rules.sampling.share("ai_alone"), rules.sampling.share("closed_case", "legal")) == (0.1, 0.1)


@pytest.mark.parametrize(
    "given, key",
    [
        ("not needed", "not_needed"),
        ("Not_Needed", "not_needed"),
        ("Should have come earlier", "too_late"),
        ("needed", "needed"),
    ],
)
def test_verdicts_by_key_or_label(given: str, key: str) -> None:
    assert governance().check_verdict(given) == key


@pytest.mark.parametrize(
    "given, key", [("wrong intent", "wrong_intent"), ("Wrong facts", "wrong_facts"), ("TONE", "tone")]
)
def test_reasons_by_key_or_label(given: str, key: str) -> None:
    assert governance().check_reason(given) == key


@pytest.mark.parametrize("bad", ["", "maybe", None, 3, "needed!"])
def test_unknown_verdicts_are_refused_naming_the_choices(bad: object) -> None:
    with pytest.raises(ValueError, match="verdict must be one of needed, not_needed, too_late"):
        governance().check_verdict(bad)


def test_problems_are_reported_with_their_lines(tmp_path: Path) -> None:
    text = (PROJECT / "governance.yml").read_text()
    broken = text.replace("reopen_window_hours: 72", "reopen_window_hours: -1").replace(
        "ai_alone: 0.10", "ai_alone: 1.5"
    )
    path = tmp_path / "governance.yml"
    path.write_text(broken)
    with pytest.raises(GovernanceError) as raised:
        load_governance(path)
    lines = {p.line for p in raised.value.problems}
    expected = {
        i + 1
        for i, line in enumerate(broken.splitlines())
        if "reopen_window_hours: -1" in line or "ai_alone: 1.5" in line
    }
    assert lines == expected and len(expected) == 2


def test_validate_matrix_checks_governance_against_experts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (PROJECT / "governance.yml").read_text().replace("    default: 0.10", "    default: 0.10\n    helpdesk: 0.5")
    path = tmp_path / "governance.yml"
    path.write_text(text)
    assert validate_matrix(["--governance", str(path)]) == 1
    assert "qa_sampling.closed_cases: no queue 'helpdesk' in experts.yml" in capsys.readouterr().out
    assert validate_matrix([]) == 0
