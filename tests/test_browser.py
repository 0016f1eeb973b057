"""The dashboard and the web chat in a real browser: Debian's Chromium, headless, driven by Playwright,
against the whole stack (`backline run`). A customer asks the web chat for a refund above the limit; the
operator sees the red-badged handoff arrive without a reload, takes over, answers, and hands back; the AI
answers the customer's next information question. Sign-in is required and a wrong password refused.
The chat shows who speaks from each message's metadata, and says when it cannot reach the chat server,
with a Retry that connects and sends what the customer wrote meanwhile.

With BACKLINE_SCREENSHOTS=<folder> the run also saves the README's screenshots there (`make screenshots`).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright
from rasa.core.channels.channel import UserMessage
from sanic import Sanic
from sanic.request import Request
from sanic.response import HTTPResponse, file, json

from backline.consult.store import ConsultationStore
from backline.hub import headers
from backline.hub.webchat import STATIC as CHAT_STATIC
from backline.rasa.channels.socketio import SocketIOInput, chat_origins
from tests.channel_servers import LiveApp
from tests.channels_stack import api_reply, consultation
from tests.servers import Stack, free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
    # A page's default timeout does not reach expect(): its assertions wait 5 s unless told. What
    # the customer sees after an operator's reply crosses hub, Rasa and socket.io, and under the
    # whole suite's load that once took longer; every assertion here waits as long as an action.
    expect.set_options(timeout=WAIT)
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default, for the other browser modules


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


def sign_in(
    page: Page, stack: Stack, username: str = "mara", password: str = PASSWORD, path: str = "/dashboard"
) -> None:
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
    requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        timeout=60,
        headers=stack.channel_auth,
        json={"sender": "browser-rest", "message": ASKS_FOR_A_PERSON},
    ).raise_for_status()
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

    operator.fill(
        "#reply-text",
        "Your refund of 780 EUR is approved; it reaches your card within 5 days.\n"
        "// checked order 10023 against the ledger",
    )
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
    expect(customer.locator(".message.bot").nth(-2)).to_contain_text("handed the conversation back to me")
    question = customer.locator(".message.bot").last  # governance.yml csat: one 1-5 question after a hand-back
    expect(question).to_contain_text("How would you rate the help you got today")
    expect(question.locator("button")).to_have_text(["1", "2", "3", "4", "5"])
    question.locator("button", has_text="4").click()
    expect(customer.locator(".message.bot").last).to_contain_text("Thank you for your rating.")
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
            requests.post(
                f"{stack.rasa_url}/webhooks/rest/webhook",
                json={"sender": sender, "message": "hello"},
                headers=stack.channel_auth,
                timeout=60,
            ).raise_for_status()
            cases[sender] = store.create(
                conversation_id=sender, mode="consult", queue="sales", reasons=["medium_confidence"], ai_draft=draft
            ).id
    operator = new_page(browser, LAPTOP, errors)
    sign_in(operator, stack, username="lena", path=f"/dashboard/consultations/{cases['browser-approve']}")
    expect(operator.locator("#reply-text")).to_have_value(draft)
    operator.click("#approve")
    expect(operator.locator("#flash")).to_have_text(
        f"The customer was told: “Good news: Lena from our sales team approved it. {draft} "
        "How would you rate the help you got today, from 1 (poor) to 5 (excellent)?”"  # governance.yml csat
    )
    expect(operator.locator(".decision")).to_contain_text("Resolution: approved")

    operator.goto(f"{stack.hub_url}/dashboard?queue=sales")
    operator.click(f"a.case[data-id={cases['browser-edit']}]")
    operator.fill("#reply-text", "Pro is 20 EUR per user and month; 50 seats get 10 % off.\n// volume discount")
    operator.click("#send-answer")
    expect(operator.locator("#flash")).to_have_text(
        "The customer was told: “I checked with Lena from our sales team. "
        "Pro is 20 EUR per user and month; 50 seats get 10 % off. "
        "How would you rate the help you got today, from 1 (poor) to 5 (excellent)?”"
    )
    expect(operator.locator(".decision")).to_contain_text("Resolution: answered")
    operator.context.close()
    assert errors == []


def test_what_the_operator_is_typing_survives_a_live_update(stack: Stack, browser: Browser) -> None:
    """A state change arriving while the operator types (here a colleague takes the case over) redraws the
    decision panel; the text being typed must stay."""
    errors: List[str] = []
    sender = "browser-typing"
    requests.post(
        f"{stack.rasa_url}/webhooks/rest/webhook",
        json={"sender": sender, "message": "hello"},
        headers=stack.channel_auth,
        timeout=60,
    ).raise_for_status()
    with ConsultationStore(stack.consult_url) as store:
        case_id = store.create(
            conversation_id=sender,
            mode="consult",
            queue="sales",
            reasons=["medium_confidence"],
            ai_draft="Pro costs 20 EUR.",
        ).id
    operator = new_page(browser, LAPTOP, errors)
    sign_in(operator, stack, username="lena", path=f"/dashboard/consultations/{case_id}")
    expect(operator.locator("#reply-text")).to_have_value("Pro costs 20 EUR.")
    operator.fill("#reply-text", "Half typed: Pro is 20 EUR per user and")
    taken = requests.post(
        f"{stack.hub_url}/api/consultations/{case_id}/reply",
        json={"action": "take_over"},
        headers={"Authorization": f"Bearer {stack.operator_token}"},
        timeout=60,
    )
    assert taken.status_code in (200, 202), taken.text
    expect(operator.locator("#send-message")).to_be_visible(timeout=WAIT)  # the panel is the human-mode one now
    expect(operator.locator("#reply-text")).to_have_value("Half typed: Pro is 20 EUR per user and")
    operator.context.close()
    assert errors == []


def web_conversation(page: Page) -> str:
    """The conversation id (``web:<random part>``) of the session the chat page was issued."""
    session = page.evaluate("localStorage.getItem('backline.chat.session')")
    assert session, "the chat page has no session"
    return "web:" + session.split(".")[0]


def test_a_persons_message_is_shown_under_the_name_its_metadata_gives(stack: Stack, browser: Browser) -> None:
    """The page learns who speaks from the bot message's metadata (``sender_name``), not from /chat/state
    nor from a "Name: " prefix: with /chat/state unreachable, the person's message still shows their
    name as its author and the text exactly as they wrote it."""
    errors: List[str] = []
    customer = new_page(browser, PHONE, errors)
    customer.route(re.compile(r"/chat/state/"), lambda route: route.abort())
    customer.goto(f"{stack.hub_url}/chat")
    customer.fill("#message", REFUND)
    customer.press("#message", "Enter")
    expect(customer.locator(".message.bot").first).to_contain_text("billing team")
    case = consultation(stack, web_conversation(customer))

    taken = api_reply(stack, case["id"], action="take_over")
    assert taken.status_code in (200, 202), taken.text
    joined = customer.locator(".message.bot", has_text="has joined the conversation")
    expect(joined).to_be_visible()
    name = re.match(r"(.+?) from our billing team has joined", joined.locator(".text").inner_text())
    assert name, joined.inner_text()
    said = api_reply(stack, case["id"], action="message", text="Which card did you pay with?")
    assert said.status_code in (200, 202), said.text

    person = customer.locator(".message.human").last
    expect(person.locator(".author")).to_have_text(name.group(1))
    expect(person.locator(".text")).to_have_text("Which card did you pay with?")
    expect(customer.locator("#messages")).not_to_contain_text(f"{name.group(1)}:")
    assert customer.locator(".message.bot", has_text="Which card").count() == 0
    customer.context.close()
    assert errors == []


# --- the chat page against a stand-in Rasa server that can go down and come back ------------------------

CHAT_SECRET = "browser-chat-secret"
EXPERT_SAYS = "/expert_says"


class SocketServer:
    """A Rasa stand-in on a fixed loopback port: the project's socket.io channel, echoing what the customer
    says. ``/expert_says`` is answered as Rasa delivers a human expert's message (action_expert_update's
    bot message: the text "Mara Klein: ..." and ``sender_name`` in its metadata)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin  # the chat page's: BACKLINE_CHAT_ORIGIN
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.live: Optional[LiveApp] = None
        self.channel: Optional[SocketIOInput] = None

    def up(self) -> None:
        self.channel = SocketIOInput(session_persistence=True, secret=CHAT_SECRET)

        async def on_new_message(message: UserMessage) -> None:
            if message.text == EXPERT_SAYS:
                await message.output_channel.send_response(
                    message.sender_id,
                    {
                        "text": "Mara Klein: Which card did you pay with?",
                        "sender_name": "Mara Klein",
                        "delivery_id": "d-browser",
                    },
                )
            else:
                await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

        app = Sanic(f"chat-socket-{uuid.uuid4().hex[:8]}", configure_logging=False)
        app.blueprint(self.channel.blueprint(on_new_message), url_prefix="/webhooks/socketio")
        self.channel.sio.eio.cors_allowed_origins = chat_origins(self.origin)
        live = LiveApp(app)
        live.port, live.url = self.port, self.url
        self.live = live.start()

    def down(self) -> None:
        """Drops every client's connection (as a killed server would) and stops listening: the browser's
        next tries are refused."""
        assert self.live is not None
        live = self.live

        async def drop_connections() -> None:
            for connection in list(live.server.connections):
                if getattr(connection, "websocket", None):
                    connection.websocket.fail_connection(code=1001)
                else:
                    connection.abort()

        live.run(drop_connections())
        live.stop()
        self.live = None


