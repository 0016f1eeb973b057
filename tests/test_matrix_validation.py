"""The validator: one broken escalation.yml, signals.yml or experts.yml per kind of mistake, each reported\nat its file and line; the command line and its warnings."""

from __future__ import annotations

import re
from typing import List

import pytest

from backline import validation as validate_module
from backline.routing import ExpertsError, MatrixError, Problem, load_experts, load_matrix
from backline.routing.validate import domain_intents, validate
from backline.validation import currency_warnings, validate_with_warnings
from tests.matrix_files import (
    FIXTURES,
    MARK,
    ROOT,
    ROW_ORDER_STATUS,
    SMALL_DOMAIN,
    SMALL_EXPERTS,
    SMALL_MATRIX,
    SMALL_SIGNALS,
    patched,
)


@pytest.fixture(scope="module")
def matrix():
    return load_matrix(ROOT / "escalation.yml")


@pytest.fixture(scope="module")
def experts():
    return load_experts(ROOT / "experts.yml")


# --- the validator: one broken matrix per kind --------------------------------


MATRIX_CASES = {
    "missing intent row": (
        [(ROW_ORDER_STATUS, ""), ("\nintents:\n", f"\nintents:  {MARK}\n"), ("[order_status]", "[greet]")],
        "domain intent 'order_status'",
    ),
    "unknown intent": (
        [(ROW_ORDER_STATUS, ROW_ORDER_STATUS + ROW_ORDER_STATUS.replace("  order_status:", f"  teleport:  {MARK}"))],
        "intents.teleport: not an intent of the domain",
    ),
    "unknown queue in a row": (
        [("    queue: billing\n    description: Refund.", f"    queue: warehouse  {MARK}\n    description: Refund.")],
        "intents.refund_request.queue: unknown queue 'warehouse'",
    ),
    "unknown queue in a category": (
        [("    queue: legal\n    priority: high", f"    queue: lawyers  {MARK}\n    priority: high")],
        "exception_categories.legal.queue: unknown queue 'lawyers'",
    ),
    "unknown default queue": (
        [("  queue: support\n  sla_minutes", f"  queue: helpdesk  {MARK}\n  sla_minutes")],
        "defaults.queue: unknown queue 'helpdesk'",
    ),
    "threshold out of range": (
        [("thresholds: {high: 0.70, low: 0.30}", f"thresholds: {{high: 1.30, low: 0.30}}  {MARK}")],
        "intents.greet.thresholds.high: 1.3 is greater than the maximum of 1",
    ),
    "negative default threshold": (
        [("thresholds: {high: 0.80, low: 0.40}", f"thresholds: {{high: 0.80, low: -0.10}}  {MARK}")],
        "defaults.thresholds.low: -0.1 is less than the minimum of 0",
    ),
    "low above high": (
        [("thresholds: {high: 0.70, low: 0.30}", f"thresholds: {{high: 0.30, low: 0.70}}  {MARK}")],
        "intents.greet.thresholds: low 0.70 is above high 0.30",
    ),
    "low above the inherited high": (
        [
            (
                ROW_ORDER_STATUS,
                ROW_ORDER_STATUS.replace("    queue:", f"    thresholds:\n      low: 0.90  {MARK}\n    queue:"),
            )
        ],
        "intents.order_status.thresholds: low 0.90 is above high 0.80",
    ),
    "default low above default high": (
        [("thresholds: {high: 0.80, low: 0.40}", f"thresholds: {{high: 0.40, low: 0.80}}  {MARK}")],
        "defaults.thresholds: low 0.80 is above high 0.40",
    ),
    "amount rule with a negative value": (
        [("      value: 500\n", f"      value: -500  {MARK}\n")],
        "exception_categories.refund_over_limit.amount_above.value: -500 is less than or equal to the minimum of 0",
    ),
    "amount rule in a currency without a rate": (
        [("      currency: EUR\n", f"      currency: JPY  {MARK}\n")],
        "exception_categories.refund_over_limit.amount_above: no rate for currency 'JPY'",
    ),
    "amount rule without a currency": (
        [
            (
                "    amount_above:\n      value: 500\n      currency: EUR\n",
                f"    amount_above:  {MARK}\n      value: 500\n",
            )
        ],
        "refund_over_limit.amount_above: 'currency' is a required property",
    ),
    "unrated detail without a money limit": (
        [
            (
                "    description: Legal matters.\n",
                f"    unrated_detail: unrated_currency  {MARK}\n    description: Legal matters.\n",
            )
        ],
        "exception_categories.legal.unrated_detail: applies only with amount_above",
    ),
    "unrated detail equal to the detail": (
        [
            (
                "    description: Large refunds.\n",
                f"    unrated_detail: refund_over_limit  {MARK}\n    description: Large refunds.\n",
            )
        ],
        "exception_categories.refund_over_limit.unrated_detail: must differ from detail 'refund_over_limit'",
    ),
    "unrated detail that is not a code": (
        [
            (
                "    description: Large refunds.\n",
                f"    unrated_detail: No Rate  {MARK}\n    description: Large refunds.\n",
            )
        ],
        "exception_categories.refund_over_limit.unrated_detail: 'No Rate' does not match",
    ),
    "category with an unknown key": (
        [("    amount_above:\n", f"    amount_over:  {MARK}\n")],
        "exception_categories.refund_over_limit.amount_over: unknown key",
    ),
    "the old rule block": (
        [
            (
                "    description: Legal matters.\n",
                f"    rule:  {MARK}\n      phrases: [lawyer, legal action]\n    description: Legal matters.\n",
            )
        ],
        "exception_categories.legal.rule: unknown key",
    ),
    "phrases in the matrix (they belong in the signals file)": (
        [("    description: Legal matters.\n", f"    phrases: [lawyer]  {MARK}\n    description: Legal matters.\n")],
        "exception_categories.legal.phrases: unknown key",
    ),
    "category without any route": (
        [
            (
                "\nintents:\n",
                f"\n  orphan:  {MARK}\n    reason: sensitive_topic\n    detail: legal\n    queue: legal\n"
                "    priority: high\n    intents: []\n    description: Nothing.\nintents:\n",
            )
        ],
        "exception_categories.orphan: no route",
    ),
    "amount limit without intents": (
        [
            (
                "\nintents:\n",
                f"\n  big:\n    reason: sensitive_topic\n    detail: legal\n    queue: legal\n"
                f"    priority: high\n    intents: []\n    amount_above: {{value: 9, currency: EUR}}  {MARK}\n"
                "    description: Big.\nintents:\n",
            )
        ],
        "exception_categories.big.amount_above: applies to the classifier route, which needs intents",
        [("\nlegal:\n", "\nbig:\n  phrases: [huge]\nlegal:\n")],  # its rule route, in the signals file
    ),
    "category named like a signal": (
        [
            (
                "\nintents:\n",
                f"\n  explicit_request:  {MARK}\n    reason: sensitive_topic\n    detail: legal\n"
                "    queue: legal\n    priority: high\n    intents: [legal_threat]\n"
                "    description: Clash.\nintents:\n",
            )
        ],
        "exception_categories.explicit_request: reserved name",
    ),
    "unknown trigger": (
        [("  no_convergence:\n", f"  always_escalate:  {MARK}\n    intents: [greet]\n  no_convergence:\n")],
        "triggers.always_escalate: unknown trigger (allowed: explicit_request, high_value, no_convergence, sentiment)",
    ),
    "unknown key in a trigger": (
        [("    min_confidence: 0.5\n", f"    min_confidence: 0.5\n    regexes: [human]  {MARK}\n")],
        "triggers.explicit_request.regexes: unknown key",
    ),
    "no-convergence window too short to compare two answers": (
        [("    same_intent_turns: 3\n", f"    same_intent_turns: 2  {MARK}\n")],
        "triggers.no_convergence.same_intent_turns: 2 is less than the minimum of 3",
    ),
    "min_confidence out of range": (
        [("    min_confidence: 0.5\n", f"    min_confidence: 5  {MARK}\n")],
        "triggers.explicit_request.min_confidence: 5 is greater than the maximum of 1",
    ),
    "category with an unknown reason code": (
        [
            (
                "    reason: sensitive_topic\n    detail: legal\n",
                f"    reason: angry_customer  {MARK}\n    detail: legal\n",
            )
        ],
        "exception_categories.legal.reason: 'angry_customer' is not one of",
    ),
    "category listing an intent without a row": (
        [("    intents: [legal_threat]", f"    intents: [legal_threat, lawsuit_intent]  {MARK}")],
        "exception category 'legal': intent 'lawsuit_intent' has no row",
    ),
    "a row that still lists its exception categories": (
        [
            (
                "    queue: billing\n    description: Refund.",
                f"    queue: billing\n    exceptions: [refund_over_limit]  {MARK}\n    description: Refund.",
            )
        ],
        "intents.refund_request.exceptions: no longer entered: derived from exception_categories.<name>.intents",
    ),
    "a reason entered where the matrix derives it": (
        [
            (
                "    queue: support\n    description: Asks for a person.",
                f"    queue: support\n    reason: explicit_request  {MARK}\n    description: Asks for a person.",
            )
        ],
        "intents.request_human.reason: derived from triggers.explicit_request.intents (explicit_request); remove it",
    ),
    "a detail entered where a category gives it": (
        [
            (
                "    priority: urgent\n    description: Legal threat.",
                f"    priority: urgent\n    detail: lawsuit  {MARK}\n    description: Legal threat.",
            )
        ],
        "intents.legal_threat.detail: derived from exception_categories.legal (sensitive_topic / legal)",
    ),
    "a follow-up type naming an intent without a row": (
        [("      intents: [order_status]", f"      intents: [order_status, teleport]  {MARK}")],
        "hand_back.followups.info: intent 'teleport' has no row in intents",
    ),
    "an always-allowed intent without a row": (
        [("  always_allowed: [greet]", f"  always_allowed: [greet, hello]  {MARK}")],
        "hand_back.always_allowed: intent 'hello' has no row in intents",
    ),
    "while_waiting naming an unknown follow-up type": (
        [("  answers: info", f"  answers: everything  {MARK}")],
        "while_waiting.answers: unknown follow-up type 'everything' (hand_back.followups: info)",
    ),
    "a follow-up type without a label": (
        [("      label: order questions\n", ""), ("    info:\n", f"    info:  {MARK}\n")],
        "hand_back.followups.info: 'label' is a required property",
    ),
    "an alias that already means another follow-up type": (
        [
            (
                "      intents: [order_status]\n",
                "      intents: [order_status]\n    tracking:\n      label: tracking\n"
                f"      aliases: [orders]  {MARK}\n      intents: [order_status]\n",
            )
        ],
        "hand_back.followups.tracking.aliases: 'orders' already means 'info'",
    ),
    "bad ai_may": (
        [(ROW_ORDER_STATUS, ROW_ORDER_STATUS.replace("ai_may: answer", f"ai_may: sometimes  {MARK}"))],
        "intents.order_status.ai_may: 'sometimes' is not one of ['answer', 'collect_then_route', 'draft', 'never']",
    ),
    "bad priority": (
        [("    priority: urgent\n", f"    priority: asap  {MARK}\n")],
        "intents.legal_threat.priority: 'asap' is not one of",
    ),
    "unknown context package": (
        [("    context_package: minimal\n", f"    context_package: everything  {MARK}\n")],
        "intents.greet: unknown context package 'everything'",
    ),
    "unknown context field": (
        [("  minimal: [brief, transcript]", f"  minimal: [brief, horoscope]  {MARK}")],
        "context_packages.minimal[1]: 'horoscope' is not one of",
    ),
    "row without a description": (
        [(ROW_ORDER_STATUS, f"  order_status:  {MARK}\n    ai_may: answer\n    queue: support\n")],
        "intents.order_status: 'description' is a required property",
    ),
    "unknown key in a row": (
        [(ROW_ORDER_STATUS, ROW_ORDER_STATUS.replace("    queue:", f"    owner: bob  {MARK}\n    queue:"))],
        "intents.order_status.owner: unknown key",
    ),
    "invalid intent name": (
        [("  order_status:\n", f"  Order Status:  {MARK}\n")],
        "intents.Order Status: invalid name",
    ),
    "reason on a row the AI answers": (
        [(ROW_ORDER_STATUS, ROW_ORDER_STATUS.replace("    queue:", f"    reason: policy_action  {MARK}\n    queue:"))],
        "intents.order_status: reason only applies to rows that route",
    ),
    "trigger intent without a row": (
        [("rejection_intents: [answer_rejected]", f"rejection_intents: [answer_rejected, nope]  {MARK}")],
        "triggers.no_convergence.rejection_intents: intent 'nope' has no row",
    ),
    "invalid YAML syntax": (
        [
            (
                "    collect: [order_id, amount]\n    queue: billing\n",
                f"    collect: [order_id, amount]\n      queue: billing  {MARK}\n",
            )
        ],
        "invalid YAML: while parsing a block mapping expected <block end>",
    ),
    "duplicate key": (
        [
            (
                ROW_ORDER_STATUS,
                ROW_ORDER_STATUS.replace("    description:", f"    queue: billing  {MARK}\n    description:"),
            )
        ],
        'duplicate key "queue"',
    ),
}


