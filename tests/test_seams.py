"""Each concern in one module that says what it is for (issue 15): which layer may import which, one
docstring per module, no module of the store or the context package past its size, each secret the
project generates private from its first byte."""

from __future__ import annotations

import ast
import stat
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPLIT = [
    "store",
    "rows",
    "transactions",
    "transitions",
    "threads",
    "workload",
    "context",
    "account",
    "grounds",
    "render",
]


def loaded_after(statement: str) -> List[str]:
    """The backline modules a fresh interpreter has loaded after ``statement``."""
    code = f"{statement}\nimport sys\nprint('\\n'.join(sorted(m for m in sys.modules if m.startswith('backline'))))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_masking_needs_nothing_of_the_project() -> None:
    assert loaded_after("import backline.consult.masking") == [
        "backline",
        "backline.consult",
        "backline.consult.masking",
    ]


def test_the_store_masks_without_the_business_layer() -> None:
    loaded = loaded_after("import backline.consult.store")
    assert not [m for m in loaded if m.startswith(("backline.business", "backline.hub", "backline.rasa"))]
    assert "backline.consult.masking" in loaded


@pytest.mark.parametrize("folder", ["backline/consult", "backline/hub", "actions"])
def test_every_module_says_what_it_is_for(folder: str) -> None:
    silent = [
        path.name
        for path in sorted((ROOT / folder).glob("*.py"))
        if path.name != "__init__.py" and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert silent == []


@pytest.mark.parametrize("name", SPLIT)
def test_the_store_and_the_context_package_stay_split(name: str) -> None:
    lines = (ROOT / "backline" / "consult" / f"{name}.py").read_text(encoding="utf-8").count("\n")
    assert lines <= 400, f"backline/consult/{name}.py has {lines} lines"


def test_the_store_keeps_its_public_names() -> None:
    from backline.consult import store

    for name in (
        "ConsultationStore",
        "Consultation",
        "ConsultationClosed",
        "ConsultationNotFound",
        "Message",
        "AWAITING_DELIVERY",
        "STATUSES",
        "ENV_URL",
        "PROJECT_ROOT",
        "VERSION_TABLE",
        "WEBHOOK_KEY_LIMIT",
        "WEBHOOK_KEY_TTL",
        "audit_events",
        "consultations",
        "webhook_deliveries",
        "metadata",
        "claim_webhook_key",
        "current_revision",
        "database_url",
        "main",
        "make_engine",
        "migrate",
        "as_utc",
        "utcnow",
    ):
        assert hasattr(store, name), name


def test_the_hubs_generated_secrets_are_private_from_creation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backline import launcher, paths
    from backline.hub import app, operators

    monkeypatch.setattr(app, "TOKEN_FILE", tmp_path / "var" / "operator_token")
    monkeypatch.setattr(operators, "SECRET_FILE", tmp_path / "var" / "dashboard_secret")
    monkeypatch.setattr(paths, "VAR", tmp_path / "var")
    made = {
        "operator_token": app.operator_token({}),
        "dashboard_secret": operators.dashboard_secret({}).decode(),
        "rasa_api_token": launcher.api_token({}),
    }
    env: dict = {}
    launcher.child_secrets(env)
    made.update({name: env[variable] for variable, name in launcher.GENERATED.items()})
    for name, value in made.items():
        path = tmp_path / "var" / name
        assert path.read_text() == value and len(value) >= 32, name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert app.operator_token({}) == made["operator_token"]  # generated once
    assert app.operator_token({"BACKLINE_OPERATOR_TOKEN": "from-env"}) == "from-env"


def test_routing_imports_nothing_of_the_project_nor_rasa_nor_spacy() -> None:
    """backline/routing is the pure model every adapter trusts: it stands alone."""
    modules = sorted(p.stem for p in (ROOT / "backline" / "routing").glob("*.py") if p.stem != "__init__")
    statement = "; ".join(f"import backline.routing.{m}" for m in modules)
    code = (
        f"{statement}\nimport sys\nprint('\\n'.join(sorted(m for m in sys.modules "
        f"if m.startswith(('backline', 'rasa', 'spacy', 'tensorflow')))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = done.stdout.split()
    assert "backline.routing.matrix" in loaded and "backline.routing.validate" in loaded
    assert [m for m in loaded if not m.startswith("backline.routing") and m != "backline"] == []
