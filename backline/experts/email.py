"""E-mail over SMTP (smtplib): brief, draft and transcript; replies find their consultation again.

A reply is matched to its consultation by any of: the plus address in Reply-To
(``experts+<consultation id>@example.com``), the ``X-Backline-Consultation`` header
(kept by most clients only on forwards), or ``In-Reply-To`` equal to the Message-ID
recorded in the `Delivery`.

E-mail has no buttons: the notification, and the feedback question after the decision
(`EmailChannel.ask_feedback`), tell the expert to reply with ``verdict: ...`` and ``reason: ...``
lines (read by `backline.hub.guidance`).
"""

from __future__ import annotations

import html
import os
import re
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import formataddr, make_msgid, parseaddr
from typing import Mapping, Optional

from backline.experts.base import (
    ChannelConfigError,
    ChannelError,
    Delivery,
    ExpertChannel,
    Notification,
    brief_lines,
    feedback_lines,
    format_value,
    transcript_lines,
)
from backline.routing.directory import Person

ENV_HOST = "BACKLINE_SMTP_HOST"
ENV_PORT = "BACKLINE_SMTP_PORT"
ENV_USER = "BACKLINE_SMTP_USER"
ENV_PASSWORD = "BACKLINE_SMTP_PASSWORD"
ENV_FROM = "BACKLINE_SMTP_FROM"
ENV_STARTTLS = "BACKLINE_SMTP_STARTTLS"
ENV_REPLY_TO = "BACKLINE_SMTP_REPLY_TO"
DEFAULT_FROM = "Backline <backline@localhost>"
HEADER_CONSULTATION = "X-Backline-Consultation"
HEADER_CONVERSATION = "X-Backline-Conversation"
X_PRIORITY = {"urgent": "1 (Highest)", "high": "2 (High)", "normal": "3 (Normal)", "low": "5 (Lowest)"}
_PLUS_SAFE = re.compile(r"^[A-Za-z0-9._=-]+$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
POLICY = default_policy.clone(max_line_length=998)
"""RFC 5322's hard line limit: a long Message-ID or Subject stays on one line instead of being folded."""


def reply_address(base: str, consultation_id: str) -> str:
    """``local+<id>@domain`` from ``base`` (a bare address or 'Name <address>'); ``base`` if the id is unsafe."""
    name, address = parseaddr(base)
    local, sep, domain = address.partition("@")
    if not sep or not _PLUS_SAFE.match(consultation_id):
        return base
    return formataddr((name, f"{local}+{consultation_id}@{domain}"))


def consultation_from_address(address: str) -> Optional[str]:
    """The consultation id in a plus address made by `reply_address`, or None."""
    local = parseaddr(address)[1].partition("@")[0]
    _, sep, tag = local.partition("+")
    return tag if sep and tag else None


def subject(notification: Notification) -> str:
    kind = "Handoff" if notification.mode == "handoff" else "Consultation"
    intent = format_value(notification.brief.get("intent"))
    return f"[Backline] [{notification.priority.upper()}] {kind}: {intent} ({notification.consultation_id})"


def plain_body(notification: Notification) -> str:
    lines = [notification.text, ""]
    turns = transcript_lines(notification.transcript)
    if turns:
        lines += [f"Transcript ({len(turns)} messages)", "-" * 40]
        lines += [f"{speaker}: {text}" for speaker, text in turns]
        lines.append("")
    lines.append(
        f"Reply to this e-mail to answer; your reply is attached to consultation {notification.consultation_id}."
    )
    lines.append(
        "Start it with approve, deny, take over, hand back or close: <resolution for the customer> "
        "to decide; lines starting with // stay internal."
    )
    lines.append(
        "With your decision (or in a reply after it) you may add a line verdict: needed | not needed | too late, "
        "and when you change the AI's draft, reason: wrong intent -> <intent> | wrong facts | policy | tone "
        "| other - <text>."
    )
    return "\n".join(lines) + "\n"


def feedback_message(
    person: Person,
    to: str,
    consultation_id: str,
    sender: str,
    reply_to: str,
    *,
    verdict: bool,
    reasons: bool,
    thread_id: Optional[str] = None,
) -> EmailMessage:
    """The feedback question as an e-mail in the consultation's thread: reply with the keyword lines."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = formataddr((person.name, to))
    message["Subject"] = f"Re: [Backline] Feedback on consultation {consultation_id}"
    message["Reply-To"] = reply_address(reply_to, consultation_id)
    domain = parseaddr(sender)[1].partition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"feedback.{consultation_id}", domain=domain)
    if thread_id:
        message["In-Reply-To"] = thread_id
        message["References"] = thread_id
    message[HEADER_CONSULTATION] = consultation_id
    lines = feedback_lines(consultation_id, verdict=verdict, reasons=reasons)
    lines.append("Reply to this e-mail with those lines only: nothing is sent to the customer.")
    message.set_content("\n".join(lines) + "\n")
    return message


def html_body(notification: Notification) -> str:
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    n = notification
    rows = "".join(
        f"<tr><th align='left'>{e(label)}</th><td>{e(text)}</td></tr>" for label, text in brief_lines(n.brief)
    )
    parts = [
        f"<h2>{e(n.priority.upper())} · {e('Handoff' if n.mode == 'handoff' else 'Consultation')}</h2>",
        f"<p>consultation <code>{e(n.consultation_id)}</code> · conversation <code>{e(n.conversation_id)}</code>"
        + (f" · queue {e(n.queue)}" if n.queue else "")
        + "</p>",
        f"<table>{rows}</table>",
    ]
    if n.ai_draft:
        parts.append(f"<h3>AI draft</h3><blockquote>{e(n.ai_draft)}</blockquote>")
    turns = transcript_lines(n.transcript)
    if turns:
        items = "".join(f"<li><b>{e(speaker)}:</b> {e(text)}</li>" for speaker, text in turns)
        parts.append(f"<h3>Transcript</h3><ul>{items}</ul>")
    if n.link:
        parts.append(f"<p><a href='{e(n.link)}'>Open in dashboard</a></p>")
    return "<html><body>" + "".join(parts) + "</body></html>"


def build_message(
    notification: Notification, to: str, sender: str, reply_to: str, html_alternative: bool = True
) -> EmailMessage:
    """The e-mail to ``to``: headers that lead a reply back to the consultation."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = formataddr((notification.person.name, to))
    message["Subject"] = subject(notification)
    message["Reply-To"] = reply_address(reply_to, notification.consultation_id)
    domain = parseaddr(sender)[1].partition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"consultation.{notification.consultation_id}", domain=domain)
    message[HEADER_CONSULTATION] = notification.consultation_id
    message[HEADER_CONVERSATION] = notification.conversation_id
    message["X-Priority"] = X_PRIORITY[notification.priority]
    message.set_content(plain_body(notification))
    if html_alternative:
        message.add_alternative(html_body(notification), subtype="html")
    return message


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ChannelConfigError("email", f"{name} must be true or false, not {value!r}")


