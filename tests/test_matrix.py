"""The escalation matrix and expert directory: the real files, loaders, accessors, phrasings and team\nnames (the validator's broken-file cases: tests/test_matrix_validation.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Dict, List

import pytest

from backline.routing import load_experts, load_matrix
from backline.routing.validate import domain_intents, validate
from tests.matrix_files import (
    CONTRACT_INTENTS,
    FIXTURES,
    ROOT,
    ROW_ORDER_STATUS,
    SMALL_EXPERTS,
    SMALL_MATRIX,
    patched,
)


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(ROOT / "escalation.yml")


@pytest.fixture(scope="module")
def experts():
    return load_experts(ROOT / "experts.yml")


# --- the real files ---------------------------------------------------------


def test_fixture_domain_lists_the_contract_intents():
    intents, problems = domain_intents(FIXTURES / "domain_full.yml")
    assert problems == []
    assert sorted(intents) == sorted(CONTRACT_INTENTS)
    assert len(intents) == 33


def test_real_files_validate_against_the_contract_domain():
    problems = validate(ROOT / "escalation.yml", ROOT / "experts.yml", FIXTURES / "domain_full.yml")
    assert [str(p) for p in problems] == []


def test_a_collect_row_needs_its_form_with_exactly_its_fields(tmp_path):
    domain = (FIXTURES / "domain_full.yml").read_text(encoding="utf-8")
    swapped = domain.replace(
        "  collect_change_plan:\n    required_slots:\n      - email\n      - target_plan\n",
        "  collect_change_plan:\n    required_slots:\n      - target_plan\n",
    )
    missing = domain.replace("  collect_upgrade_interest:", "  collect_upgrade:")
    assert swapped != domain and missing != domain
    (tmp_path / "swapped.yml").write_text(swapped, encoding="utf-8")
    (tmp_path / "missing.yml").write_text(missing, encoding="utf-8")
    line = {
        name: n
        for n, text in enumerate((ROOT / "escalation.yml").read_text(encoding="utf-8").splitlines(), 1)
        for name in ("change_plan", "upgrade_interest")
        if text == f"  {name}:"
    }
    [wrong] = validate(ROOT / "escalation.yml", ROOT / "experts.yml", tmp_path / "swapped.yml")
    assert (wrong.line, wrong.message) == (
        line["change_plan"] + 2,
        "intents.change_plan.collect: ['email', "
        "'target_plan'], but the domain's form 'collect_change_plan' requires ['target_plan']",
    )
    [absent] = validate(ROOT / "escalation.yml", ROOT / "experts.yml", tmp_path / "missing.yml")
    assert absent.message == (
        "intents.upgrade_interest.collect: the domain has no form 'collect_upgrade_interest' "
        "to collect ['product', 'email']"
    )


def test_real_files_validate_against_the_project_domain():
    problems = validate(ROOT / "escalation.yml", ROOT / "experts.yml", ROOT / "domain.yml")
    assert [str(p) for p in problems] == []


def test_every_contract_intent_has_a_row(matrix):
    assert sorted(matrix.rows) == sorted(CONTRACT_INTENTS)


def test_real_matrix_encodes_the_business_rules(matrix):
    # derived by `make bench` (docs/benchmarks.md); change them only with the benchmark
    assert matrix.defaults.thresholds.high == pytest.approx(0.85)
    assert matrix.defaults.thresholds.low == pytest.approx(0.61)
    assert "CLINC150" in matrix.defaults.thresholds.basis
    assert set(matrix.currency_rates) >= {"EUR", "USD", "GBP", "CHF"}
    assert matrix.triggers.no_convergence.same_intent_turns == 3
    assert matrix.triggers.no_convergence.overlap == pytest.approx(0.70)
    assert matrix.triggers.no_convergence.rejection_intents == ("answer_rejected",)
    legal = matrix.row("legal_threat")
    assert (legal.ai_may, legal.queue, legal.route_reason) == ("never", "legal", "sensitive_topic")
    compromised = matrix.row("account_compromised")
    assert (compromised.ai_may, compromised.queue, compromised.priority) == ("never", "security", "urgent")
    refund = matrix.row("refund_request")
    assert (refund.ai_may, refund.queue) == ("collect_then_route", "billing")
    assert "refund_over_limit" in refund.exceptions
    assert (matrix.row("order_status").ai_may, matrix.row("order_status").queue) == ("answer", "support")
    human = matrix.row("request_human")
    assert (human.ai_may, human.route_reason) == ("never", "explicit_request")
    over = matrix.categories["refund_over_limit"]
    assert over.reason == "sensitive_topic" and over.amount_above is not None
    assert (over.amount_above.value, over.amount_above.currency, over.limit_eur) == (500, "EUR", 500)
    assert over.intents == ("refund_request", "billing_dispute") and not over.has_rule_route
    assert over.unrated_detail == "unrated_currency"  # an amount without a rate fails closed
    assert over.details == ("refund_over_limit", "unrated_currency")
    assert matrix.categories["account_security"].priority == "urgent"
    assert set(matrix.categories) == {"refund_over_limit", "legal", "formal_complaint", "account_security"}
    assert set(matrix.categories["legal"].intents) == {"legal_threat", "gdpr_request"}
    assert matrix.triggers.explicit_request.min_confidence == pytest.approx(0.5)


# --- loader accessors --------------------------------------------------------


def test_row_maps_retrieval_intents_to_their_base_row(matrix):
    row = matrix.row("product_question/warranty")
    assert row is matrix.rows["product_question"]
    assert matrix.has_row("product_question/returns")


def test_row_falls_back_to_defaults(matrix):
    row = matrix.row("weather_smalltalk")
    assert not matrix.has_row("weather_smalltalk")
    assert row.intent == "weather_smalltalk"
    assert row.ai_may == matrix.defaults.ai_may
    assert row.queue == matrix.defaults.queue
    assert row.thresholds == matrix.defaults.thresholds
    assert row.sla_minutes == matrix.defaults.sla_minutes
    assert row.exceptions == ()
    assert matrix.categories_for("weather_smalltalk") == []


def test_thresholds_override_and_default(tmp_path):
    override = ROW_ORDER_STATUS.replace("    queue:", "    thresholds: {low: 0.55}\n    queue:")
    path, _ = patched(tmp_path, SMALL_MATRIX, (ROW_ORDER_STATUS, override))
    m = load_matrix(path)
    assert (m.thresholds("greet").high, m.thresholds("greet").low) == (0.70, 0.30)
    assert (m.thresholds("order_status").high, m.thresholds("order_status").low) == (0.80, 0.55)
    assert (m.thresholds("request_human").high, m.thresholds("request_human").low) == (0.80, 0.40)


def test_threshold_tiers(matrix):
    t = matrix.thresholds("order_status")
    assert t.tier(t.high) == "high"
    assert t.tier(t.high - 0.01) == "medium"
    assert t.tier(t.low) == "medium"
    assert t.tier(t.low - 0.01) == "low"


def test_categories_for_follows_the_row(matrix):
    assert [c.name for c in matrix.categories_for("refund_request")] == list(matrix.row("refund_request").exceptions)
    assert [c.name for c in matrix.categories_for("legal_threat")] == ["legal"]
    assert matrix.categories_for("order_status") == []


def test_to_eur(matrix):
    assert matrix.to_eur(100, "EUR") == pytest.approx(100)
    assert matrix.to_eur(100, "usd") == pytest.approx(100 * matrix.currency_rates["USD"])
    assert matrix.to_eur(10, "GBP") == pytest.approx(10 * matrix.currency_rates["GBP"])
    with pytest.raises(ValueError, match="JPY"):
        matrix.to_eur(100, "JPY")


def test_has_rate(matrix):
    assert [matrix.has_rate(c) for c in ("EUR", "usd", " GBP ", "CHF")] == [True, True, True, True]
    assert [matrix.has_rate(c) for c in ("JPY", "SEK", "", None, "EURO")] == [False] * 5


def test_detail_codes(matrix):
    assert matrix.detail_codes() == (
        "refund_over_limit", "unrated_currency", "legal", "formal_complaint", "account_security",
    )  # fmt: skip


def test_refund_over_limit_rule(matrix):
    names = lambda **kw: [c.name for c in matrix.matching_categories("refund_request", **kw)]  # noqa: E731
    assert "refund_over_limit" in names(amount=780, currency="EUR")
    assert "refund_over_limit" not in names(amount=500, currency="EUR")
    assert "refund_over_limit" not in names(amount=120, currency="EUR")
    assert "refund_over_limit" not in names()
    usd_over = 500 / matrix.currency_rates["USD"] + 1
    assert "refund_over_limit" in names(amount=usd_over, currency="USD")
    assert "refund_over_limit" not in names(amount=usd_over - 2, currency="USD")
    assert matrix.matching_categories("order_status", amount=10_000, currency="EUR") == []


@pytest.mark.parametrize("amount", [1, 500, 90_000])
@pytest.mark.parametrize("currency", ["JPY", "sek", "XYZ"])
def test_an_amount_without_a_rate_fires_every_money_limit(matrix, amount, currency):
    for intent in ("refund_request", "billing_dispute"):
        assert [c.name for c in matrix.matching_categories(intent, amount=amount, currency=currency)] == [
            "refund_over_limit"
        ]
    assert matrix.matching_categories("order_status", amount=amount, currency=currency) == []
    assert [c.name for c in matrix.matching_categories("legal_threat", amount=amount, currency=currency)] == ["legal"]


def test_unrated_detail_defaults_with_a_money_limit_and_is_absent_without(tmp_path):
    small = load_matrix(SMALL_MATRIX)  # its refund_over_limit does not name one
    assert small.categories["refund_over_limit"].unrated_detail == "unrated_currency"
    assert small.categories["legal"].unrated_detail is None and small.categories["legal"].details == ("legal",)
    edit = (
        "    description: Large refunds.\n",
        "    unrated_detail: refund_unconvertible\n    description: Large refunds.\n",
    )
    path, _ = patched(tmp_path, SMALL_MATRIX, edit)
    named = load_matrix(path).categories["refund_over_limit"]
    assert named.details == ("refund_over_limit", "refund_unconvertible")
    # a money limit cannot be built to fail open, not even in code
    assert dataclasses.replace(named, unrated_detail=None).unrated_detail == "unrated_currency"


def test_signal_specs(matrix):
    specs = matrix.signal_specs()
    assert [spec.name for spec in specs] == ["explicit_request", "legal", "formal_complaint", "account_security"]
    explicit = specs[0]
    assert "live agent" in explicit.phrases and explicit.patterns
    assert {
        "human resources",
        "human-readable",
        "human readable",
        "human interface",
        "human error",
        "human rights",
    } <= set(explicit.not_phrases)
    by_name = {spec.name: spec for spec in specs}
    assert {"lawyer", "attorney", "solicitor", "lawsuit", "litigation", "legal action", "court", "small claims",
            "consumer protection", "gdpr", "data access request", "subject access request", "right to be forgotten",
            "ombudsman"} <= set(by_name["legal"].phrases)  # fmt: skip
    assert {"file a complaint", "formal complaint", "lodge a complaint", "official complaint", "bot or a human",
            "bot or human"} <= set(by_name["formal_complaint"].phrases)  # fmt: skip
    assert {"hacked", "compromised", "phishing", "account takeover", "stolen account"} <= set(
        by_name["account_security"].phrases
    )
    assert all(not spec.not_phrases for spec in specs[1:])
    for spec in specs:
        for pattern in spec.patterns:
            assert isinstance(pattern, tuple) and all(type(token) is dict for token in pattern)


def test_signal_patterns_compile_with_spacy(matrix):
    """What the loader accepts, spaCy's own validating Matcher accepts too."""
    spacy = pytest.importorskip("spacy")
    from spacy.matcher import Matcher

    matcher = Matcher(spacy.blank("en").vocab, validate=True)
    for spec in matrix.signal_specs():
        for i, pattern in enumerate(spec.patterns):
            matcher.add(f"{spec.name}_{i}", [list(pattern)])
    assert len(matcher) == sum(len(spec.patterns) for spec in matrix.signal_specs())