SIGNAL_CASES = {
    "a signal that is neither explicit_request nor a category": (
        [("\nlegal:\n", f"\nlawsuits:  {MARK}\n  phrases: [court]\nlegal:\n")],
        "lawsuits: unknown signal (signals are explicit_request and the exception categories of",
    ),
    "not-phrases on a category": (
        [
            (
                "  phrases: [lawyer, legal action]\n",
                f"  phrases: [lawyer, legal action]\n  not_phrases: [lawyer up]  {MARK}\n",
            )
        ],
        "legal.not_phrases: only explicit_request has not-phrases",
    ),
    "an unknown key in a signal": (
        [("  phrases: [lawyer, legal action]\n", f"  phrases: [lawyer, legal action]\n  regexes: [law.*]  {MARK}\n")],
        "legal.regexes: unknown key",
    ),
    "blank phrase": (
        [("  phrases: [lawyer, legal action]\n", f"  phrases: [lawyer, '  ']  {MARK}\n")],
        "legal.phrases[1]: '  ' does not match",
    ),
    "pattern with an unknown attribute": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: sue}}, {{LOWR: you}}]  {MARK}")],
        "legal.patterns[0][1].LOWR: unknown spaCy token attribute 'LOWR'",
    ),
    "pattern on an attribute the pipeline does not set": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LEMMA: sue}}, {{LOWER: you}}]  {MARK}")],
        "legal.patterns[0][0].LEMMA: LEMMA needs a lemmatizer",
    ),
    "pattern with a bad operator": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: sue}}, {{LOWER: you, OP: '??'}}]  {MARK}")],
        "legal.patterns[0][1].OP: '??' is not a spaCy operator",
    ),
    "pattern that is a string": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - 'sue you'  {MARK}")],
        "legal.patterns[0]: a token pattern must be a non-empty list of token dicts",
    ),
    "empty pattern": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - []  {MARK}")],
        "legal.patterns[0]: a token pattern must be a non-empty list",
    ),
    "pattern token that is not a mapping": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: sue}}, you]  {MARK}")],
        "legal.patterns[0][1]: a token must be a mapping of attributes",
    ),
    "pattern with upper-case LOWER": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: Sue}}, {{LOWER: you}}]  {MARK}")],
        "legal.patterns[0][0].LOWER: 'Sue' has upper-case letters",
    ),
    "pattern with upper case in an IN list": (
        [("{LOWER: {IN: [human, person]}}]", f"{{LOWER: {{IN: [human, Person]}}}}]  {MARK}")],
        "explicit_request.patterns[0][3].LOWER.IN[1]: 'Person' has upper-case letters",
    ),
    "pattern with a bad predicate": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: {{ONE_OF: [sue]}}}}, {{LOWER: you}}]  {MARK}")],
        "legal.patterns[0][0].LOWER.ONE_OF: unknown predicate",
    ),
    "pattern with an invalid regex": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: {{REGEX: '(unclosed'}}}}]  {MARK}")],
        "legal.patterns[0][0].LOWER.REGEX: invalid regular expression '(unclosed'",
    ),
    "pattern with text for a flag": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: sue}}, {{IS_PUNCT: 'yes'}}]  {MARK}")],
        "legal.patterns[0][1].IS_PUNCT: expected true or false",
    ),
    "pattern that can match nothing": (
        [("    - [{LOWER: sue}, {LOWER: you}]", f"    - [{{LOWER: sue, OP: '?'}}, {{OP: '*'}}]  {MARK}")],
        "legal.patterns[0]: every token is optional or negated",
    ),
    "explicit-request pattern with an unknown attribute": (
        [("{LOWER: {IN: [human, person]}}]", f"{{LOWR: {{IN: [human, person]}}}}]  {MARK}")],
        "explicit_request.patterns[0][3].LOWR: unknown spaCy token attribute",
    ),
    "phrase that is also a not-phrase": (
        [
            ("  not_phrases: [human resources]\n", "  not_phrases: [human resources, Live Agent]\n"),
            ("  phrases: [live agent, real person]\n", f"  phrases: [live agent, real person]  {MARK}\n"),
        ],
        "explicit_request.phrases[0]: 'live agent' is also in not_phrases",
    ),
}