class EmailChannel(ExpertChannel):
    """Sends to the person's e-mail address through one SMTP server (STARTTLS and login optional)."""

    kind = "email"

    def __init__(
        self,
        host: str = "localhost",
        port: int = 25,
        user: Optional[str] = None,
        password: Optional[str] = None,
        sender: str = DEFAULT_FROM,
        starttls: bool = False,
        reply_to: Optional[str] = None,
        timeout: float = 10.0,
        html_alternative: bool = True,
    ) -> None:
        if user and password is None:
            raise ChannelConfigError(self.kind, f"{ENV_USER} is set but {ENV_PASSWORD} is not")
        self.host, self.port, self.user, self.password = host, port, user, password
        self.sender, self.starttls, self.timeout = sender, starttls, timeout
        self.reply_to = reply_to or sender
        self.html_alternative = html_alternative

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> "EmailChannel":
        """BACKLINE_SMTP_HOST (required: e-mail is off without it), PORT (25), USER, PASSWORD, FROM,
        STARTTLS, REPLY_TO."""
        env = os.environ if env is None else env
        if not env.get(ENV_HOST):
            raise ChannelConfigError(cls.kind, f"e-mail is off: set {ENV_HOST} (and {ENV_PORT}) to an SMTP server")
        port_text = env.get(ENV_PORT) or "25"
        if not port_text.isdigit():
            raise ChannelConfigError(cls.kind, f"{ENV_PORT} must be a port number, not {port_text!r}")
        return cls(
            host=env[ENV_HOST],
            port=int(port_text),
            user=env.get(ENV_USER) or None,
            password=env.get(ENV_PASSWORD),
            sender=env.get(ENV_FROM) or DEFAULT_FROM,
            starttls=_flag(env, ENV_STARTTLS, False),
            reply_to=env.get(ENV_REPLY_TO) or None,
            timeout=timeout,
        )

    def send(self, notification: Notification) -> Delivery:
        address = self.address(notification.person)
        message = build_message(notification, address, self.sender, self.reply_to, self.html_alternative)
        self._submit(message, address)
        return Delivery(
            channel=self.kind,
            person_id=notification.person.id,
            destination=address,
            message_id=str(message["Message-ID"]),
            thread_id=str(message["Message-ID"]),
            extra={"reply_to": str(message["Reply-To"])},
        )

    def ask_feedback(
        self,
        person: Person,
        consultation_id: str,
        *,
        verdict: bool,
        reasons: bool,
        thread_id: Optional[str] = None,
    ) -> Delivery:
        """An e-mail in the consultation's thread asking for ``verdict: ...`` / ``reason: ...`` lines."""
        address = self.address(person)
        message = feedback_message(
            person,
            address,
            consultation_id,
            self.sender,
            self.reply_to,
            verdict=verdict,
            reasons=reasons,
            thread_id=thread_id,
        )
        self._submit(message, address)
        return Delivery(
            channel=self.kind,
            person_id=person.id,
            destination=address,
            message_id=str(message["Message-ID"]),
            thread_id=thread_id,
            extra={"reply_to": str(message["Reply-To"]), "feedback": True},
        )

    def _submit(self, message: EmailMessage, address: str) -> None:
        """One SMTP submission of ``message`` to ``address``; a classified `ChannelError` otherwise."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            raise self._reply_error(int(code), reply, "recipient refused") from error
        except smtplib.SMTPAuthenticationError as error:
            raise ChannelError(
                self.kind,
                "auth_failed",
                f"SMTP login failed ({error.smtp_code}): check {ENV_USER}/{ENV_PASSWORD}",
                transient=False,
                status=error.smtp_code,
            ) from error
        except smtplib.SMTPNotSupportedError as error:
            raise ChannelError(
                self.kind,
                "not_supported",
                f"SMTP {self.host}:{self.port}: {error} (check {ENV_STARTTLS})",
                transient=False,
            ) from error
        except smtplib.SMTPResponseException as error:
            raise self._reply_error(error.smtp_code, error.smtp_error, "rejected") from error
        except (socket.timeout, TimeoutError) as error:
            raise ChannelError(
                self.kind, "timeout", f"SMTP {self.host}:{self.port} timed out", transient=True
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise ChannelError(
                self.kind, "connection_error", f"SMTP {self.host}:{self.port}: {error}", transient=True
            ) from error

    def _reply_error(self, code: int, reply: object, what: str) -> ChannelError:
        """SMTP 4xx replies are temporary, 5xx permanent."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return ChannelError(
            self.kind, f"smtp_{code}", f"{what}: {code} {text}", transient=400 <= code < 500, status=code
        )