def test_referenced_intents(matrix):
    refs = matrix.referenced_intents()
    assert refs["triggers.explicit_request.intents"] == ("request_human",)
    assert refs["exception_categories.refund_over_limit.intents"] == ("refund_request", "billing_dispute")
    assert all(intent in matrix.rows for intents in refs.values() for intent in intents)


# --- escalation.yml phrasings, with a reference detector ----------------------------
# The production detector (backline/nlp/signals.py) is built by the NLU side; this one applies
# SignalSpec's documented semantics with spaCy directly: phrases on LOWER, token patterns, and a
# match overlapping a not-phrase does not count (each not-phrase gives a `not_<name>` signal).


@pytest.fixture(scope="module")
def detect(matrix):
    spacy = pytest.importorskip("spacy")
    from spacy.matcher import Matcher, PhraseMatcher

    from backline.nlp.signals import register_message_edges

    register_message_edges()  # the starts_message / ends_message token attributes patterns may use
    nlp = spacy.blank("en")
    compiled = []
    for spec in matrix.signal_specs():
        phrases, negatives = PhraseMatcher(nlp.vocab, attr="LOWER"), PhraseMatcher(nlp.vocab, attr="LOWER")
        patterns = Matcher(nlp.vocab, validate=True)
        phrases.add(spec.name, [nlp.make_doc(p) for p in spec.phrases])
        negatives.add(spec.name, [nlp.make_doc(p) for p in spec.not_phrases])
        for pattern in spec.patterns:
            patterns.add(spec.name, [list(pattern)])
        compiled.append((spec.name, phrases, negatives, patterns))

    def run(text: str) -> Dict[str, List[str]]:
        doc = nlp.make_doc(text.lower())  # Rasa's SpacyNLP lower-cases by default
        found: Dict[str, List[str]] = {}
        for name, phrases, negatives, patterns in compiled:
            vetoes = [(s, e) for _, s, e in negatives(doc)]
            hits = [(s, e) for _, s, e in [*phrases(doc), *patterns(doc)]]
            kept = [doc[s:e].text for s, e in hits if not any(s < ve and vs < e for vs, ve in vetoes)]
            if kept:
                found[name] = kept
            if vetoes:
                found[f"not_{name}"] = [doc[s:e].text for s, e in vetoes]
        return found

    return run


