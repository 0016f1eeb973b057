"""The routing-model export: Markdown, CSV and JSON for governance review."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Dict, List

import pytest

from backline.routing import export as export_module
from backline.routing import load_experts, load_matrix
from backline.routing.export import CSV_COLUMNS, export

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "matrix"


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(ROOT / "escalation.yml")


@pytest.fixture()
def written(matrix, tmp_path) -> Dict[str, Path]:
    paths = export(matrix, tmp_path / "docs" / "routing")
    return {p.suffix: p for p in paths}


def _markdown_table(text: str, heading: str) -> List[List[str]]:
    """Cells of the first table under ``heading`` (header row included, separator excluded)."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows: List[List[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_writes_the_three_files(written, tmp_path):
    assert sorted(written) == [".csv", ".json", ".md"]
    for suffix, path in written.items():
        assert path.parent == tmp_path / "docs" / "routing"
        assert path.name == f"routing-model{suffix}"
        assert path.read_text(encoding="utf-8").strip()


def test_csv_has_one_row_per_intent(matrix, written):
    with written[".csv"].open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert [r["intent"] for r in rows] == sorted(matrix.rows)
    assert len(rows) == 33
    by_intent = {r["intent"]: r for r in rows}
    refund = by_intent["refund_request"]
    assert refund["ai_may"] == "collect_then_route"
    assert refund["queue"] == "billing"
    assert refund["exceptions"].split(";") == list(matrix.rows["refund_request"].exceptions)
    assert refund["collect"] == "order_id;amount"
    assert refund["route"] == (
        "form collect_refund_request collects order_id, amount, then a consultation to billing"
        " (policy_action / collected)"
    )
    assert by_intent["upgrade_interest"]["route"] == (
        "form collect_upgrade_interest collects product, email, then a consultation to sales (high_value / collected)"
    )
    assert by_intent["order_status"]["route"] == "the AI answers alone"
    assert by_intent["account_compromised"]["route"] == "handoff to security (sensitive_topic / account_security)"
    assert by_intent["order_status"]["collect"] == ""
    defaults = matrix.defaults.thresholds
    assert (refund["high"], refund["low"]) == (f"{defaults.high:.2f}", f"{defaults.low:.2f}")
    greet = by_intent["greet"]
    own = matrix.thresholds("greet")  # the row's own (written by `make bench`), not the defaults
    assert own.high < defaults.high
    assert (greet["high"], greet["low"]) == (f"{own.high:.2f}", f"{own.low:.2f}")
    compromised = by_intent["account_compromised"]
    assert (compromised["priority"], compromised["sla_minutes"], compromised["reason"]) == (
        "urgent",
        "15",
        "sensitive_topic",
    )
    assert by_intent["order_status"]["exceptions"] == ""
    for r in rows:
        row = matrix.rows[r["intent"]]
        assert (r["queue"], r["context_package"], int(r["sla_minutes"])) == (
            row.queue,
            row.context_package,
            row.sla_minutes,
        )
        assert r["description"] == row.description


def test_json_round_trip(matrix, written):
    data = json.loads(written[".json"].read_text(encoding="utf-8"))
    assert {"defaults", "triggers", "categories", "rows"} <= set(data)
    assert data["source"] == "escalation.yml"
    assert data["defaults"]["thresholds"]["high"] == pytest.approx(matrix.defaults.thresholds.high)
    assert data["defaults"]["thresholds"]["low"] == pytest.approx(matrix.defaults.thresholds.low)
    no_convergence = {"same_intent_turns": 3, "overlap": 0.70, "rejection_intents": ["answer_rejected"]}
    assert data["triggers"]["no_convergence"] == no_convergence
    assert [r["intent"] for r in data["rows"]] == sorted(matrix.rows)
    assert [c["name"] for c in data["categories"]] == sorted(matrix.categories)
    over = next(c for c in data["categories"] if c["name"] == "refund_over_limit")
    assert over["amount_above"] == {"value": 500.0, "currency": "EUR"}
    assert over["limit_eur"] == pytest.approx(500.0)
    assert over["intents"] == ["refund_request", "billing_dispute"]
    assert over["phrases"] == [] and over["patterns"] == []
    assert over["unrated_detail"] == "unrated_currency"
    legal = next(c for c in data["categories"] if c["name"] == "legal")
    assert "lawyer" in legal["phrases"] and legal["amount_above"] is None
    assert legal["unrated_detail"] is None
    assert legal["patterns"] == [list(p) for p in matrix.categories["legal"].patterns]
    explicit = data["triggers"]["explicit_request"]
    assert explicit["intents"] == ["request_human"] and explicit["min_confidence"] == pytest.approx(0.5)
    assert "human resources" in explicit["not_phrases"] and explicit["patterns"]
    assert [s["name"] for s in data["signals"]] == [spec.name for spec in matrix.signal_specs()]
    rows = {r["intent"]: r for r in data["rows"]}
    assert rows["legal_threat"]["queue"] == "legal"
    assert rows["legal_threat"]["reason"] == "sensitive_topic"
    assert rows["order_status"]["reason"] is None
    faq = rows["product_question"]
    assert faq["context_fields"] == list(matrix.context_packages[faq["context_package"]])


