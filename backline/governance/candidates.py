"""Candidate training data for the conversation designers: ``python -m backline candidates``.

Reads the consultation store and Rasa's tracker store over a window (default the last 90 days) and
writes, into a folder outside ``data/`` (``rasa train`` reads ``data/`` recursively, so candidates there
would be trained on without review; such an ``--out`` is refused):

- ``nlu.yml``: the customer's wording under the corrected intent, from overrides with reason
  ``wrong_intent`` and a corrected intent, from QA reviews with a corrected intent, and from missed
  escalations (``should_have_escalated``) the reviewer gave an intent; masked, de-duplicated, each with
  a comment naming its source. The wording is the last customer message before the escalation (the
  case's transcript) or, for a conversation the AI handled alone, before the reviewed moment (tracker);
- ``responses.yml``: experts' edited answers as new variants of the response the draft came from (or
  ``utter_<intent>``); answers without such a response are listed as comments;
- ``matrix.yml``: suggested escalation.yml / signals.yml changes per intent with verdict counts and
  evidence ids (not Rasa data);
- ``README.md``: what each file is and how to review and merge it.

`parse_window` and `open_stores` are shared with ``python -m backline report``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml
from sqlalchemy import and_, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from backline.consult.database import database_url
from backline.consult.masking import mask
from backline.consult.replies import case_intent
from backline.consult.schema import overrides, verdicts
from backline.consult.store import Consultation, ConsultationStore
from backline.governance import candidate_files as files
from backline.governance.facts import TrackerReader, tracker_url
from backline.governance.window import parse_moment
from backline.paths import PROJECT_ROOT
from backline.redact import redact
from backline.utc import as_utc, iso, utcnow

DEFAULT_SINCE = "90d"
DATA_DIR = PROJECT_ROOT / "data"
DOMAIN = PROJECT_ROOT / "domain.yml"
NEEDED_TABLES = ("consultations", "verdicts", "overrides", "qa_reviews")
_ENTITY = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


class StoreUnavailable(RuntimeError):
    """A store cannot be read (unreachable, or not a Backline store); the message is redacted."""


# --- the window and the stores (shared with the report) ---------------------------------


_EXPECTED = "expected 30d, 12w, 24h or an ISO date such as 2026-11-01"


def _window_moment(
    option: str, text: Optional[str], now: dt.datetime, *, end_of_day: bool = False
) -> Optional[dt.datetime]:
    """`backline.governance.window.parse_moment` with the command line's error (naming ``option``)."""
    try:
        return parse_moment(text, now, end_of_day=end_of_day)
    except ValueError:
        raise ValueError(f"{option}: {_EXPECTED}; got {str(text)[:40]!r}") from None


def parse_window(
    since: str, until: Optional[str], now: Optional[dt.datetime] = None
) -> Tuple[dt.datetime, dt.datetime]:
    """[since, until) from the command line; ValueError naming the option at fault."""
    now = as_utc(now or utcnow()).replace(microsecond=0)
    end = _window_moment("--until", until, now, end_of_day=True) or now
    start = _window_moment("--since", since, end)
    if start is None:
        raise ValueError(f"--since: {_EXPECTED}; got ''")
    if start >= end:
        raise ValueError(f"--since ({iso(start)}) must be before --until ({iso(end)})")
    return start, end


def command_line(name: str, argv: Optional[Sequence[str]]) -> str:
    """The command as run, for the files' stamp (credentials in URLs redacted)."""
    words = list(sys.argv[1:] if argv is None else argv)
    return redact(" ".join([f"python -m backline {name}", *(json.dumps(w) if " " in w else w for w in words)]))


def _missing_sqlite(url: str) -> bool:
    parsed = make_url(url)
    name = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and name not in ("", ":memory:") and not Path(name).exists()