EXPLICIT_PHRASINGS = [
    "talk to a human", "I want to talk to a human", "can I speak with a real person please", "real person",
    "Real person please!", "human agent", "live agent", "I need a human agent now", "customer service representative",
    "get me a manager", "i want a person", "I need a person", "connect me to someone", "operator please",
    "Operator, please!", "agent!!", "can i talk to someone", "can I talk to somebody", "not a bot",
    "i want a human not a bot", "I'd like to speak to someone from support", "transfer me to a real person",
    "put me through to one of your people please", "let me speak to your supervisor", "speak to customer service",
    "escalate this to a human", "can a human help me", "is there a person i can talk to instead",
    "can someone from your team call me back", "i want a callback", "give me a real person", "human please",
    "AGENT NOW", "pass me to a colleague", "i don't want to talk to a bot", "chat with a live person",
    "where is my order? actually, let me talk to a human",
]  # fmt: skip

NOT_EXPLICIT = [
    "do you have a human resources department i could apply to", "is this export in a human-readable format",
    "is the log human readable", "does the hub have a human interface device mode", "was it a human error on your side",
    "what about human rights", "are you a real person?", "are you human", "am i talking to a person or a program",
    "you're not a bot, are you?", "is there a human typing this", "are you a bot or a human?",
    "i talked to a person at the store", "can someone please help me with my order", "i want to switch to the pro plan",
    "i need support for my hub x2", "i need to speak to my manager before we upgrade", "how do i get the agent license",
    "i'd like to upgrade to the business plan", "where is my order",
]  # fmt: skip