def test_markdown_has_a_table_row_per_intent(matrix, written):
    text = written[".md"].read_text(encoding="utf-8")
    table = _markdown_table(text, "## Intents")
    header, body = table[0], table[1:]
    assert header == list(export_module.MD_COLUMNS)
    assert header[:4] == ["intent", "AI may", "high", "low"] and header[-1] == "description"
    assert all(len(row) == len(header) for row in body)
    assert [row[0] for row in body] == sorted(matrix.rows)
    cells = {row[0]: dict(zip(header, row)) for row in body}
    assert cells["refund_request"]["queue"] == "billing"
    assert "refund_over_limit" in cells["refund_request"]["exceptions"]
    assert cells["account_compromised"]["priority"] == "urgent"
    categories = _markdown_table(text, "## Exception categories")
    assert [row[0] for row in categories[1:]] == sorted(matrix.categories)
    over = dict(zip(categories[0], next(r for r in categories[1:] if r[0] == "refund_over_limit")))
    assert over["classifier route"] == (
        "intents: refund_request, billing_dispute; amount > 500 EUR, or in a currency without a rate (unrated_currency)"
    )
    assert over["detail"] == "refund_over_limit; unrated_currency"
    assert over["rule route"] == "-"
    legal = dict(zip(categories[0], next(r for r in categories[1:] if r[0] == "legal")))
    assert legal["detail"] == "legal"
    assert legal["rule route"].endswith("(see Signals)")
    signals = _markdown_table(text, "## Signals")
    assert signals[0] == list(export_module.SIGNAL_COLUMNS)
    assert [row[0] for row in signals[1:]] == [spec.name for spec in matrix.signal_specs()]
    assert "human resources" in dict(zip(signals[0], signals[1]))["not phrases"]
    assert f"high {matrix.defaults.thresholds.high:.2f}" in text and matrix.defaults.thresholds.basis in text


def test_the_export_names_the_unrated_currency_detail(matrix, written):
    """Governance sees the fail-closed rule: the rated currencies, and what happens to any other one."""
    text = written[".md"].read_text(encoding="utf-8")
    assert (
        "- currency rates to EUR: CHF 1.07, EUR 1, GBP 1.14, USD 0.86; an amount in any other currency is never"
        " compared with a limit: on the intents of a category with one it escalates (fail closed)"
    ) in text.splitlines()
    categories = _markdown_table(text, "## Exception categories")
    assert categories[0][:4] == ["category", "label", "reason", "detail"]
    assert "unrated_currency" in categories[-1][3]
    data = json.loads(written[".json"].read_text(encoding="utf-8"))
    assert data["currency_rates"] == {"CHF": 1.07, "EUR": 1.0, "GBP": 1.14, "USD": 0.86}
    assert [(c["name"], c["detail"], c["unrated_detail"]) for c in data["categories"] if c["unrated_detail"]] == [
        ("refund_over_limit", "refund_over_limit", "unrated_currency")
    ]
    committed = (ROOT / "docs" / "routing" / "routing-model.json").read_text(encoding="utf-8")
    assert '"unrated_detail": "unrated_currency"' in committed


def test_without_a_money_limit_the_export_claims_no_fail_closed_rule(tmp_path):
    source = (FIXTURES / "small_escalation.yml").read_text(encoding="utf-8")
    path = tmp_path / "escalation.yml"
    shutil.copy(FIXTURES / "small_signals.yml", tmp_path / "small_signals.yml")
    path.write_text(source.replace("    amount_above:\n      value: 500\n      currency: EUR\n", ""), encoding="utf-8")
    text = export(load_matrix(path), tmp_path / "out")[0].read_text(encoding="utf-8")
    assert "- currency rates to EUR: EUR 1, USD 0.9" in text.splitlines()
    assert "unrated_currency" not in text


