"""The systemd units of deploy/systemd/ run exactly what `backline run` runs: the commands, ports and health
checks of `backline.launcher.process_specs()`, in the same order, with the supervisor's stop grace and
restart budget, and an example environment file that defines what they use and holds no secret."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from backline.launcher import health_wait, process_specs
from backline.supervisor import Policy

UNITS = Path(__file__).resolve().parents[1] / "deploy" / "systemd"
INSTALL_DIR = "/opt/backline"
VENV_BIN = f"{INSTALL_DIR}/.venv/bin/"
SPECS = process_specs()
VARIABLE = re.compile(r"\$\{(\w+)\}")

Unit = Dict[str, Dict[str, List[str]]]


def parse_unit(text: str) -> Tuple[Unit, List[str]]:
    """A unit file's sections as {section: {key: [values, in order]}} (systemd allows a key several
    times), and its comment lines."""
    sections: Unit = {}
    comments: List[str] = []
    current = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line:
            continue
        if line[0] in "#;":
            comments.append(line)
        elif line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        else:
            key, _, value = line.partition("=")
            assert current is not None, f"{line!r} outside a section"
            current.setdefault(key.strip(), []).append(value.strip())
    return sections, comments


def unit(name: str) -> Tuple[Unit, List[str]]:
    return parse_unit((UNITS / name).read_text())


def one(sections: Unit, section: str, key: str) -> str:
    values = sections[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= appears {len(values)} times"
    return values[0]


def in_venv(command: Tuple[str, ...]) -> List[str]:
    program, *args = command
    return [VENV_BIN + program, *args]


def example_env() -> Dict[str, str]:
    assignments = {}
    for line in (UNITS / "backline.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assignments[name.strip()] = value.strip()
    return assignments


def test_there_is_one_unit_per_process_and_a_target_grouping_them() -> None:
    assert [spec.unit for spec in SPECS] == [
        "backline-actions.service",
        "backline-rasa.service",
        "backline-hub.service",
    ]
    assert sorted(path.name for path in UNITS.iterdir()) == sorted(
        [spec.unit for spec in SPECS] + ["backline.target", "backline.env.example", "README.md"]
    )
    target, _ = unit("backline.target")
    assert one(target, "Unit", "Wants").split() == [spec.unit for spec in SPECS]
    assert one(target, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_each_unit_runs_the_launchers_command(spec) -> None:
    sections, _ = unit(spec.unit)
    exec_start = shlex.split(one(sections, "Service", "ExecStart"))
    assert exec_start == in_venv(spec.command)
    assert f"${{{spec.port_variable}}}" in exec_start
    assert exec_start[exec_start.index("--port") + 1] == f"${{{spec.port_variable}}}"
    assert [shlex.split(value) for value in sections["Service"].get("ExecStartPre", [])] == (
        [in_venv(spec.prepare)] if spec.prepare else []
    )
    assert shlex.split(one(sections, "Service", "ExecStartPost")) == in_venv(health_wait(spec))
    assert one(sections, "Service", "WorkingDirectory") == INSTALL_DIR
    assert one(sections, "Service", "EnvironmentFile") == "/etc/backline/backline.env"


@pytest.mark.parametrize("spec", SPECS, ids=[spec.name for spec in SPECS])
def test_each_unit_restarts_stops_and_documents_its_health_check_like_the_supervisor(spec) -> None:
    sections, comments = unit(spec.unit)
    policy = Policy()
    service = sections["Service"]
    assert one(sections, "Service", "Restart") == "on-failure"
    assert one(sections, "Service", "RestartSec") == "1"
    assert one(sections, "Service", "RestartMaxDelaySec") == "30"
    assert one(sections, "Service", "KillMode") == "mixed"
    assert one(sections, "Service", "KillSignal") == "SIGTERM"
    assert int(one(sections, "Service", "TimeoutStopSec")) == policy.stop_grace == 20
    assert spec.start_timeout < int(one(sections, "Service", "TimeoutStartSec")) <= spec.start_timeout + 30
    assert int(one(sections, "Unit", "StartLimitBurst")) == policy.crash_budget
    assert int(one(sections, "Unit", "StartLimitIntervalSec")) == policy.crash_window
    assert one(sections, "Service", "User") == "backline"
    assert f"# Health: GET http://localhost:${{{spec.port_variable}}}{spec.health_path}" in comments
    assert one(sections, "Unit", "PartOf") == "backline.target"
    assert one(sections, "Install", "WantedBy") == "backline.target"
    assert "Environment" not in service or all("TOKEN" not in value for value in service["Environment"])


def test_the_units_start_in_the_launchers_order() -> None:
    previous = None
    for spec in SPECS:
        sections, _ = unit(spec.unit)
        after = one(sections, "Unit", "After").split()
        assert "network-online.target" in after
        assert [name for name in after if name.startswith("backline-")] == ([previous] if previous else [])
        previous = spec.unit


def test_every_variable_the_units_use_is_defined_and_the_example_holds_no_secret() -> None:
    example = example_env()
    for spec in SPECS:
        sections, _ = unit(spec.unit)
        service = sections["Service"]
        defined = set(example) | {value.partition("=")[0] for value in service.get("Environment", [])}
        used = {
            name
            for key in ("ExecStartPre", "ExecStart", "ExecStartPost")
            for value in service.get(key, [])
            for name in VARIABLE.findall(value)
        }
        assert used - defined == set(), spec.unit
    assert {name: example[name] for name in ("BACKLINE_ACTIONS_PORT", "BACKLINE_RASA_PORT", "BACKLINE_HUB_PORT")} == {
        "BACKLINE_ACTIONS_PORT": "5055",
        "BACKLINE_RASA_PORT": "5005",
        "BACKLINE_HUB_PORT": "5006",
    }
    assert example["RASA_TELEMETRY_ENABLED"] == "false"
    secrets = {name: value for name, value in example.items() if re.search(r"TOKEN|SECRET|PASSWORD", name)}
    assert secrets == {
        "BACKLINE_RASA_TOKEN": "",
        "BACKLINE_OPERATOR_TOKEN": "",
        "BACKLINE_DASHBOARD_SECRET": "",
        "BACKLINE_ACTION_TOKEN": "",
        "BACKLINE_CHANNEL_TOKEN": "",
        "BACKLINE_CHAT_SECRET": "",
    }
    assert {name: example[name] for name in ("BACKLINE_RASA_HOST", "BACKLINE_ACTIONS_HOST")} == {
        "BACKLINE_RASA_HOST": "127.0.0.1",
        "BACKLINE_ACTIONS_HOST": "127.0.0.1",
    }
    lines = (UNITS / "backline.env.example").read_text().splitlines()
    for name in secrets:
        at = next(index for index, line in enumerate(lines) if line.startswith(f"{name}="))
        above = at
        while above > 0 and lines[above - 1].startswith("#"):
            above -= 1
        assert lines[above].startswith("# set me:"), f"{name} is not marked 'set me'"