def open_stores(
    consult_url: Optional[str], tracker: Optional[str]
) -> Tuple[ConsultationStore, Optional[TrackerReader], List[str]]:
    """The consultation store (read as it is: never migrated here) and the tracker store (None, with a
    note, when its SQLite file does not exist). `StoreUnavailable` when the consultation store cannot be read."""
    consult_url = consult_url or database_url()
    tracker = tracker or tracker_url()
    notes: List[str] = []
    if _missing_sqlite(consult_url):
        raise StoreUnavailable(f"no consultation store at {redact(consult_url)} (the file does not exist)")
    try:
        store = ConsultationStore(consult_url, migrate_schema=False)
        tables = set(inspect(store.engine).get_table_names())
    except SQLAlchemyError as error:
        raise StoreUnavailable(
            f"cannot reach the consultation store at {redact(consult_url)}: {redact(str(getattr(error, 'orig', None) or error))[:300]}"
        ) from None
    missing = [t for t in NEEDED_TABLES if t not in tables]
    if missing:
        raise StoreUnavailable(
            f"the consultation store at {redact(consult_url)} has no table {missing[0]}: "
            "run `python -m backline migrate-consultations migrate`"
        )
    reader: Optional[TrackerReader] = None
    if _missing_sqlite(tracker):
        notes.append(f"no tracker store at {redact(tracker)}: conversations the AI handled alone are not counted")
    else:
        try:
            reader = TrackerReader(tracker)
            with reader.engine.connect():
                pass
        except SQLAlchemyError as error:
            raise StoreUnavailable(
                f"cannot reach the tracker store at {redact(tracker)}: {redact(str(error))[:300]}"
            ) from None
    return store, reader, notes


def out_of_data(out: Path) -> Path:
    """``out`` resolved; ValueError when it is inside a ``data/`` folder Rasa trains on."""
    resolved = out.expanduser().resolve()
    for data in {DATA_DIR.resolve(), (Path.cwd() / "data").resolve()}:
        if resolved == data or data in resolved.parents:
            raise ValueError(
                f"--out {out} is inside {data}: rasa train reads data/ recursively and would train on the "
                "candidates unreviewed; write them elsewhere (default: candidates/)"
            )
    return resolved


# --- what the project already has --------------------------------------------------------


def _yaml_files(folder: Path) -> List[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def plain(text: str) -> str:
    """An example's text as it is matched: entity annotations removed, spaces collapsed, lower case."""
    return " ".join(_ENTITY.sub(r"\1", text).split()).lower()


@dataclass
class Known:
    """The domain's intents and responses and the training examples already in ``data/``."""

    intents: Tuple[str, ...] = ()
    responses: Dict[str, List[str]] = field(default_factory=dict)
    examples: Dict[str, str] = field(default_factory=dict)
    retrieval: Tuple[str, ...] = ()

    @classmethod
    def load(cls, data: Path = DATA_DIR, domain: Path = DOMAIN) -> "Known":
        known = cls()
        documents = [yaml.safe_load(domain.read_text(encoding="utf-8")) or {}]
        documents += [yaml.safe_load(p.read_text(encoding="utf-8")) or {} for p in _yaml_files(data)]
        intents = [i if isinstance(i, str) else next(iter(i)) for i in documents[0].get("intents") or ()]
        retrieval = set()
        for document in documents:
            for name, variants in (document.get("responses") or {}).items():
                texts = [str(v.get("text", "")).strip() for v in variants or () if isinstance(v, dict)]
                known.responses.setdefault(str(name), []).extend(texts)
            for block in document.get("nlu") or ():
                intent = str(block.get("intent") or "")
                if "/" in intent:
                    retrieval.add(intent.split("/", 1)[0])
                examples = block.get("examples") or ""
                lines = examples.splitlines() if isinstance(examples, str) else [e.get("text", "") for e in examples]
                for line in lines:
                    text = re.sub(r"^\s*-\s?", "", str(line)).strip()
                    if intent and text:
                        known.examples.setdefault(plain(text), intent)
        known.intents, known.retrieval = tuple(intents), tuple(sorted(retrieval))
        return known


# --- the evidence ------------------------------------------------------------------------


@dataclass
class Example:
    intent: str
    text: str
    sources: List[str]


@dataclass
class Variant:
    response: Optional[str]
    intent: Optional[str]
    text: str
    sources: List[str]


@dataclass
class Missed:
    intent: Optional[str]
    corrected_intent: Optional[str]
    text: Optional[str]
    source: str
    conversation_id: str = ""


@dataclass
class Candidates:
    since: dt.datetime
    until: dt.datetime
    generated: str = field(default_factory=lambda: str(iso(utcnow().replace(microsecond=0))))
    examples: List[Example] = field(default_factory=list)
    not_added: List[str] = field(default_factory=list)
    variants: List[Variant] = field(default_factory=list)
    missed: List[Missed] = field(default_factory=list)
    verdicts: Dict[str, Counter] = field(default_factory=dict)
    verdict_ids: Dict[str, Dict[str, List[str]]] = field(default_factory=dict)


def one_line(text: Any) -> str:
    return " ".join(str(text or "").split())


def _moment(value: Any) -> Optional[dt.datetime]:
    try:
        return as_utc(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))) if value else None
    except ValueError:
        return None