def chat_page_app(socket_url: str) -> Sanic:
    """The hub's chat routes as the page uses them (the page, its files, config.json, a chat state that
    never names anyone), with the hub's security headers."""
    app = Sanic(f"chat-page-{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.static("/chat/static", str(CHAT_STATIC), name="chat_static")

    @app.get("/chat")
    async def page(_: Request) -> HTTPResponse:
        return await file(CHAT_STATIC / "chat.html")

    @app.get("/chat/config.json")
    async def config(_: Request) -> HTTPResponse:
        return json({"socket_url": socket_url, "socket_path": "/socket.io"})

    @app.get("/chat/state/<session_id>")
    async def state(_: Request, session_id: str) -> HTTPResponse:
        return json({"state": "ai"})

    headers.install(app, lambda _: socket_url)
    return app


def chat_servers() -> tuple:
    """The chat page's server (not started) and the stand-in Rasa server for it (not up)."""
    socket_port = free_port()
    page = LiveApp(chat_page_app(f"http://127.0.0.1:{socket_port}"))
    server = SocketServer(page.url)
    server.port, server.url = socket_port, f"http://127.0.0.1:{socket_port}"
    return page, server


@pytest.fixture
def chat() -> Iterator[tuple]:
    """(the chat page's URL, the stand-in Rasa server, running)."""
    page, server = chat_servers()
    server.up()
    page.start()
    try:
        yield f"{page.url}/chat", server
    finally:
        page.stop()
        if server.live is not None:
            server.down()


def open_chat(browser: Browser, url: str, errors: List[str]) -> Page:
    page = new_page(browser, PHONE, errors)
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text}") if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(url)
    expect(page.locator("#connection")).to_contain_text("Online")
    return page