CATEGORY_PHRASINGS = [
    ("legal", "my lawyer will hear about this refund"), ("legal", "where is my order? otherwise i'll sue you"),
    ("legal", "I'll take you to court"), ("legal", "see you in small claims"), ("legal", "I'm filing a lawsuit"),
    ("legal", "this is a GDPR data access request"), ("legal", "i'm submitting a subject access request"),
    ("legal", "right to be forgotten"), ("legal", "I'll contact consumer protection"), ("legal", "the ombudsman will hear"),
    ("legal", "please delete my personal data"), ("legal", "what data do you hold on me"), ("legal", "my attorney"),
    ("formal_complaint", "I want to file a complaint"), ("formal_complaint", "this is a formal complaint"),
    ("formal_complaint", "i'd like to lodge a complaint"), ("formal_complaint", "are you a bot or a human?"),
    ("formal_complaint", "bot or human?"), ("formal_complaint", "I want to make an official complaint"),
    ("formal_complaint", "i want to complain"),
    ("account_security", "my account was hacked"), ("account_security", "someone logged into my account"),
    ("account_security", "I think my account is compromised"), ("account_security", "I got a phishing email"),
    ("account_security", "unauthorized login from brazil"), ("account_security", "this looks like an account takeover"),
    ("account_security", "someone changed my password"), ("account_security", "I didn't make this purchase"),
    ("account_security", "my account was stolen"), ("account_security", "i got a 2fa code i didn't request"),
]  # fmt: skip

