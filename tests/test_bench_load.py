"""The scale benchmark's load scripts and audit (backline/bench/load.py): what counts as lost, duplicated,
out of order, and an operator reply lost or doubled; and the client re-sending a turn with its id."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest
import requests

from backline.bench import load


def user(message_id: str) -> Dict[str, Any]:
    return {"event": "user", "text": "hi", "message_id": message_id}


def bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text}


def test_scripts_have_the_asked_shape_and_share_of_handoffs() -> None:
    conversations = load.scripts(20, 6, 0.25, "run")
    assert len(conversations) == 20
    assert [c.sender for c in conversations[:2]] == ["run-0000", "run-0001"]
    assert sum(c.asks_for_person for c in conversations) == 5
    assert all(len(c.turns) == 6 for c in conversations)
    asking = conversations[0]
    assert asking.asks_for_person and asking.turns[2] == ("run-0000-t02", load.PERSON)
    assert load.PERSON not in [text for _, text in conversations[1].turns]
    assert load.scripts(20, 6, 0.25, "run") == conversations  # the same seed, the same load


def test_a_clean_conversation_counts_nothing() -> None:
    audit = load.Audit()
    load.audit_conversation(["a", "b", "c"], [user("a"), bot("x"), user("b"), user("c")], audit, "s")
    assert (audit.conversations, audit.turns_sent, audit.lost, audit.duplicated, audit.out_of_order) == (1, 3, 0, 0, 0)
    assert audit.clean and audit.problems == []


def test_lost_duplicated_and_reordered_turns_are_counted() -> None:
    audit = load.Audit()
    load.audit_conversation(["a", "b", "c", "d"], [user("a"), user("c"), user("b"), user("c"), user("c")], audit, "s")
    assert (audit.lost, audit.duplicated, audit.out_of_order) == (1, 2, 1)
    assert audit.problems == ["s: turns out of order", "s: lost d", "s: duplicated c"]
    assert not audit.clean


def test_user_events_of_other_senders_ids_are_ignored() -> None:
    audit = load.Audit()
    load.audit_conversation(["a"], [user("a"), {"event": "user", "text": "x", "message_id": "zzz"}], audit, "s")
    assert audit.clean


def test_operator_replies_found_once_are_fine_missing_or_twice_are_not() -> None:
    events = {
        "s1": [bot(load.Operator.reply_text("c1"))],
        "s2": [],
        "s3": [bot(load.Operator.reply_text("c3")), bot("I checked with Mara: " + load.Operator.reply_text("c3"))],
    }
    audit = load.Audit()
    load.audit_replies({"c1": "s1", "c2": "s2", "c3": "s3"}, lambda sender: events[sender], audit)
    assert (audit.replies_sent, audit.replies_lost, audit.replies_doubled) == (3, 1, 1)
    assert audit.problems == ["s2: the reply of c2 never arrived", "s3: the reply of c3 arrived 2 times"]


class FlakyRest(BaseHTTPRequestHandler):
    """Answers 502 to the first ``fail`` posts of each message id, then 200; records every body."""

    fail = 2
    seen: List[Dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FlakyRest.seen.append(body)
        tries = sum(1 for b in FlakyRest.seen if b["message_id"] == body["message_id"])
        status = 502 if tries <= FlakyRest.fail else 200
        payload = json.dumps([{"recipient_id": body["sender"], "text": "ok"}]).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    FlakyRest.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyRest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_turn_is_resent_with_the_same_id_until_answered(flaky: str) -> None:
    with requests.Session() as session:
        result = load.send_turn(session, f"{flaky}/webhooks/rest/webhook", "t", "alice", "m-1", "hello", deadline=20)
    assert result.latency is not None and result.attempts == 3
    assert [b["message_id"] for b in FlakyRest.seen] == ["m-1", "m-1", "m-1"]
    assert {b["message"] for b in FlakyRest.seen} == {"hello"}


def test_a_run_reports_every_turn_and_the_resends(flaky: str) -> None:
    FlakyRest.fail = 1
    try:
        result = load.run_load(flaky, "t", load.scripts(3, 4, 0, "r"), turn_deadline=20)
    finally:
        FlakyRest.fail = 2
    assert len(result.turns) == 12 and result.unanswered == 0
    assert result.resent == 12
    assert len(FlakyRest.seen) == 24


def test_a_failed_send_is_named_by_its_innermost_cause() -> None:
    try:
        requests.post("http://127.0.0.1:1/webhooks/rest/webhook", timeout=2)  # nothing listens on port 1
    except requests.RequestException as error:
        assert load.failure_reason(error) == "ConnectionError (ConnectionRefusedError)"
    else:
        raise AssertionError("port 1 answered")