def test_markdown_escapes_pipes(tmp_path):
    source = (FIXTURES / "small_escalation.yml").read_text(encoding="utf-8")
    path = tmp_path / "escalation.yml"
    shutil.copy(FIXTURES / "small_signals.yml", tmp_path / "small_signals.yml")
    path.write_text(
        source.replace("description: Greeting.", "description: 'Hello | hi\n\n      there'"), encoding="utf-8"
    )
    out = export(load_matrix(path), tmp_path / "out")
    text = out[0].read_text(encoding="utf-8")
    body = _markdown_table(text, "## Intents")[1:]
    greet = next(row for row in body if row[0] == "greet")
    assert greet[-1] == "Hello \\| hi there"


def test_describe_pattern():
    pattern = (
        {"LOWER": {"IN": ["talk", "speak"]}},
        {"LOWER": "to", "OP": "+"},
        {"IS_PUNCT": True, "OP": "*"},
        {"OP": "?"},
    )
    assert export_module.describe_pattern(pattern) == "(talk|speak) to+ <IS_PUNCT=True>* <any>?"


def test_export_is_deterministic(matrix, tmp_path):
    first = [p.read_bytes() for p in export(matrix, tmp_path / "a")]
    second = [p.read_bytes() for p in export(load_matrix(ROOT / "escalation.yml"), tmp_path / "b")]
    assert first == second


def test_main_writes_files(tmp_path, capsys):
    out = tmp_path / "routing"
    code = export_module.main(["--matrix", str(ROOT / "escalation.yml"), "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["routing-model.csv", "routing-model.json", "routing-model.md"]
    assert capsys.readouterr().out.count("wrote ") == 3


def test_main_rejects_a_broken_matrix(tmp_path, capsys):
    broken = tmp_path / "escalation.yml"
    broken.write_text("version: 1\nintents: [\n", encoding="utf-8")
    code = export_module.main(["--matrix", str(broken), "--out", str(tmp_path / "out")])
    assert code == 1
    assert capsys.readouterr().out.startswith(f"{broken}:")
    assert not (tmp_path / "out").exists()


def test_the_committed_routing_model_is_up_to_date(tmp_path: Path) -> None:
    """docs/routing/ is what governance reviews: it must match escalation.yml (`make export-matrix`)."""
    committed = ROOT / "docs" / "routing"
    for path in export(load_matrix(ROOT / "escalation.yml"), tmp_path, load_experts(ROOT / "experts.yml")):
        assert (committed / path.name).read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"docs/routing/{path.name} is stale: run `make export-matrix`"
        )


def test_the_export_shows_hand_back_rules_teams_labels_and_what_is_derived(tmp_path):
    """What moved out of Python into escalation.yml / experts.yml is visible to governance."""
    matrix = load_matrix(ROOT / "escalation.yml")
    paths = export(matrix, tmp_path, load_experts(ROOT / "experts.yml"))
    text = paths[0].read_text(encoding="utf-8")
    followups = _markdown_table(text, "## Hand-back and waiting")
    assert followups[0] == ["follow-up type", "label", "intents"]
    assert ["order_status", "order status and tracking", "order_status, track_shipment"] in followups
    assert (
        "the AI then handles only their intents and greet, goodbye, thank, affirm, deny, bot_challenge, for 240 min"
        in text
    )
    teams = _markdown_table(text, "## Teams")
    assert ["security", "account security", "15", "support"] in teams
    intents = {row[0]: row for row in _markdown_table(text, "## Intents")}
    assert intents["legal_threat"][9] == "sensitive_topic *" and intents["legal_threat"][8] == "legal"
    assert intents["upgrade_interest"][9] == "high_value"  # entered on the row, not derived
    data = json.loads(paths[2].read_text(encoding="utf-8"))
    assert data["signals_source"] == "signals.yml"
    assert data["while_waiting"]["answers"] == "informational" and "pricing" in data["while_waiting"]["intents"]
    assert {t["queue"]: t["team"] for t in data["teams"]}["support"] == "customer support"
    rows = {r["intent"]: r for r in data["rows"]}
    assert rows["request_human"]["reason_from"] == "triggers.explicit_request.intents"
    assert rows["gdpr_request"]["reason_from"] == "exception_categories.legal"
    assert rows["gdpr_request"]["exceptions"] == ["legal"] and rows["order_status"]["reason_from"] is None
    assert {c["name"]: c["label"] for c in data["categories"]}["account_security"] == "possible account compromise"