@pytest.mark.parametrize("case", sorted(SIGNAL_CASES))
def test_broken_signals_are_rejected_at_their_line_in_the_signals_file(tmp_path, case):
    edits, expected = SIGNAL_CASES[case]
    path, line = patched(tmp_path, SMALL_SIGNALS, *edits)
    assert line is not None
    problems = validate(tmp_path / SMALL_MATRIX.name, SMALL_EXPERTS, SMALL_DOMAIN)
    assert len(problems) == 1, [str(p) for p in problems]
    assert (problems[0].path, problems[0].line) == (str(path), line), str(problems[0])
    assert expected in problems[0].message


def test_a_missing_signals_file_is_named(tmp_path):
    path, _ = patched(tmp_path, SMALL_MATRIX, ("signals: small_signals.yml", "signals: nowhere.yml"))
    [problem] = validate(path, SMALL_EXPERTS, SMALL_DOMAIN)
    assert problem.path == str(tmp_path / "nowhere.yml") and problem.message.startswith("cannot read file")


def test_derived_facts_of_the_small_matrix():
    m = load_matrix(SMALL_MATRIX)
    assert m.row("refund_request").exceptions == ("refund_over_limit",)
    assert m.row("legal_threat").exceptions == ("legal",)
    assert (m.row("legal_threat").reason, m.row("legal_threat").detail) == ("sensitive_topic", "legal")
    assert (m.row("request_human").route_reason, m.row("request_human").derived_from) == (
        "explicit_request",
        "triggers.explicit_request.intents",
    )
    assert m.row("answer_rejected").route_reason == "no_convergence"
    assert m.row("refund_request").route_reason == "policy_action"  # a money limit does not name the row's route
    assert m.row("order_status").exceptions == () and m.row("order_status").derived_from is None
    assert m.hand_back.expires_after_minutes == 120 and m.hand_back.always_allowed == ("greet",)
    assert m.hand_back.allowed_intents(["info"]) == ["order_status"]
    assert m.hand_back.words == {"info": "info", "orders": "info"}
    assert m.hand_back.informational == ("order_status",)
    assert m.categories["legal"].phrases == ("lawyer", "legal action") and m.categories["legal"].label == "legal"