def test_the_page_names_the_person_from_the_message_metadata_and_shows_the_text_as_written(
    chat: tuple, browser: Browser
) -> None:
    """The chat state never names anyone here: the name can only come from the message's metadata."""
    url, _ = chat
    errors: List[str] = []
    customer = open_chat(browser, url, errors)
    customer.fill("#message", "hello")
    customer.press("#message", "Enter")
    expect(customer.locator(".message.bot").last).to_have_text(re.compile("Kestrel assistant\\s*echo: hello"))

    customer.fill("#message", EXPERT_SAYS)
    customer.press("#message", "Enter")
    person = customer.locator(".message.human")
    expect(person).to_have_count(1)
    expect(person.locator(".author")).to_have_text("Mara Klein")
    expect(person.locator(".text")).to_have_text("Which card did you pay with?")
    expect(customer.locator(".message.bot").last.locator(".text")).to_have_text("echo: hello")
    customer.context.close()
    assert errors == []


def test_with_the_chat_server_down_the_page_says_so_keeps_what_is_written_and_retry_reconnects(
    chat: tuple, browser: Browser
) -> None:
    """The server goes away: the page shows an alert with Retry and keeps a message written meanwhile as
    not sent. It tries again on its own, more and more slowly (1 s, then 2 s, 4 s, ...); once the server is
    back, Retry connects at once, well before the page's next own try, and the kept message goes out."""
    url, server = chat
    errors: List[str] = []
    customer = open_chat(browser, url, errors)
    failed: List[str] = []
    customer.on("requestfailed", lambda request: failed.append(request.url) if "/socket.io/" in request.url else None)

    server.down()
    alert = customer.get_by_role("alert")
    expect(alert).to_contain_text("The connection to the chat server was lost.")
    expect(customer.locator("#connection")).to_have_text("Offline")
    retry = customer.get_by_role("button", name="Retry")
    expect(retry).to_be_enabled()

    customer.fill("#message", "are you still there?")
    customer.press("#message", "Enter")
    kept = customer.locator(".message.customer.unsent")
    expect(kept).to_contain_text("are you still there?")
    expect(kept).to_contain_text("Not sent yet")
    expect(customer.locator("#message")).to_have_value("")

    while len(failed) < 2:  # its own tries 1 s and 3 s after the loss; the next comes 4 s later
        customer.wait_for_timeout(100)
    expect(alert).to_contain_text("We cannot reach the chat server right now.")
    server.up()
    retry.click()
    expect(alert).to_be_hidden(timeout=2_500)
    expect(customer.locator("#connection")).to_contain_text("Online")
    expect(customer.locator(".message.customer.unsent")).to_have_count(0)
    expect(customer.locator(".message.bot").last.locator(".text")).to_have_text("echo: are you still there?")
    assert customer.evaluate("localStorage.getItem('backline.chat.unsent')") == "[]"
    customer.context.close()
    assert errors == []


