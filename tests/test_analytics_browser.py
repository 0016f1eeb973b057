"""The dashboard's governance pages in Chromium: the charts drawn from the seeded history
(tests/analytics_hub.py), filters redrawing them, a review submitted, a verdict given with one click."""

from __future__ import annotations

import urllib.parse
from typing import Any, Dict, List

from playwright.sync_api import Browser, Page, expect

from tests.analytics_hub import NOW, PASSWORD, WINDOW, Hub, at, case, directory, held, hub  # noqa: F401
from tests.test_browser import LAPTOP, browser, new_page  # noqa: F401  (browser: the Chromium fixture)

# --- in Chromium ----------------------------------------------------------------------------------------


def open_signed_in(browser: Browser, hub: Hub, username: str, path: str, errors: List[str]) -> Page:
    """A fresh browser page signed in as ``username`` at ``path``; JavaScript errors and CSP refusals go to ``errors``."""
    page = new_page(browser, LAPTOP, errors)
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Content Security Policy" in m.text else None,
    )
    page.goto(f"{hub.url}/dashboard/login?next={urllib.parse.quote(path)}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{hub.url}{path.split('?')[0]}**")
    return page


def chart(page: Page, name: str) -> Dict[str, Any]:
    """The labels and each dataset's label and data of ``window.backlineCharts[name]``."""
    return page.evaluate(
        """(name) => { const c = window.backlineCharts[name];
        return { labels: c.data.labels, data: Object.fromEntries(c.data.datasets.map((d) => [d.label, d.data])) }; }""",
        name,
    )


def wait_for_labels(page: Page, name: str, labels: List[str]) -> None:
    page.wait_for_function(
        "([name, labels]) => window.backlineCharts && window.backlineCharts[name]"
        " && JSON.stringify(window.backlineCharts[name].data.labels) === JSON.stringify(labels)",
        arg=[name, labels],
    )


def painted(page: Page, name: str) -> int:
    """How many pixels of the chart's canvas are not transparent."""
    return page.evaluate(
        """(name) => { const canvas = window.backlineCharts[name].canvas;
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0; for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) n++; return n; }""",
        name,
    )