@pytest.mark.parametrize("case", sorted(MATRIX_CASES))
def test_broken_matrix_is_rejected_at_the_right_line(tmp_path, case):
    edits, expected, *signal_edits = MATRIX_CASES[case]
    if signal_edits:
        patched(tmp_path, SMALL_SIGNALS, *signal_edits[0])
    path, line = patched(tmp_path, SMALL_MATRIX, *edits)
    assert line is not None
    problems = validate(path, SMALL_EXPERTS, SMALL_DOMAIN)
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    assert problem.path == str(path)
    assert expected in problem.message
    assert problem.line == line, str(problem)
    assert str(problem) == f"{path}:{line}: {problem.message}"


def test_category_and_trigger_intents_must_be_domain_intents(tmp_path):
    teleport = ROW_ORDER_STATUS.replace("  order_status:", "  teleport:")
    path, _ = patched(
        tmp_path,
        SMALL_MATRIX,
        (ROW_ORDER_STATUS, ROW_ORDER_STATUS + teleport),
        ("    intents: [legal_threat]", f"    intents: [legal_threat, teleport]  {MARK}"),
        ("frustration_intents: [frustration]", "frustration_intents: [frustration, teleport]"),
        ("      intents: [order_status]", "      intents: [order_status, teleport]"),
    )
    problems = validate(path, SMALL_EXPERTS, SMALL_DOMAIN)
    messages = sorted(p.message for p in problems)
    assert messages == [
        "exception_categories.legal.intents: intent 'teleport' is not an intent of the domain",
        "hand_back.followups.info.intents: intent 'teleport' is not an intent of the domain",
        "intents.teleport: not an intent of the domain",
        "triggers.sentiment.frustration_intents: intent 'teleport' is not an intent of the domain",
    ]
    text = path.read_text().splitlines()
    line = next(p.line for p in problems if p.message.startswith("exception_categories.legal"))
    assert MARK in text[line - 1]


