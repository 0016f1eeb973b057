"""The dashboard and the web chat in a real browser: Debian's Chromium, headless, driven by Playwright,
against the whole stack (`backline run`). A customer asks the web chat for a refund above the limit; the
operator sees the red-badged handoff arrive without a reload, takes over, answers, and hands back; the AI
answers the customer's next information question. Sign-in is required and a wrong password refused.

With BACKLINE_SCREENSHOTS=<folder> the run also saves the README's screenshots there (`make screenshots`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, List

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from backline.consult.store import ConsultationStore
from tests.servers import Stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "kestrel-demo"
REFUND = "I want a refund of €780 for my Hub X1, order 10023"
ASKS_FOR_A_PERSON = "can i talk to a real person please"
WAIT = 30_000
"""Milliseconds to wait for something the stack does (NLU, actions, trigger_intent)."""
SCREENSHOTS = os.environ.get("BACKLINE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-packages` (Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def snap(page: Page, name: str) -> None:
    """Save a screenshot for the README when BACKLINE_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def new_page(browser: Browser, viewport: dict, errors: List[str]) -> Page:
    """A page in a fresh context (no cookies, own storage); its JavaScript errors go to ``errors``."""
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(WAIT)
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return page


def sign_in(page: Page, stack: Stack, username: str = "mara", password: str = PASSWORD, path: str = "/dashboard") -> None:
    page.goto(f"{stack.hub_url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def fits_the_screen(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_an_operator_cannot_open_the_dashboard_without_signing_in(stack: Stack, browser: Browser) -> None:
    errors: List[str] = []
    page = new_page(browser, LAPTOP, errors)
    page.goto(f"{stack.hub_url}/dashboard/consultations/c_anything")
    expect(page).to_have_url(f"{stack.hub_url}/dashboard/login?next=/dashboard/consultations/c_anything")
    expect(page.locator("input[name=password]")).to_be_visible()
    for path in ("/dashboard/api/queue", "/dashboard/api/consultations/c_anything", "/dashboard/events"):
        assert page.request.get(f"{stack.hub_url}{path}").status == 401
    page.context.close()
    assert errors == []


def test_a_wrong_password_is_refused(stack: Stack, browser: Browser) -> None:
    errors: List[str] = []
    page = new_page(browser, LAPTOP, errors)
    sign_in(page, stack, password="kestrel-demo!")
    expect(page.locator("#error")).to_have_text("Wrong username or password.")
    assert not page.context.cookies()
    page.goto(f"{stack.hub_url}/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard/login\?next=/dashboard$"))
    sign_in(page, stack)
    expect(page).to_have_url(f"{stack.hub_url}/dashboard")
    expect(page.locator("#operator")).to_have_text("Mara Klein")
    page.context.close()
    assert errors == []


def test_a_handoff_from_the_web_chat_played_on_both_sides(stack: Stack, browser: Browser) -> None:
    errors: List[str] = []
    requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", timeout=60, headers=stack.channel_auth,
                  json={"sender": "browser-rest", "message": ASKS_FOR_A_PERSON}).raise_for_status()
    operator = new_page(browser, LAPTOP, errors)
    sign_in(operator, stack)
    expect(operator.locator("#live")).to_have_text("live")
    operator.evaluate("window.notReloaded = true")

    customer = new_page(browser, PHONE, errors)
    customer.goto(f"{stack.hub_url}/chat")
    expect(customer.locator("#message")).to_be_enabled()
    customer.fill("#message", REFUND)
    customer.press("#message", "Enter")
    expect(customer.locator(".message.bot").first).to_contain_text("billing team")
    expect(customer.locator("#status")).to_contain_text("A specialist from our billing team is checking")

    case = operator.locator("a.case.handoff", has_text="refund of €780")
    expect(case).to_be_visible()
    badge = case.locator(".badge.handoff")
    expect(badge).to_have_text("Handoff")
    expect(badge).to_have_css("background-color", "rgb(198, 40, 40)")
    expect(case.locator(".sla")).to_have_text(re.compile(r"^(SLA|overdue) "))
    claims = operator.locator("a.case .claim").all_inner_texts()
    assert claims.index(ASKS_FOR_A_PERSON) < claims.index(REFUND)  # two high-priority handoffs: the older first
    assert operator.evaluate("window.notReloaded") is True
    snap(operator, "dashboard")

    case.click()
    expect(operator.locator(".toolbar .badge.handoff")).to_be_visible()
    expect(operator.locator(".brief")).to_contain_text("780")
    expect(operator.locator("#timeline")).to_contain_text("refund of €780")
    operator.evaluate("window.notReloaded = true")
    operator.click("#take-over")
    expect(customer.locator("#status")).to_have_text("You are chatting with Mara Klein from our billing team.")
    expect(customer.locator(".message.bot").last).to_contain_text("Mara Klein from our billing team has joined")

    operator.fill("#reply-text", "Your refund of 780 EUR is approved; it reaches your card within 5 days.\n"
                                 "// checked order 10023 against the ledger")
    operator.click("#send-message")
    said = customer.locator(".message.human").last
    expect(said).to_contain_text("Your refund of 780 EUR is approved")
    expect(said.locator(".author")).to_have_text("Mara Klein")
    expect(customer.locator("#messages")).not_to_contain_text("ledger")

    customer.fill("#message", "great, thank you Mara!")
    customer.press("#message", "Enter")
    expect(operator.locator("#timeline .turn.customer").last).to_contain_text("great, thank you Mara!")
    expect(operator.locator("#timeline")).to_contain_text("internal: checked order 10023 against the ledger")
    snap(customer, "webchat")
    snap(operator, "consultation")
    phone = new_page(browser, PHONE, errors)
    sign_in(phone, stack, path=operator.url.replace(stack.hub_url, ""))
    expect(phone.locator("#hand-back")).to_be_visible()
    assert fits_the_screen(phone)
    snap(phone, "consultation-phone")
    phone.context.close()

    expect(operator.locator("input[name=followup][value=informational]")).to_be_checked()
    operator.click("#hand-back")
    expect(customer.locator(".message.bot").last).to_contain_text("handed the conversation back to me")
    expect(customer.locator("#status")).to_be_hidden()
    expect(operator.locator(".decision")).to_contain_text("Resolution: handed_back")

    customer.fill("#message", "what are your opening hours?")
    customer.press("#message", "Enter")
    expect(customer.locator(".message.bot").last).to_contain_text("Monday to Friday")
    expect(customer.locator(".message.bot").last.locator(".author")).to_have_text("Kestrel assistant")
    assert fits_the_screen(customer)
    assert operator.evaluate("window.notReloaded") is True
    operator.context.close()
    customer.context.close()
    assert errors == []