def test_the_analytics_page_draws_the_seeded_metrics_and_filters_redraw_them(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    page = open_signed_in(browser, hub, "petra", "/dashboard/analytics?since=2026-11-16&until=2026-11-29", errors)
    wait_for_labels(page, "weekly", ["2026-W47", "2026-W48"])
    expect(page.locator("#until")).to_have_value("2026-11-29")
    assert chart(page, "weekly")["data"] == {
        "Containment": [50, 66.7],
        "Escalation": [50, 33.3],
        "Escalation accuracy": [100, 0],
        "Reopened": [0, 20],
        "Override": [None, 66.7],
        "CSAT": [4, 2],
    }
    assert chart(page, "times") == {
        "labels": [
            "median",
            "P90",
            "median, business hours",
            "P90, business hours",
            "median, off-hours",
            "P90, off-hours",
        ],
        "data": {"First reply": [20, 60, 10, 30, 60, 60], "Resolution": [35, 120, 10, 120, 60, 60]},
    }
    assert chart(page, "verdicts") == {
        "labels": ["Escalation needed", "Not needed", "Should have come earlier"],
        "data": {"count": [1, 1, 0]},
    }
    assert chart(page, "overrides") == {
        "labels": ["Wrong intent", "Wrong facts", "Policy", "Tone", "Other", "Unspecified"],
        "data": {"count": [0, 1, 0, 0, 0, 1]},
    }
    assert chart(page, "breakdown") == {"labels": ["billing", "sales", "support"], "data": {"consultations": [3, 1, 0]}}
    for name in ("weekly", "times", "verdicts", "overrides", "breakdown"):
        assert painted(page, name) > 500, name
    expect(page.locator("#kpi-containment strong")).to_have_text("60 %")
    expect(page.locator("#kpi-first-reply strong")).to_have_text("20 min")
    expect(page.locator("#kpi-csat strong")).to_have_text("3")
    expect(page.locator(".nav a[aria-current=page]")).to_have_text("Analytics")

    page.select_option("#dimension", "channel")
    wait_for_labels(page, "breakdown", ["rest", "socketio", "unknown"])
    assert chart(page, "breakdown")["data"] == {"consultations": [1, 1, 2]}
    page.select_option("#measure", "escalation_rate")
    page.wait_for_function("window.backlineCharts.breakdown.data.datasets[0].label === 'escalation_rate'")
    assert chart(page, "breakdown")["data"] == {"escalation_rate": [33.3, 50, None]}

    page.select_option("#queue", "sales")
    wait_for_labels(page, "weekly", ["2026-W48"])
    assert chart(page, "verdicts")["data"] == {"count": [0, 0, 0]}
    assert chart(page, "overrides")["data"] == {"count": [0, 0, 0, 0, 0, 1]}
    assert chart(page, "times")["data"]["First reply"] == [60, 60, None, None, 60, 60]
    assert "queue=sales" in page.url

    page.select_option("#queue", "")
    page.fill("#since", "2026-11-23")
    wait_for_labels(page, "breakdown", ["rest", "unknown"])  # no socketio conversation after the 23rd
    assert chart(page, "weekly")["labels"] == ["2026-W48"]
    assert chart(page, "verdicts")["data"] == {"count": [0, 1, 0]}
    assert chart(page, "weekly")["data"]["Containment"] == [66.7]
    page.context.close()
    assert errors == []


def test_a_reviewer_submits_a_review_from_the_review_page(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    page = open_signed_in(browser, hub, "mara", "/dashboard/reviews", errors)
    rows = page.locator("#reviews tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("AI alone")
    expect(rows.first).to_contain_text("opening hours")
    rows.first.locator("a").click()
    expect(page).to_have_url(f"{hub.url}/dashboard/reviews/{hub.ids['R1']}")
    expect(page.locator("#review-transcript")).to_contain_text("when are you open?")
    expect(page.locator("#review-transcript")).to_contain_text("Here is the answer about opening_hours.")
    expect(page.locator("#review-decisions tbody tr")).to_contain_text("opening hours")
    page.click("#review-submit")
    expect(page.locator("#review-flash")).to_have_text("Choose a verdict.")
    page.check("input[name=review-verdict][value=should_have_escalated]")
    page.fill("#review-note", "they asked for a person")
    page.fill("#review-intent", "request_human")
    page.click("#review-submit")
    expect(page.locator("#review-flash")).to_have_text("Review recorded.")
    expect(page.locator("#review-verdict")).to_contain_text("Should have escalated · mara")
    stored = held(hub.store.review, hub.ids["R1"])
    assert (stored.status, stored.verdict, stored.reviewer, stored.note, stored.corrected_intent) == (
        "reviewed",
        "should_have_escalated",
        "mara",
        "they asked for a person",
        "request_human",
    )
    page.goto(f"{hub.url}/dashboard/reviews")
    expect(page.locator("#reviews tbody tr")).to_have_count(1)  # pending only: R2
    page.context.close()
    assert errors == []


def test_the_verdict_buttons_and_the_override_reason_on_a_closed_case(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    c3 = hub.ids["C3"]
    page = open_signed_in(browser, hub, "lena", f"/dashboard/consultations/{c3}", errors)
    expect(page.locator("#verdict-current")).to_have_text("No verdict yet.")
    expect(page.locator("#override-draft")).to_have_text("Pro costs 20 EUR.")
    expect(page.locator("#override-final")).to_have_text("(denied: nothing sent)")
    buttons = page.locator(".verdict button")
    expect(buttons).to_have_text(["Escalation needed", "Not needed", "Should have come earlier"])
    page.click("button[data-verdict=too_late]")
    expect(page.locator("#verdict-current")).to_contain_text("Should have come earlier · lena")
    verdict = held(hub.store.verdict, c3)
    assert (verdict.verdict, verdict.actor, verdict.source) == ("too_late", "lena", "dashboard")

    page.select_option("#override-reason", "wrong_intent")
    expect(page.locator("#override-intent")).to_be_visible()
    page.fill("#override-intent", "upgrade_interest")
    page.fill("#override-note", "an upgrade, not a price question")
    page.click("#override-save")
    expect(page.locator("#override-current")).to_have_text("Reason: Wrong intent — an upgrade, not a price question")
    override = held(hub.store.override, c3)
    assert (override.reason, override.corrected_intent, override.actor) == ("wrong_intent", "upgrade_interest", "lena")
    page.context.close()
    assert errors == []


def test_the_reply_form_sends_the_override_reason_and_the_verdict(hub: Hub, browser: Browser) -> None:
    errors: List[str] = []
    fresh = case(hub.store, "w49-c", "sales", "pricing", NOW, ai_draft="Pro costs 20 EUR.")
    page = open_signed_in(browser, hub, "lena", f"/dashboard/consultations/{fresh}", errors)
    expect(page.locator("#reply-text")).to_have_value("Pro costs 20 EUR.")
    page.click(".governance-fields summary")
    page.select_option("#reply-override-reason", "wrong_facts")
    page.fill("#reply-override-note", "the price went up")
    page.select_option("#reply-verdict", "needed")
    page.fill("#reply-text", "Pro costs 24 EUR per user and month.")
    page.click("#send-answer")
    expect(page.locator(".decision")).to_contain_text("Resolution: answered")
    override = held(hub.store.override, fresh)
    assert (override.kind, override.reason, override.note, override.final_text) == (
        "edited",
        "wrong_facts",
        "the price went up",
        "Pro costs 24 EUR per user and month.",
    )
    assert held(hub.store.verdict, fresh).verdict == "needed"
    expect(page.locator("#verdict-current")).to_contain_text("Escalation needed · lena")
    page.context.close()
    assert errors == []