def test_small_fixtures_are_valid():
    assert validate(SMALL_MATRIX, SMALL_EXPERTS, SMALL_DOMAIN) == []


def test_loader_raises_matrix_error_with_location(tmp_path):
    broken = ROW_ORDER_STATUS.replace("ai_may: answer", f"ai_may: maybe  {MARK}")
    path, line = patched(tmp_path, SMALL_MATRIX, (ROW_ORDER_STATUS, broken))
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    error = info.value
    assert (error.path, error.line) == (str(path), line)
    assert error.column == 13
    assert "'maybe' is not one of" in error.message
    assert f"{path}:{line}: " in str(error)


def test_loader_reports_every_problem_sorted_by_line(tmp_path):
    path, _ = patched(
        tmp_path,
        SMALL_MATRIX,
        ("    intents: [refund_request]", "    intents: [refund_request, teleport]"),
        ("thresholds: {high: 0.70, low: 0.30}", "thresholds: {high: 0.30, low: 0.70}"),
    )
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2
    assert "exception category 'refund_over_limit': intent 'teleport' has no row" in messages[0]
    assert "low 0.70 is above high 0.30" in messages[1]
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)


def test_missing_files_are_reported(tmp_path):
    problems = validate(tmp_path / "nope.yml", SMALL_EXPERTS, tmp_path / "no-domain.yml")
    assert len(problems) == 2
    assert all("cannot read file" in p.message and p.line is None for p in problems)
    assert str(problems[0]).startswith(str(tmp_path / "no-domain.yml") + ": ")


