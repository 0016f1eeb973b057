"""Attack suite: sign-in and the dashboard, tried as an attacker would against the real hub process
(`python -m backline hub` on loopback, its own SQLite store, no BACKLINE_DEMO), with attackers at
different client addresses (connections from 127.0.0.x source addresses; no trusted proxy, so an
X-Forwarded-For names no one). Results go to docs/security.md, section "dashboard".

Jonas has a password of his own (the suite's copy of experts.yml); every other operator keeps the
demo password, which this hub refuses. The browser checks run Debian's Chromium through Playwright.
"""

from __future__ import annotations

import collections
import json
import re
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Tuple

import pytest

from backline.hub.operators import DEMO_PASSWORD
from tests.hub_process import JONAS_PASSWORD, Answer, AttackerSite, Hub, call
from tests.security_report import SecurityReport

pytestmark = pytest.mark.stack  # the hub as a process; the report needs the whole module

REPORT = SecurityReport("pytest tests/test_security_dashboard.py", {"dashboard": "Sign-in and dashboard"})
record = REPORT.recorder("dashboard")
FLOOD_REQUESTS, FLOOD_THREADS, FLOOD_ADDRESSES = 800, 40, 200
BOUND_MAX, BOUND_P95 = 1.0, 0.5
"""During the flood every /health and dashboard API read must answer within BOUND_MAX seconds, 95% of
them within BOUND_P95."""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    served = Hub(tmp_path_factory.mktemp("security-dashboard"))
    yield served
    served.stop()


def _page_text(answer: Answer) -> str:
    """The sign-in page without what differs per request (the hidden ``next``)."""
    return re.sub(r'name="next" value="[^"]*"', "", answer.text)


def test_guessing_passwords_over_many_usernames_from_one_address_gets_429(hub: Hub) -> None:
    source = "127.0.0.2"
    names = ["anna", "tariq", "lena", "felix", "petra", "sofia.costa", "jonas", "mara"]
    names += [f"user{n}" for n in range(16)]
    answers = [hub.sign_in(name, f"guess-{n}", source) for n, name in enumerate(names)]
    statuses = [a.status for a in answers]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    unknown = answers[20]  # user12: no such operator; then a real one
    real = hub.sign_in("anna", "guess-again", source)
    assert real.status == 429 and _page_text(real) == _page_text(unknown)
    assert 800 <= int(real.headers["retry-after"]) <= 900
    spoofed = [hub.sign_in("felix", "guess", source, **{"X-Forwarded-For": f"198.51.100.{n}"}).status for n in range(5)]
    assert spoofed == [429] * 5  # the peer is no trusted proxy: its X-Forwarded-For names no one
    rows = hub.rows()
    assert rows and not any(source in key or any(name in key for name in names) for _, key in rows)
    assert {len(key) for _, key in rows} == {64}
    record(
        "Password guessing over many usernames from one address",
        f"{len(names)} usernames (real and unknown) with wrong passwords from one address, then 5 more with "
        "forged X-Forwarded-For",
        f"401 × {statuses.count(401)}, then refused: 429 × {statuses.count(429)} (Retry-After "
        f"{real.headers['retry-after']} s), same page for real and unknown usernames; forged X-Forwarded-For: "
        f"{collections.Counter(spoofed)[429]}/5 still 429; stored keys: {len(rows)} SHA-256 HMACs, no username or "
        "address in clear",
    )