def test_a_message_written_before_the_first_connection_is_sent_once_it_connects(browser: Browser) -> None:
    """The chat server is not up when the page opens: the page says so, and Retry connects once it is."""
    page_server, server = chat_servers()
    page_server.start()
    errors: List[str] = []
    customer = new_page(browser, PHONE, errors)
    try:
        customer.goto(f"{page_server.url}/chat")
        alert = customer.get_by_role("alert")
        expect(alert).to_contain_text("We cannot reach the chat server right now.")
        customer.fill("#message", "first words")
        customer.press("#message", "Enter")
        expect(customer.locator(".message.customer.unsent")).to_contain_text("first words")
        server.up()
        customer.get_by_role("button", name="Retry").click()
        expect(alert).to_be_hidden()
        expect(customer.locator(".message.bot").last.locator(".text")).to_have_text("echo: first words")
    finally:
        customer.context.close()
        page_server.stop()
        if server.live is not None:
            server.down()
    assert errors == []


def test_a_message_the_server_refuses_is_not_lost_silently(chat: tuple, browser: Browser) -> None:
    url, _ = chat
    errors: List[str] = []
    customer = open_chat(browser, url, errors)
    customer.fill("#message", "x" * 5000)
    customer.press("#message", "Enter")
    alert = customer.get_by_role("alert")
    expect(alert).to_contain_text("Your last message was not accepted: message is longer than 4096 characters.")
    expect(customer.get_by_role("button", name="Retry")).to_be_hidden()
    customer.fill("#message", "shorter")
    customer.press("#message", "Enter")
    expect(alert).to_be_hidden()
    expect(customer.locator(".message.bot").last.locator(".text")).to_have_text("echo: shorter")
    customer.context.close()
    assert errors == []