def test_empty_files_are_reported(tmp_path):
    empty = tmp_path / "empty.yml"
    empty.write_text("# nothing yet\n")
    problems = validate(empty, empty, SMALL_DOMAIN)
    assert [p.message for p in problems] == ["the file is empty", "the file is empty"]
    with pytest.raises(MatrixError, match="the file is empty"):
        load_matrix(empty)


def test_domain_directory_and_entry_forms(tmp_path):
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "a.yml").write_text("intents:\n  - greet\n  - legal_threat:\n      use_entities: []\n")
    rest = ["request_human", "order_status", "refund_request", "answer_rejected", "frustration"]
    (tmp_path / "domain" / "b.yml").write_text("intents:\n" + "".join(f"  - {i}\n" for i in rest) + "responses: {}\n")
    (tmp_path / "domain" / "c.yml").write_text(
        "forms:\n  collect_refund_request:\n    required_slots: [order_id, amount]\n"
    )
    intents, problems = domain_intents(tmp_path / "domain")
    assert problems == []
    assert intents["legal_threat"][1] == 3
    assert validate(SMALL_MATRIX, SMALL_EXPERTS, tmp_path / "domain") == []


def test_domain_without_intents_is_a_problem(tmp_path):
    domain = tmp_path / "domain.yml"
    domain.write_text("version: '3.1'\nentities: [amount]\n")
    problems = validate(SMALL_MATRIX, SMALL_EXPERTS, domain)
    assert [p.message for p in problems] == ["the domain declares no intents"]


# --- the validator: broken expert directories --------------------------------

EXPERT_CASES = {
    "a blank team name": (
        [("    team: customer care\n", f"    team: '  '  {MARK}\n")],
        "queues.support.team: '  ' does not match",
    ),
    "unknown member": (
        [("    members: [ann, bob]", f"    members: [ann, bob, zoe]  {MARK}")],
        "queues.billing: unknown person 'zoe' in members",
    ),
    "unknown backup queue": (
        [("    backup: support", f"    backup: helpdesk  {MARK}")],
        "queues.billing: unknown backup queue 'helpdesk'",
    ),
    "own backup": (
        [("    backup: support", f"    backup: billing  {MARK}")],
        "a queue cannot be its own backup",
    ),
    "unknown supervisor": (
        [("supervisor: boss", f"supervisor: nobody  {MARK}")],
        "supervisor: unknown person 'nobody'",
    ),
    "business hours ending before they start": (
        [('  tue: "08:00-18:00"', f'  tue: "18:00-08:00"  {MARK}')],
        "business_hours.tue: '18:00-08:00' ends before it starts",
    ),
    "malformed business hours": (
        [('  wed: "08:00-18:00"', f'  wed: "8am-6pm"  {MARK}')],
        "business_hours.wed: '8am-6pm' is not valid: expected 'HH:MM-HH:MM'",
    ),
    "missing weekday": (
        [("  sun: closed\n", ""), ("\nbusiness_hours:\n", f"\nbusiness_hours:  {MARK}\n")],
        "'sun' is a required property",
    ),
    "overlapping personal hours": (
        [('mon: ["09:00-12:00", "13:00-17:00"]', f'mon: ["09:00-12:00", "11:00-17:00"]  {MARK}')],
        "people.bob.hours.mon: '11:00-17:00' overlaps 09:00-12:00",
    ),
    "preferred channel missing": (
        [("    preferred: telegram", f"    preferred: slack  {MARK}")],
        "people.bob: preferred channel 'slack' is not among the person's channels",
    ),
    "bad slack user id": (
        [("{type: slack, user_id: U0ANN0001}", f"{{type: slack, user_id: ann}}  {MARK}")],
        "people.ann.channels[0].user_id: 'ann' does not match",
    ),
    "telegram without chat id": (
        [("{type: telegram, chat_id: 12345678}", f"{{type: telegram}}  {MARK}")],
        "'chat_id' is a required property",
    ),
    "secret in the file": (
        [("    max_load: 2\n", f"    max_load: 2\n    password: hunter2  {MARK}\n")],
        "people.boss.password: unknown key",
    ),
    "unknown time zone": (
        [("timezone: Europe/Berlin", f"timezone: Mars/Olympus  {MARK}")],
        "unknown time zone 'Mars/Olympus'",
    ),
    "ladder out of order": (
        [("{step: supervisor, at_sla: 2.0}", f"{{step: supervisor, at_sla: 1.2}}  {MARK}")],
        "sla_ladder[2]: at_sla must increase",
    ),
    "unknown ladder step": (
        [("{step: supervisor, at_sla: 2.0}", f"{{step: ceo, at_sla: 2.0}}  {MARK}")],
        "sla_ladder[2].step: 'ceo' is not one of",
    ),
    "invalid holiday": (
        [("{date: 2025-12-25, name: Christmas Day}", f'{{date: "2025-02-30", name: Nope}}  {MARK}')],
        "holidays[0]: invalid date '2025-02-30'",
    ),
}