NOT_CATEGORY = [
    "my colleague sue ordered the dock", "how do i reset my password", "i want a refund of 50 euros",
    "the courtesy call was nice", "where is my order", "can i update my payment method",
    "an unauthorized charge from kestrel on my statement",
]  # fmt: skip


@pytest.mark.parametrize("text", EXPLICIT_PHRASINGS)
def test_explicit_request_phrasings(detect, text):
    assert "explicit_request" in detect(text), detect(text)


@pytest.mark.parametrize("text", NOT_EXPLICIT)
def test_not_explicit_requests(detect, text):
    assert "explicit_request" not in detect(text), detect(text)


@pytest.mark.parametrize("text", NOT_EXPLICIT[:6])
def test_not_phrases_give_the_veto_signal(detect, text):
    assert "not_explicit_request" in detect(text)


@pytest.mark.parametrize("category, text", CATEGORY_PHRASINGS)
def test_category_phrasings(detect, category, text):
    assert category in detect(text), detect(text)


@pytest.mark.parametrize("text", NOT_CATEGORY)
def test_not_categories(detect, text):
    assert not set(detect(text)) & {"legal", "formal_complaint", "account_security"}, detect(text)


# --- the expert directory ------------------------------------------------------


def test_expert_directory(experts):
    assert experts.timezone == "Europe/Berlin"
    assert set(experts.queues) == {"billing", "legal", "security", "sales", "support"}
    assert [s.step for s in experts.sla_ladder] == ["next_person", "backup_queue", "supervisor"]
    assert experts.supervisor in experts.people
    for queue in experts.queues.values():
        assert queue.members and all(m in experts.people for m in queue.members)
        assert queue.backup is None or queue.backup in experts.queues
    billing = experts.members("billing")
    assert {p.id for p in billing} == set(experts.queue("billing").members)
    for person in experts.people.values():
        assert person.channel() is not None and person.channel().type == person.preferred
        slack = person.channel("slack")
        assert slack is None or re.fullmatch(r"U[A-Z0-9]+", slack.address)
        telegram = person.channel("telegram")
        assert telegram is None or telegram.address.isdigit()


def test_business_hours_and_holidays():
    d = load_experts(SMALL_EXPERTS)
    berlin = d.tz
    assert d.is_open(dt.datetime(2025, 11, 24, 9, 0, tzinfo=berlin))  # Monday
    assert not d.is_open(dt.datetime(2025, 11, 24, 18, 0, tzinfo=berlin))  # closing time
    assert not d.is_open(dt.datetime(2025, 11, 24, 7, 59))  # naive: directory time zone
    assert d.is_open(dt.datetime(2025, 11, 29, 11, 0, tzinfo=berlin))  # Saturday
    assert not d.is_open(dt.datetime(2025, 11, 30, 11, 0, tzinfo=berlin))  # Sunday closed
    assert not d.is_open(dt.datetime(2025, 12, 25, 11, 0, tzinfo=berlin))  # holiday, a Thursday
    assert d.is_open(dt.datetime(2025, 11, 24, 7, 30, tzinfo=dt.timezone.utc))  # 08:30 in Berlin
    assert d.is_on_duty("bob", dt.datetime(2025, 11, 24, 10, 0))
    assert not d.is_on_duty("bob", dt.datetime(2025, 11, 24, 12, 30))  # lunch break
    assert not d.is_on_duty("bob", dt.datetime(2025, 11, 25, 10, 0))  # Tuesday: no hours
    assert d.is_on_duty("ann", dt.datetime(2025, 11, 25, 10, 0))  # business hours


def test_real_security_queue_is_staffed_around_the_clock(experts):
    night = dt.datetime(2025, 11, 30, 3, 0)  # Sunday 03:00
    assert not experts.is_open(night)
    assert any(experts.is_on_duty(p.id, night) for p in experts.members("security"))


def test_team_names_come_from_the_directory(experts):
    """What customers hear ("our account security team") is experts.yml's, per queue."""
    assert experts.team_name("security") == "account security"
    assert experts.team_name("support") == "customer support"
    assert experts.team_name("billing") == "billing"
    assert experts.team_name(None) == "customer support"  # no queue yet: the support team
    assert experts.team_name("warehouse") == "warehouse"  # not in the directory: its own name
    small = load_experts(SMALL_EXPERTS)
    assert (small.team_name("support"), small.team_name("legal"), small.team_name(None)) == (
        "customer care",
        "legal",
        "customer care",
    )  # legal sets no team: the queue's name