def test_an_ai_draft_is_approved_or_edited_and_sent_from_the_dashboard(stack: Stack, browser: Browser) -> None:
    errors: List[str] = []
    draft = "Kestrel Cloud Pro costs 20 EUR per user and month."
    with ConsultationStore(stack.consult_url) as store:
        cases = {}
        for sender in ("browser-approve", "browser-edit"):
            requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": "hello"},
                          headers=stack.channel_auth, timeout=60).raise_for_status()
            cases[sender] = store.create(conversation_id=sender, mode="consult", queue="sales",
                                         reasons=["medium_confidence"], ai_draft=draft).id
    operator = new_page(browser, LAPTOP, errors)
    sign_in(operator, stack, username="lena", path=f"/dashboard/consultations/{cases['browser-approve']}")
    expect(operator.locator("#reply-text")).to_have_value(draft)
    operator.click("#approve")
    expect(operator.locator("#flash")).to_have_text(
        f"The customer was told: “Good news: Lena from our sales team approved it. {draft}”")
    expect(operator.locator(".decision")).to_contain_text("Resolution: approved")

    operator.goto(f"{stack.hub_url}/dashboard?queue=sales")
    operator.click(f"a.case[data-id={cases['browser-edit']}]")
    operator.fill("#reply-text", "Pro is 20 EUR per user and month; 50 seats get 10 % off.\n// volume discount")
    operator.click("#send-answer")
    expect(operator.locator("#flash")).to_have_text("The customer was told: “I checked with Lena from our sales team. "
                                                    "Pro is 20 EUR per user and month; 50 seats get 10 % off.”")
    expect(operator.locator(".decision")).to_contain_text("Resolution: answered")
    operator.context.close()
    assert errors == []


def test_what_the_operator_is_typing_survives_a_live_update(stack: Stack, browser: Browser) -> None:
    """A state change arriving while the operator types (here a colleague takes the case over) redraws the
    decision panel; the text being typed must stay."""
    errors: List[str] = []
    sender = "browser-typing"
    requests.post(f"{stack.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": "hello"},
                  headers=stack.channel_auth, timeout=60).raise_for_status()
    with ConsultationStore(stack.consult_url) as store:
        case_id = store.create(conversation_id=sender, mode="consult", queue="sales", reasons=["medium_confidence"],
                               ai_draft="Pro costs 20 EUR.").id
    operator = new_page(browser, LAPTOP, errors)
    sign_in(operator, stack, username="lena", path=f"/dashboard/consultations/{case_id}")
    expect(operator.locator("#reply-text")).to_have_value("Pro costs 20 EUR.")
    operator.fill("#reply-text", "Half typed: Pro is 20 EUR per user and")
    taken = requests.post(f"{stack.hub_url}/api/consultations/{case_id}/reply", json={"action": "take_over"},
                          headers={"Authorization": f"Bearer {stack.operator_token}"}, timeout=60)
    assert taken.status_code in (200, 202), taken.text
    expect(operator.locator("#send-message")).to_be_visible(timeout=WAIT)  # the panel is the human-mode one now
    expect(operator.locator("#reply-text")).to_have_value("Half typed: Pro is 20 EUR per user and")
    operator.context.close()
    assert errors == []