@pytest.mark.parametrize("case", sorted(EXPERT_CASES))
def test_broken_experts_is_rejected_at_the_right_line(tmp_path, case):
    edits, expected = EXPERT_CASES[case]
    path, line = patched(tmp_path, SMALL_EXPERTS, *edits)
    problems = validate(SMALL_MATRIX, path, SMALL_DOMAIN)
    assert len(problems) == 1, [str(p) for p in problems]
    assert expected in problems[0].message
    assert problems[0].path == str(path)
    assert problems[0].line == line, str(problems[0])


def test_queue_missing_from_experts_is_reported_in_the_matrix(tmp_path):
    path, _ = patched(
        tmp_path, SMALL_EXPERTS, ("  legal:\n    description: Law.\n    members: [boss]\n    sla_minutes: 1440\n", "")
    )
    problems = validate(SMALL_MATRIX, path, SMALL_DOMAIN)
    text = SMALL_MATRIX.read_text().splitlines()
    expected = {n for n, line in enumerate(text, 1) if re.fullmatch(r"\s+queue: legal", line)}
    assert {p.line for p in problems} == expected and len(expected) == 2
    assert all(p.path == str(SMALL_MATRIX) and "unknown queue 'legal'" in p.message for p in problems)


def test_load_experts_raises_experts_error(tmp_path):
    path, line = patched(tmp_path, SMALL_EXPERTS, ("    members: [ann, bob]", f"    members: [ann, ghost]  {MARK}"))
    with pytest.raises(ExpertsError) as info:
        load_experts(path)
    assert info.value.line == line
    assert isinstance(info.value.problems[0], Problem)


# --- command line ------------------------------------------------------------------