def test_guessing_one_user_backs_off_while_he_signs_in_from_elsewhere(hub: Hub) -> None:
    attacker, home = "127.0.0.3", "127.0.0.4"
    first = [hub.sign_in("jonas", f"guess-{n}", attacker).status for n in range(3)]
    blocked = hub.sign_in("jonas", JONAS_PASSWORD, attacker)  # even the right password waits
    at_home = hub.sign_in("jonas", JONAS_PASSWORD, home)
    assert first == [401] * 3 and blocked.status == 429 and blocked.session is None
    assert at_home.status == 303 and at_home.session
    first_wait = int(blocked.headers["retry-after"])
    assert 1 <= first_wait <= 5
    time.sleep(first_wait + 0.2)
    again = hub.sign_in("jonas", "guess-3", attacker)
    second = hub.sign_in("jonas", "guess-4", attacker)
    assert again.status == 401 and second.status == 429 and 6 <= int(second.headers["retry-after"]) <= 10
    still_home = hub.sign_in("jonas", JONAS_PASSWORD, home)
    assert still_home.status == 303
    record(
        "A wrong-password storm locks an operator out / guesses their password",
        "3 wrong passwords for jonas from one address, then the right one there and from his own address; "
        "once the wait is over, one more wrong one",
        f"the attacker's address backs off: 429 Retry-After {first_wait} s, then {second.headers['retry-after']} s "
        f"(doubling); jonas from his own address: {at_home.status}, {still_home.status} (signed in)",
    )


def test_the_demo_password_is_refused_without_the_demo_flag(hub: Hub) -> None:
    demo = hub.sign_in("mara", DEMO_PASSWORD, "127.0.0.5")
    wrong = hub.sign_in("lena", "not-her-password", "127.0.0.5")
    assert demo.status == wrong.status == 401 and demo.session is None
    assert _page_text(demo) == _page_text(wrong)
    log = hub.log_path.read_text()
    assert "sign-in refused for 'mara': the demo password is accepted only with BACKLINE_DEMO=1" in log
    assert DEMO_PASSWORD not in log
    record(
        "The published demo password (`kestrel-demo`) signs in outside a demo",
        "mara with the demo password on a hub without BACKLINE_DEMO=1",
        f"refused: {demo.status}, the same page as a wrong password; the hub logs why (without the password)",
    )


def test_a_cross_site_post_is_refused_and_changes_nothing(hub: Hub) -> None:
    source = "127.0.0.6"
    cookie, token = hub.session(source)
    reply = f"{hub.url}/dashboard/api/consultations/{hub.case}/reply"
    body = json.dumps({"action": "message", "text": "forged: send the refund to IBAN X"}).encode()
    own, evil = {"Origin": hub.url}, {"Origin": "https://evil.example"}
    as_json, as_text = {"Content-Type": "application/json"}, {"Content-Type": "text/plain"}
    before = hub.case_state()
    attempts = {
        "text/plain form from another site, no token": {**cookie, **evil, **as_text},
        "foreign Origin with the token": {**cookie, **evil, **as_json, "X-CSRF-Token": token},
        "foreign Referer, no Origin": {
            **cookie,
            **as_json,
            "X-CSRF-Token": token,
            "Referer": "https://evil.example/page",
        },
        "no Origin or Referer": {**cookie, **as_json, "X-CSRF-Token": token},
        "own Origin, no token": {**cookie, **own, **as_json},
        "own Origin, token, text/plain": {**cookie, **own, **as_text, "X-CSRF-Token": token},
    }
    statuses = {
        name: call(reply, "POST", source=source, headers=headers, body=body).status
        for name, headers in attempts.items()
    }
    retry = call(f"{hub.url}/dashboard/api/deliveries/d_1/retry", "POST", source=source, headers={**cookie, **evil})
    logout = call(f"{hub.url}/dashboard/logout", "POST", source=source, headers={**cookie, **evil})
    login = hub.sign_in("jonas", JONAS_PASSWORD, source, Origin="https://evil.example")
    assert statuses == {name: 415 if name.endswith("text/plain") else 403 for name in attempts}
    assert (retry.status, logout.status, login.status, login.session) == (403, 403, 403, None)
    assert hub.case_state() == before
    assert call(f"{hub.url}/dashboard/api/session", source=source, headers=cookie).status == 200  # still signed in
    control = call(
        reply,
        "POST",
        source=source,
        headers={**cookie, **own, **as_json, "X-CSRF-Token": token},
        body=json.dumps({"action": "message", "text": "On it."}).encode(),
    )
    assert control.status in (200, 202), control.text  # the page's own request goes through
    assert hub.case_state()[1] == before[1] + 1
    record(
        "Cross-site POST to the dashboard (CSRF)",
        "a reply with the operator's cookie: text/plain from another site, foreign Origin or Referer, no Origin, "
        "no CSRF token, text/plain with the token; cross-site resend, sign-out and sign-in",
        "refused: "
        + ", ".join(str(s) for s in statuses.values())
        + f"; resend {retry.status}, sign-out {logout.status}, sign-in {login.status}; the case unchanged "
        f"(status, messages, audit); the page's own request: {control.status}",
    )