def _customer_text(entries: Sequence[Mapping[str, Any]], before: Optional[dt.datetime] = None) -> Optional[str]:
    """The last customer line (at or before ``before`` when the lines carry times), masked."""
    said = [
        e for e in entries if (e.get("speaker") or e.get("role")) in ("customer", "user") and one_line(e.get("text"))
    ]
    if before is not None:
        limit = before + dt.timedelta(seconds=1)
        said = [e for e in said if (_moment(e.get("at")) or limit) <= limit] or said
    return mask(one_line(said[-1]["text"])) if said else None


def collect(
    store: ConsultationStore,
    tracker: Optional[TrackerReader],
    since: dt.datetime,
    until: dt.datetime,
    known: Known,
) -> Candidates:
    """Examples, response variants, missed escalations and verdicts per intent over [since, until)."""
    found = Candidates(since, until)

    def window_of(column: Any) -> Any:
        return and_(column >= as_utc(since).replace(tzinfo=None), column < as_utc(until).replace(tzinfo=None))

    cases: Dict[str, Optional[Consultation]] = {}

    def case(cid: Optional[str]) -> Optional[Consultation]:
        if cid and cid not in cases:
            cases[cid] = store.get(cid)
        return cases.get(cid) if cid else None

    def wording(cid: Optional[str], conversation_id: str, at: Optional[dt.datetime]) -> Optional[str]:
        found_case = case(cid)
        if found_case is not None:
            text = _customer_text(found_case.transcript, found_case.created_at)
            if text:
                return text
        transcript: Sequence[Mapping[str, Any]] = tracker.transcript(conversation_id) if tracker is not None else []
        return _customer_text(transcript, at)

    examples: Dict[Tuple[str, str], Example] = {}

    def example(intent: Optional[str], text: Optional[str], source: str) -> None:
        if not intent or not text:
            return
        text = text.replace("[", "(").replace("]", ")")
        intent = intent.split("/", 1)[0]
        if intent not in known.intents:
            found.not_added.append(f"{source}: intent {intent} is not in the domain: {text}")
        elif intent in known.retrieval:
            found.not_added.append(f"{source}: {intent} is a retrieval intent, pick its {intent}/<key>: {text}")
        elif known.examples.get(plain(text)) == intent:
            found.not_added.append(f"{source}: already in data/ under {intent}: {text}")
        elif plain(text) in known.examples:
            found.not_added.append(f"{source}: in data/ under {known.examples[plain(text)]}, not {intent}: {text}")
        else:
            examples.setdefault((intent, plain(text)), Example(intent, text, [])).sources.append(source)

    with store.engine.connect() as connection:
        override_rows = list(
            connection.execute(select(overrides).where(window_of(overrides.c.at)).order_by(overrides.c.at))
        )
        verdict_rows = list(
            connection.execute(select(verdicts).where(window_of(verdicts.c.at)).order_by(verdicts.c.at))
        )
    variants: Dict[Tuple[Optional[str], str], Variant] = {}
    by_text = {plain(t): name for name, texts in known.responses.items() for t in texts}
    for row in override_rows:
        cid = row.consultation_id
        found_case = case(cid)
        conversation = found_case.conversation_id if found_case else ""
        source = f"override of consultation {cid} ({row.kind}, reason {row.reason or 'unspecified'}, by {row.actor})"
        intent = row.intent or (case_intent(found_case) if found_case else None)
        if row.reason == "wrong_intent" and row.corrected_intent:
            example(row.corrected_intent, wording(cid, conversation, row.at), source)
            intent = row.corrected_intent
        if row.kind == "edited" and one_line(row.final_text):
            response = by_text.get(plain(row.ai_draft)) if row.reason != "wrong_intent" else None
            response = response or (f"utter_{intent}" if f"utter_{intent}" in known.responses else None)
            text = mask(str(row.final_text).strip())
            if response and plain(text) in {plain(t) for t in known.responses[response]}:
                continue
            variants.setdefault((response, plain(text)), Variant(response, intent, text, [])).sources.append(source)
    for row in verdict_rows:
        judged = case(row.consultation_id)
        intent = (case_intent(judged) if judged else None) or "(none)"
        found.verdicts.setdefault(intent, Counter())[row.verdict] += 1
        found.verdict_ids.setdefault(intent, {}).setdefault(row.verdict, []).append(row.consultation_id)
    for review in store.reviews(status="reviewed", since=since, until=until):
        source = f"review {review.id} ({review.verdict}, by {review.reviewer}; conversation {review.conversation_id}"
        source += f", consultation {review.consultation_id})" if review.consultation_id else ")"
        text = wording(review.consultation_id, review.conversation_id, review.subject_at)
        if review.corrected_intent:
            example(review.corrected_intent, text, source)
        if review.verdict == "should_have_escalated":
            found.missed.append(Missed(review.intent, review.corrected_intent, text, review.id, review.conversation_id))
    found.examples = sorted(examples.values(), key=lambda e: (e.intent, e.text.lower()))
    found.variants = sorted(variants.values(), key=lambda v: (v.response or "~", v.text))
    return found


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backline candidates", description=__doc__.split("\n\n")[0])
    parser.add_argument("--since", default=DEFAULT_SINCE, help="30d, 12w, 24h or an ISO date (default: %(default)s)")
    parser.add_argument(
        "--until", default=None, help="an ISO date (its end) or datetime, or 24h / 7d ago (default: now)"
    )
    parser.add_argument("--out", default="candidates", help="output folder, never inside data/ (default: %(default)s)")
    parser.add_argument(
        "--consult-url", default=None, help="consultation store URL (default: $BACKLINE_CONSULT_DB_URL)"
    )
    parser.add_argument(
        "--tracker-url", default=None, help="tracker store URL (default: $BACKLINE_TRACKER_DB_URL / _DB)"
    )
    args = parser.parse_args(argv)
    try:
        since, until = parse_window(args.since, args.until)
        out = out_of_data(Path(args.out))
    except ValueError as error:
        print(f"backline candidates: {error}", file=sys.stderr)
        return 2
    try:
        store, tracker, notes = open_stores(args.consult_url, args.tracker_url)
        for note in notes:
            print(f"note: {note}")
        print(f"reading verdicts, overrides and reviews from {iso(since)} to {iso(until)}")
        found = collect(store, tracker, since, until, Known.load())
    except (StoreUnavailable, SQLAlchemyError) as error:
        print(f"backline candidates: {redact(str(error))[:500]}", file=sys.stderr)
        return 1
    for path in files.write(found, out, command_line("candidates", argv)):
        print(f"wrote {path}")
    print(
        f"{len(found.examples)} NLU examples, {len(found.variants)} response variants, {len(found.missed)} missed escalations"
    )
    return 0