def test_main_ok(capsys):
    code = validate_module.main(
        [
            "--matrix",
            str(ROOT / "escalation.yml"),
            "--experts",
            str(ROOT / "experts.yml"),
            "--domain",
            str(FIXTURES / "domain_full.yml"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    *warnings, summary = out.strip().splitlines()
    assert re.fullmatch(
        r"escalation matrix OK: 33 intents, 4 categories, 4 signals \(\d+ phrases, \d+ patterns\), 5 queues, "
        r"10 warning\(s\)",
        summary,
    ), out
    assert [w.split(": ")[3].split()[3].rstrip(",") for w in warnings] == UNRATED_IN_THE_REAL_MATRIX
    assert all(": warning: currency_rates: no rate for " in w for w in warnings)


def test_main_reports_problems(tmp_path, capsys):
    edit = ("    intents: [refund_request]", f"    intents: [refund_request, teleport]  {MARK}")
    path, line = patched(tmp_path, SMALL_MATRIX, edit)
    code = validate_module.main(["--matrix", str(path), "--experts", str(SMALL_EXPERTS), "--domain", str(SMALL_DOMAIN)])
    captured = capsys.readouterr()
    assert code == 1
    lines: List[str] = [out for out in captured.out.splitlines() if ": warning: " not in out]
    assert len(lines) == 1 and lines[0].startswith(f"{path}:{line}: ")
    assert captured.err == "escalation matrix: 1 problem(s)\n"  # a matrix that does not load has no warnings


# --- the validator: warnings -----------------------------------------------------

UNRATED_IN_THE_REAL_MATRIX = ["AUD", "CAD", "CNY", "CZK", "DKK", "INR", "JPY", "NOK", "PLN", "SEK"]


def test_a_parsed_currency_without_a_rate_is_a_warning_at_currency_rates(tmp_path):
    path, line = patched(tmp_path, SMALL_MATRIX, ("currency_rates:\n", f"currency_rates:  {MARK}\n"))
    problems, warnings = validate_with_warnings(path, SMALL_EXPERTS, SMALL_DOMAIN)
    assert problems == [] and validate(path, SMALL_EXPERTS, SMALL_DOMAIN) == []  # a warning is not a problem
    codes = [
        "AUD",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "GBP",
        "INR",
        "JPY",
        "NOK",
        "PLN",
        "SEK",
    ]  # the fixture rates EUR, USD
    assert [w.message.split()[4].rstrip(",") for w in warnings] == codes
    assert all(w.is_warning and w.severity == "warning" and (w.path, w.line) == (str(path), line) for w in warnings)
    jpy = next(w for w in warnings if " JPY," in w.message)
    assert str(jpy) == (
        f"{path}:{line}: warning: currency_rates: no rate for JPY, which the money parser reads (jpy, yen, ¥): "
        "an amount in JPY on refund_request is not compared with the limit but escalates (detail unrated_currency)"
    )


def test_a_rate_silences_the_warning(tmp_path):
    path, _ = patched(tmp_path, SMALL_MATRIX, ("  USD: 0.90\n", "  USD: 0.90\n  JPY: 0.0058\n  sek: 0.09\n"))
    problems, warnings = validate_with_warnings(path, SMALL_EXPERTS, SMALL_DOMAIN)
    assert problems and all("invalid name" in p.message for p in problems)  # codes are upper case: sek is an error
    fixed, _ = patched(tmp_path, SMALL_MATRIX, ("  USD: 0.90\n", "  USD: 0.90\n  JPY: 0.0058\n  SEK: 0.09\n"))
    problems, warnings = validate_with_warnings(fixed, SMALL_EXPERTS, SMALL_DOMAIN)
    assert problems == []
    assert not any(" JPY," in w.message or " SEK," in w.message for w in warnings) and len(warnings) == 10


def test_without_a_money_limit_the_warning_says_what_it_means(tmp_path):
    path, _ = patched(tmp_path, SMALL_MATRIX, ("    amount_above:\n      value: 500\n      currency: EUR\n", ""))
    _, warnings = validate_with_warnings(path, SMALL_EXPERTS, SMALL_DOMAIN)
    jpy = next(w for w in warnings if " JPY," in w.message)
    assert jpy.message == (
        "currency_rates: no rate for JPY, which the money parser reads (jpy, yen, ¥): an amount in JPY cannot be converted to EUR"
    )


def test_the_real_matrix_warns_about_the_parsed_currencies_it_has_no_rate_for(matrix):
    warnings = currency_warnings(matrix)
    assert [w.message.split()[4].rstrip(",") for w in warnings] == UNRATED_IN_THE_REAL_MATRIX
    text = (ROOT / "escalation.yml").read_text(encoding="utf-8").splitlines()
    assert {text[w.line - 1] for w in warnings} == {"currency_rates:"}
    assert all("on refund_request, billing_dispute" in w.message for w in warnings)


def test_warnings_and_problems_print_in_line_order(tmp_path, capsys):
    edit = ("    queue: billing\n    description: Refund.", f"    queue: warehouse  {MARK}\n    description: Refund.")
    path, line = patched(tmp_path, SMALL_MATRIX, edit)
    code = validate_module.main(["--matrix", str(path), "--experts", str(SMALL_EXPERTS), "--domain", str(SMALL_DOMAIN)])
    captured = capsys.readouterr()
    assert code == 1  # the problem fails, not the warnings
    lines = captured.out.splitlines()
    assert len(lines) == 13 and sum(": warning: " in out for out in lines) == 12
    numbers = [int(out.split(":")[1]) for out in lines]
    assert numbers == sorted(numbers) and numbers[-1] == line
    assert lines[-1].startswith(f"{path}:{line}: intents.refund_request.queue: unknown queue 'warehouse'")
    assert captured.err == "escalation matrix: 1 problem(s), 12 warning(s)\n"