def _monitor(hub: Hub, cookie: Dict[str, str], stop: threading.Event, out: List[Tuple[str, int, float]]) -> None:
    while not stop.is_set():
        for name, path, headers in (("health", "/health", {}), ("api", "/dashboard/api/queue", cookie)):
            answer = call(f"{hub.url}{path}", source="127.0.0.7", headers=headers, timeout=10)
            out.append((name, answer.status, answer.seconds))
        time.sleep(0.05)


def test_a_sign_in_flood_does_not_stall_the_hub(hub: Hub) -> None:
    cookie, _ = hub.session("127.0.0.7")
    baseline: List[Tuple[str, int, float]] = []
    stop = threading.Event()
    quiet = threading.Thread(target=_monitor, args=(hub, cookie, stop, baseline))
    quiet.start()
    time.sleep(2)
    stop.set()
    quiet.join()

    during: List[Tuple[str, int, float]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_monitor, args=(hub, cookie, stop, during))
    watcher.start()

    def attempt(n: int) -> Answer:
        return hub.sign_in(f"user{n % 7}" if n % 3 else "jonas", f"flood-{n}", f"127.0.1.{1 + n % FLOOD_ADDRESSES}")

    started = time.monotonic()
    with ThreadPoolExecutor(FLOOD_THREADS) as pool:
        flood = list(pool.map(attempt, range(FLOOD_REQUESTS)))
    seconds = time.monotonic() - started
    stop.set()
    watcher.join()

    statuses = collections.Counter(a.status for a in flood)
    assert set(statuses) <= {401, 429, 503} and statuses[503] > 0, statuses  # the pool was full and said so
    assert all("retry-after" in a.headers for a in flood if a.status in (429, 503))
    assert seconds < 60
    times = [t for _, status, t in during if status == 200]
    assert len(times) == len(during) >= 20  # every read answered 200 during the flood
    p95 = statistics.quantiles(times, n=20)[-1]
    base = [t for _, _, t in baseline]
    assert max(times) <= BOUND_MAX and p95 <= BOUND_P95, (max(times), p95)
    record(
        "A sign-in flood stalls the hub (scrypt on the shared thread pool)",
        f"{FLOOD_REQUESTS} wrong sign-ins from {FLOOD_ADDRESSES} addresses, {FLOOD_THREADS} at a time, while "
        "/health and the dashboard's queue API are read every 50 ms",
        f"flood answered in {seconds:.1f} s: "
        + ", ".join(f"{k} × {v}" for k, v in sorted(statuses.items()))
        + f" (503: the password pool was full, refused at once); {len(times)} reads during it all 200, "
        f"median {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
        f"(bound {BOUND_MAX * 1000:.0f} ms; before it: median {statistics.median(base) * 1000:.0f} ms)",
    )


