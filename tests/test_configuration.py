"""backline.configuration: the matrix and the directory the hub and the action server read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backline import configuration
from backline.routing import MatrixError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_projects_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(configuration.ENV_MATRIX, raising=False)
    monkeypatch.delenv(configuration.ENV_EXPERTS, raising=False)
    assert configuration.matrix_path() == ROOT / "escalation.yml"
    assert configuration.experts_path() == ROOT / "experts.yml"
    assert configuration.hand_back().labels["returns"] == "returns"
    assert configuration.team_name("security") == "account security"


def test_the_environment_names_other_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edited = (
        (ROOT / "escalation.yml")
        .read_text(encoding="utf-8")
        .replace("  always_allowed: [greet, goodbye, thank, affirm, deny, bot_challenge]", "  always_allowed: [greet]")
    )
    (tmp_path / "escalation.yml").write_text(edited, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", tmp_path / "signals.yml")
    experts = (ROOT / "experts.yml").read_text(encoding="utf-8").replace("team: billing", "team: accounts")
    (tmp_path / "experts.yml").write_text(experts, encoding="utf-8")
    monkeypatch.setenv(configuration.ENV_MATRIX, str(tmp_path / "escalation.yml"))
    monkeypatch.setenv(configuration.ENV_EXPERTS, str(tmp_path / "experts.yml"))
    assert configuration.hand_back().always_allowed == ("greet",)
    assert configuration.team_name("billing") == "accounts"


def test_an_invalid_matrix_is_an_error_with_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = (ROOT / "escalation.yml").read_text(encoding="utf-8").replace("      label: returns\n", "")
    (tmp_path / "escalation.yml").write_text(broken, encoding="utf-8")
    shutil.copy(ROOT / "signals.yml", tmp_path / "signals.yml")
    monkeypatch.setenv(configuration.ENV_MATRIX, str(tmp_path / "escalation.yml"))
    with pytest.raises(MatrixError, match=r"escalation.yml:\d+: hand_back.followups.returns: 'label' is a required"):
        configuration.matrix()


def test_an_unreadable_directory_leaves_the_queue_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(configuration.ENV_EXPERTS, str(tmp_path / "missing.yml"))
    assert configuration.team_name("security") == "security"
    assert configuration.team_name(None) == "customer support"
    assert "experts.yml cannot be read for team names" in caplog.text


def test_the_directory_is_read_once_per_version_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "experts.yml"
    shutil.copy(ROOT / "experts.yml", path)
    monkeypatch.setenv(configuration.ENV_EXPERTS, str(path))
    first = configuration.experts()
    assert configuration.experts() is first  # unchanged: not parsed again
    path.write_text(path.read_text(encoding="utf-8").replace("team: sales", "team: growth"), encoding="utf-8")
    assert configuration.team_name("sales") == "growth"  # an operator's edit applies without a restart
    assert configuration.experts() is not first
