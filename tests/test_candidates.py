"""`python -m backline candidates`: reviewable Rasa-format candidates from seeded stores (tests/governance_stores.py):
the corrected examples under the right intents, masked and de-duplicated, response variants, matrix
suggestions, validated by the real `rasa data validate`; an --out inside data/ and a bad window refused."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from backline.consult.store import ConsultationStore
from backline.governance import candidates
from backline.governance.facts import TrackerReader
from tests.governance_stores import CARD, SINCE, UNTIL, History, seed_history

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RASA = PROJECT_ROOT / ".venv" / "bin" / "rasa"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return seed_history(tmp_path_factory.mktemp("candidates_history"))


@pytest.fixture(scope="module")
def folder(history: History, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("candidates_out") / "candidates"
    argv = ["--since", SINCE, "--until", UNTIL, "--out", str(out)]
    assert candidates.main([*argv, "--consult-url", history.consult_url, "--tracker-url", history.tracker_url]) == 0
    return out


def test_the_folder_holds_the_four_files(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "matrix.yml", "nlu.yml", "responses.yml"]
    readme = (folder / "README.md").read_text()
    assert "| `nlu.yml` | 2 NLU examples" in readme and "| `responses.yml` | 2 response variants" in readme
    assert f"rasa data validate --data data {folder} --domain domain.yml" in readme
    for path in folder.iterdir():
        assert CARD not in path.read_text(), path.name


def test_nlu_examples_sit_under_the_corrected_intents_masked_with_their_source(folder: Path, history: History) -> None:
    text = (folder / "nlu.yml").read_text()
    c1, review = history.cases["esc-1"], history.reviews["alone-3"]
    assert text.split('version: "3.1"\n', 1)[1] == (
        "nlu:\n"
        "- intent: billing_dispute\n"
        "  examples:\n"
        f"  # override of consultation {c1} (edited, reason wrong_intent, by bea)\n"
        '  - text: "please send my money back, card **** **** **** 4242"\n'
        "- intent: legal_threat\n"
        "  examples:\n"
        f"  # review {review} (should_have_escalated, by rita; conversation alone-3)\n"
        '  - text: "I will take you to court over this charge"\n'
    )
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    data = RasaYAMLReader().read(folder / "nlu.yml")
    assert sorted((m.get("intent"), m.get("text")) for m in data.intent_examples) == [
        ("billing_dispute", "please send my money back, card **** **** **** 4242"),
        ("legal_threat", "I will take you to court over this charge"),
    ]


def test_edited_answers_become_variants_of_the_intents_response(folder: Path, history: History) -> None:
    text = (folder / "responses.yml").read_text()
    assert text.split('version: "3.1"\n', 1)[1] == (
        "responses:\n"
        "  utter_billing_dispute:\n"
        f"  # override of consultation {history.cases['esc-1']} (edited, reason wrong_intent, by bea)\n"
        '  - text: "Your dispute is open; billing checks the charge within 2 days."\n'
        "  utter_return_item:\n"
        f"  # override of consultation {history.cases['esc-3']} (edited, reason tone, by ann)\n"
        '  - text: "Send the Dock back within 30 days; the prepaid label is under Orders › Return an item."\n'
    )


def test_matrix_suggestions_carry_counts_and_evidence(folder: Path, history: History) -> None:
    text = (folder / "matrix.yml").read_text()
    assert "# NOT Rasa data and not read by Backline" in text
    rows = yaml.safe_load(text)["rows"]
    assert sorted(rows) == ["billing_dispute", "change_plan", "refund_request", "return_item"]
    assert rows["return_item"]["verdicts"] == {"needed": 0, "not_needed": 2, "too_late": 0}
    assert rows["return_item"]["suggestions"] == [
        "2 of 2 escalations were not needed: consider `ai_may: answer` for this row, or lower its thresholds so the "
        "AI answers alone more often"
    ]
    assert sorted(rows["return_item"]["evidence"]["not_needed"]) == sorted(
        [history.cases["esc-2"], history.cases["esc-3"]]
    )
    assert rows["billing_dispute"]["missed_escalations"] == 1
    assert rows["billing_dispute"]["missed_phrases"] == [
        {
            "text": "I will take you to court over this charge",
            "add_to": "signals.yml: legal",
            "intent_given": "legal_threat",
            "evidence": history.reviews["alone-3"],
            "conversation": "alone-3",
        }
    ]
    assert rows["change_plan"]["suggestions"] == [] and rows["change_plan"]["verdicts"]["needed"] == 1


def test_rasa_data_validate_accepts_the_candidates(folder: Path) -> None:
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    done = subprocess.run(
        [str(RASA), "data", "validate", "--data", "data", str(folder), "--domain", "domain.yml"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "ERROR" not in output
    for line in output.splitlines():
        for name in ("nlu.yml", "responses.yml", "matrix.yml", "README.md", str(folder)):
            assert name not in line or "error" not in line.lower(), line


def test_examples_already_in_the_training_data_are_not_added_again(history: History) -> None:
    store = ConsultationStore(history.consult_url, migrate_schema=False)
    known = candidates.Known(
        intents=("billing_dispute", "legal_threat"),
        responses={"utter_billing_dispute": ["Your dispute is open; billing checks the charge within 2 days."]},
        examples={"i will take you to court over this charge": "legal_threat", "please send my money back, card **** **** **** 4242": "refund_request"},
    )  # fmt: skip
    since, until = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 16, tzinfo=dt.timezone.utc)
    found = candidates.collect(store, TrackerReader(history.tracker_url), since, until, known)
    assert found.examples == []
    assert [note.split(": ", 1)[1] for note in found.not_added] == [
        "in data/ under refund_request, not billing_dispute: please send my money back, card **** **** **** 4242",
        "already in data/ under legal_threat: I will take you to court over this charge",
    ]
    assert [(v.response, v.text) for v in found.variants] == [
        (None, "Send the Dock back within 30 days; the prepaid label is under Orders › Return an item.")
    ]


def test_the_same_wording_from_two_sources_is_one_example_with_both_sources(history: History, tmp_path: Path) -> None:
    for name in ("consultations.db", "tracker.db"):
        shutil.copy(history.consult_url.replace("sqlite:///", "").replace("consultations.db", name), tmp_path / name)
    store = ConsultationStore(f"sqlite:///{tmp_path / 'consultations.db'}", migrate_schema=False)
    when = dt.datetime(2026, 11, 4, 11, tzinfo=dt.timezone.utc)
    second = store.add_review(kind="ai_alone", subject="alone-3#again", conversation_id="alone-3", subject_at=when)
    assert second is not None
    store.record_review(second.id, "wrong_answer", reviewer="sam", corrected_intent="legal_threat", at=when)
    since, until = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 16, tzinfo=dt.timezone.utc)
    found = candidates.collect(
        store, TrackerReader(f"sqlite:///{tmp_path / 'tracker.db'}"), since, until, candidates.Known.load()
    )
    legal = [e for e in found.examples if e.intent == "legal_threat"]
    assert [(e.text, len(e.sources)) for e in legal] == [("I will take you to court over this charge", 2)]
    assert f"review {second.id} (wrong_answer, by sam; conversation alone-3)" in legal[0].sources


def test_an_out_inside_data_is_refused(history: History, capsys: pytest.CaptureFixture) -> None:
    target = PROJECT_ROOT / "data" / "candidates"
    assert candidates.main(["--out", str(target), "--consult-url", history.consult_url]) == 2
    assert (
        f"--out {target} is inside {PROJECT_ROOT / 'data'}: rasa train reads data/ recursively"
        in capsys.readouterr().err
    )
    assert not target.exists()


def test_a_bad_since_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert candidates.main(["--since", "90 days", "--out", str(tmp_path / "c")]) == 2
    assert (
        "backline candidates: --since: expected 30d, 12w, 24h or an ISO date such as 2026-11-01; got '90 days'"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "c").exists()