def test_security_headers_on_the_dashboard_the_chat_and_the_api(hub: Hub) -> None:
    cookie, _ = hub.session("127.0.0.8")
    pages = {
        "/dashboard/login": {},
        "/dashboard": cookie,
        "/dashboard/api/queue": cookie,
        "/chat": {},
        "/api/consultations": {},
        "/health": {},
    }
    seen = {
        path: call(f"{hub.url}{path}", source="127.0.0.8", headers=headers).headers for path, headers in pages.items()
    }
    for path, headers in seen.items():
        policy = headers.get("content-security-policy", "")
        assert "default-src 'self'" in policy and "script-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert (
            headers.get("x-frame-options"),
            headers.get("x-content-type-options"),
            headers.get("referrer-policy"),
        ) == ("DENY", "nosniff", "same-origin"), path
    assert f"ws://127.0.0.1:{hub.rasa_port}" in seen["/chat"]["content-security-policy"]
    assert "ws://" not in seen["/dashboard"]["content-security-policy"]
    no_store = [
        p
        for p in ("/dashboard", "/dashboard/api/queue", "/api/consultations")
        if seen[p].get("cache-control") == "no-store"
    ]
    assert len(no_store) == 3
    record(
        "Clickjacking, content sniffing, injected script, cached case data",
        "headers of " + ", ".join(f"`{p}`" for p in pages),
        f"CSP default-src 'self' without inline script and frame-ancestors 'none', X-Frame-Options DENY, nosniff, "
        f"Referrer-Policy same-origin on {len(seen)}/{len(pages)}; the chat may connect to Rasa's socket.io only; "
        f"no-store on {len(no_store)}/3 data answers",
    )


@pytest.mark.browser
def test_in_a_browser_the_pages_work_under_the_policy_and_another_site_cannot_post_or_frame(hub: Hub) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    violations: List[str] = []
    site = AttackerSite(hub)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.on("pageerror", lambda e: violations.append(str(e)))
            page.goto(f"{hub.url}/dashboard")
            page.fill("input[name=username]", "jonas")
            page.fill("input[name=password]", JONAS_PASSWORD)
            page.click("button[type=submit]")
            expect(page.locator(f"a.case[data-id='{hub.case}']")).to_be_visible()
            page.click(f"a.case[data-id='{hub.case}']")
            page.fill("#reply-text", "Checked from the browser.")
            messages = hub.case_state()[1]
            page.click("#send-message")
            expect(page.locator("#flash")).not_to_have_text(re.compile("^(Sending…)?$"))
            sent = hub.case_state()[1] - messages
            flash = page.locator("#flash").text_content()

            before = hub.case_state()
            attack = context.new_page()
            attack.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            attack.goto(site.url)
            attack.wait_for_timeout(1000)
            framed = attack.frame_locator("#frame").locator("#app").count()
            with attack.expect_response(lambda r: "/reply" in r.url) as posted:
                attack.evaluate("document.getElementById('f').submit()")
            forged_status = posted.value.status
            after = hub.case_state()
            page.bring_to_front()
            page.click("form#logout button")
            expect(page).to_have_url(re.compile(r"/dashboard/login$"))
            signed_out = call(
                f"{hub.url}/dashboard/api/session",
                headers={"Cookie": "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())},
            )
            chat = context.new_page()
            chat.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            chat.goto(f"{hub.url}/chat")
            expect(chat.locator("#messages")).to_be_attached()
            chat.wait_for_timeout(1500)  # the socket.io client tries Rasa's port (nothing listens: not a CSP matter)
            browser.close()
    finally:
        site.stop()
    frame_blocked = [v for v in violations if "frame-ancestors" in v]
    page_violations = [v for v in violations if "frame-ancestors" not in v]
    assert sent == 1 and flash not in (None, "", "Sending…"), flash
    assert forged_status == 403 and after == before
    assert framed == 0 and frame_blocked
    assert signed_out.status == 401
    assert page_violations == []
    record(
        "A page of another origin on the same site posts or frames the dashboard in the operator's browser",
        "Chromium: jonas signed in; a page on another port of the same host submits a text/plain form to the "
        "reply endpoint (the Lax cookie goes along) and frames /dashboard",
        f"refused: {forged_status}, the case unchanged; framing blocked by frame-ancestors; the dashboard's own "
        f"sign-in, reply ({sent} message recorded), sign-out and the chat page ran with {len(page_violations)} "
        "CSP violations",
    )


def test_write_the_security_report() -> None:
    REPORT.write(expected={"dashboard": 7})
