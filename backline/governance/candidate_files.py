"""The files ``python -m backline candidates`` writes (`write`): nlu.yml and responses.yml in Rasa's
format ("3.1") with a comment naming each item's source, matrix.yml (suggested escalation.yml and
signals.yml changes, not Rasa data) and the folder's README.md. Rendering only: the evidence is
gathered by `backline.governance.candidates.collect`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

import yaml

from backline import configuration
from backline.routing.source import ConfigError
from backline.utc import iso

if TYPE_CHECKING:
    from backline.governance.candidates import Candidates

VERDICT_KEYS = ("needed", "not_needed", "too_late")


def _quoted(text: str) -> str:
    """A double-quoted YAML scalar (JSON's escaping is YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def _comment(text: str) -> str:
    return "# " + " ".join(str(text).split())


def _stamp(found: "Candidates", command: str, what: str) -> List[str]:
    return [
        _comment(what),
        _comment(f"Generated {found.generated} by `{command}` from {iso(found.since)} to {iso(found.until)}."),
        _comment("Candidates for review: nothing here is trained on until a designer copies it into data/."),
    ]


def nlu_yaml(found: "Candidates", command: str) -> str:
    lines = _stamp(
        found, command, "Candidate NLU examples: the customer's wording under the intent an expert or reviewer gave."
    )
    lines += ['version: "3.1"', "nlu:" if found.examples else "nlu: []"]
    intent = None
    for example in found.examples:
        if example.intent != intent:
            intent = example.intent
            lines += [f"- intent: {intent}", "  examples:"]
        lines += ["  " + _comment(source) for source in example.sources]
        lines.append(f"  - text: {_quoted(example.text)}")
    if found.not_added:
        lines += ["", _comment("Not added (decide by hand):")]
        lines += [_comment(f"- {note}") for note in found.not_added]
    return "\n".join(lines) + "\n"


def responses_yaml(found: "Candidates", command: str) -> str:
    lines = _stamp(found, command, "Candidate response variants: experts' edited answers (domain format).")
    placed = [v for v in found.variants if v.response]
    lines += ['version: "3.1"', "responses:" if placed else "responses: {}"]
    response = None
    for variant in placed:
        if variant.response != response:
            response = variant.response
            lines.append(f"  {response}:")
        lines += ["  " + _comment(source) for source in variant.sources]
        lines.append(f"  - text: {_quoted(variant.text)}")
    unplaced = [v for v in found.variants if not v.response]
    if unplaced:
        lines += ["", _comment("Expert answers with no response to add them to (write one, or add an utter_<intent>):")]
        for variant in unplaced:
            lines.append(_comment(f"- intent {variant.intent or '(none)'}, {'; '.join(variant.sources)}:"))
            lines.append(_comment(f"  {_quoted(variant.text)}"))
    return "\n".join(lines) + "\n"


def _categories() -> Mapping[str, Any]:
    try:
        return configuration.matrix().categories
    except ConfigError:
        return {}


def _category_of(intents: List[Optional[str]], categories: Mapping[str, Any]) -> Optional[str]:
    for intent in intents:
        for name, category in categories.items():
            if intent and intent in category.intents:
                return str(name)
    return None


def matrix_data(found: "Candidates") -> Dict[str, Any]:
    """Per intent: verdict counts, missed escalations, suggestions and their evidence ids."""
    categories = _categories()
    rows: Dict[str, Dict[str, Any]] = {}
    missed_by: Dict[str, List[Any]] = {}
    for missed in found.missed:
        missed_by.setdefault(missed.intent or "(none)", []).append(missed)
    for intent in sorted(set(found.verdicts) | set(missed_by)):
        counts = found.verdicts.get(intent, Counter())
        total = sum(counts.values())
        ids = found.verdict_ids.get(intent, {})
        suggestions = []
        if total and counts["not_needed"] * 2 > total:
            suggestions.append(
                f"{counts['not_needed']} of {total} escalations were not needed: consider `ai_may: answer` for this row, "
                "or lower its thresholds so the AI answers alone more often"
            )
        if total and counts["too_late"] * 2 > total:
            suggestions.append(
                f"{counts['too_late']} of {total} escalations should have come earlier: raise this row's thresholds, "
                "or add a trigger / exception category for what the customer said"
            )
        phrases = []
        for missed in missed_by.get(intent, []):
            category = _category_of([missed.corrected_intent, missed.intent], categories)
            phrases.append(
                {
                    "text": missed.text,
                    "add_to": f"signals.yml: {category}" if category else None,
                    "intent_given": missed.corrected_intent,
                    "evidence": missed.source,
                    "conversation": missed.conversation_id,
                }
            )
        if phrases:
            places = sorted({p["add_to"] for p in phrases if p["add_to"]})
            suggestions.append(
                f"{len(phrases)} conversation(s) the AI handled alone should have escalated: "
                + (
                    f"add their phrases to {', '.join(places)}"
                    if places
                    else "no exception category names this intent; "
                    "consider one (escalation.yml exception_categories + signals.yml) or a lower threshold"
                )
            )
        rows[intent] = {
            "verdicts": {key: counts[key] for key in VERDICT_KEYS},
            "missed_escalations": len(phrases),
            "suggestions": suggestions,
            "evidence": {key: ids.get(key, []) for key in VERDICT_KEYS if ids.get(key)},
            "missed_phrases": phrases,
        }
    return {"version": 1, "since": iso(found.since), "until": iso(found.until), "rows": rows}


def matrix_yaml(found: "Candidates", command: str) -> str:
    lines = _stamp(found, command, "Suggested escalation matrix changes (escalation.yml, signals.yml), per intent.")
    lines += [
        _comment("NOT Rasa data and not read by Backline: a reviewer edits escalation.yml / signals.yml by hand."),
        _comment("A suggestion is made when more than half of a row's verdicts say not needed (or too late), and"),
        _comment(
            "for every conversation a QA reviewer found should have escalated. Evidence: consultation and review ids."
        ),
    ]
    body = yaml.safe_dump(matrix_data(found), sort_keys=False, allow_unicode=True, width=120)
    return "\n".join(lines) + "\n" + body


README = """# Candidate training data (review before use)

Written by `{command}` on {at} from the verdicts, overrides and QA reviews between {since} and {until}.
Nothing in this folder is trained on: `rasa train` reads only `data/`, and this folder must stay outside it.

| File | What it is | How to use it |
|---|---|---|
| `nlu.yml` | {examples} NLU examples: the customer's wording under the intent an expert (override reason *wrong intent*) or a QA reviewer gave, masked, one comment per source (override / review id, consultation id). Examples already in `data/` or that need a decision are listed as comments at the end. | Read each example; copy the good ones into the intent's block in `data/nlu/<topic>.yml`. |
| `responses.yml` | {variants} response variants: experts' edited answers, under the response the AI's draft came from (or `utter_<intent>`). Answers without a response are comments at the end. | Copy good variants into `domain.yml` (or `data/responses/`), rewriting anything case-specific (names, amounts, order numbers). |
| `matrix.yml` | Per intent: the experts' verdicts (needed / not needed / too late), missed escalations found by QA, suggestions and evidence ids. Not Rasa data. | Discuss in the governance review; change `escalation.yml` / `signals.yml` by hand, then `python -m backline validate-matrix`. |

Check the files as Rasa reads them:

    rasa data validate --data data {out} --domain domain.yml

A warning that a response is defined in several domain files is expected: a variant is added to an existing
response. After merging, `make validate` and `make train` as usual, and delete this folder.
"""


def write(found: "Candidates", out: Path, command: str) -> List[Path]:
    """Write the four files into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {
        "nlu.yml": nlu_yaml(found, command),
        "responses.yml": responses_yaml(found, command),
        "matrix.yml": matrix_yaml(found, command),
        "README.md": README.format(
            command=command,
            at=found.generated,
            since=iso(found.since),
            until=iso(found.until),
            examples=len(found.examples),
            variants=len([v for v in found.variants if v.response]),
            out=out,
        ),
    }
    written = []
    for name, text in texts.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
