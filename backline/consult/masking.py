"""Masking: what must never reach an expert, a store or a log in clear, wherever text goes.

`mask` (a string) and `mask_data` (any JSON-like structure) are applied to every consultation write
(the case's context, brief, draft, transcript and routing record; every message, customer or
expert; every audit detail) and to every text sent to an expert channel, the human-mode relay of
customer messages included. Pure Python: no business data, no Rasa.

- card numbers (13-19 digits, spaces or dashes allowed, Luhn-valid, not starting with 0) keep
  their last four digits; IBANs (a registered country code with its exact length) keep the country
  code and the last four characters; separators stay, so ``4242 4242 4242 4242`` becomes
  ``**** **** **** 4242`` and ``DE89 3704 0044 0532 0130 00`` becomes ``DE** **** **** **** **30 00``;
- CVV, PIN and one-time codes (verification / 2FA / OTP / SMS / login / TAN) after their label are
  starred out (``my pin is 4711``, ``2FA code: 123456``);
- passwords after their label and a connector (``password: x``, ``my password is hunter2``,
  ``Passwort ist x``, ``pw = x``), whatever follows, except the words that describe a password
  rather than give it (``password is wrong``, ``password is not working``): eight stars;
- credentials that announce their kind (``sk_live_...``, ``xoxb-...``, ``ghp_...``, AWS access key
  ids, JWTs) keep the kind only; labelled ones (``api key: ...``, ``token = ...``, ``Bearer ...``) are starred;
- US social security numbers keep their last four digits.

E-mail addresses, order and invoice numbers stay readable: the expert needs them.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Optional

IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}
"""IBAN length by country (the SWIFT IBAN registry)."""

_IBAN_START = re.compile(r"(?<![^\W_])[A-Za-z]{2}\d{2}")
_DIGIT_RUN = re.compile(r"(?<![\d+])\d(?:[ -]?\d)*(?!\d)")
_CVV = re.compile(
    r"(?i)\b(?:cvv2?|cvc2?|csc|cid|security\s+code|card\s+code|sicherheitscode|prüfziffer)"
    r"(?:\s*(?:code|number|no\.?|nr\.?))?\s*(?:is|was|:|=|#|-)?\s*(\d{3,4})(?!\d)"
)
_PIN = re.compile(
    r"(?i)\b(?:pin(?:\s*(?:code|number|no\.?|nr\.?))?|passcode|geheimzahl)\s*(?:is|was|ist|:|=|#)?\s*(\d{4,8})(?!\d)"
)
_NOT_A_SECRET = (
    r"(?:not|no|wrong|incorrect|correct|invalid|expired|too|the|my|your|still|being|working|locked|"
    r"reset|rejected|refused|accepted|changed|required|missing|empty|same|different|weak|strong|"
    r"nicht|falsch|abgelaufen)\b"
)
_PASSWORD = re.compile(
    r"(?i)\b(?:password|passwort|passwd|passphrase|kennwort|pwd|pw)\b"
    r"(?:\s*(?:[:=]|\b(?:is|was|ist|war|lautet)\b(?:\s+now\b)?|\bset\s+to\b|\bchanged\s+to\b)\s*)"
    r"(?:[\"'“‘]|(?!" + _NOT_A_SECRET + r"))([^\s\"'”’]+)"
)
_PASSWORD_SET = re.compile(
    r"(?i)\b(?:set|changed|change|reset)\s+(?:the\s+|my\s+|our\s+|his\s+|her\s+)?(?:new\s+)?"
    r"(?:password|passwort|pw)\s+to\s+[\"'“‘]?([^\s\"'”’]+)"
)
_ONE_TIME_CODE = re.compile(
    r"(?i)\b(?:verification|one[- ]?time|2fa|mfa|otp|sms|login|sign[- ]?in|auth(?:entication)?|confirmation|tan)"
    r"(?:\s*(?:code|pin|number|passcode))?\s*(?:is|was|:|=|#)?\s*(\d{4,8})(?!\d)"
)
_TOKENS = re.compile(
    r"\b(?:(?:sk|pk|rk)_(?:live|test)_|xox[abprse]-|gh[pousr]_|glpat-|bkl_|AKIA|ASIA)"
    r"[A-Za-z0-9_\-]{8,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_LABELLED_SECRET = re.compile(
    r"(?i)\b(?:api[ _-]?key|(?:access|auth|api|refresh)?[ _-]?token|secret(?:[ _-]?key)?|private[ _-]?key|bearer)"
    r"\s*(?:is|was|:|=)?\s*[\"']?([A-Za-z0-9_\-.+/=]{12,})"
)
_SSN = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")


def luhn_valid(digits: str) -> bool:
    """The Luhn check of a digit string (payment card numbers pass it)."""
    if not digits or not digits.isdigit():
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_like(digits: str) -> bool:
    """13-19 digits, Luhn-valid, not starting with 0 (no payment card does; parcel numbers often do)."""
    return 13 <= len(digits) <= 19 and digits[0] != "0" and luhn_valid(digits)


def _keep_last(chunk: str, keep: int, head: int = 0) -> str:
    """Star every letter or digit of `chunk` except the first `head` and the last `keep`."""
    positions = [i for i, char in enumerate(chunk) if char.isalnum()]
    hidden = set(positions[head : len(positions) - keep] if keep else positions[head:])
    return "".join("*" if i in hidden else char for i, char in enumerate(chunk))


def _mask_ibans(text: str) -> str:
    out: List[str] = []
    position = 0
    search_from = 0
    while True:
        match = _IBAN_START.search(text, search_from)
        if match is None:
            break
        start = match.start()
        end = _iban_end(text, start)
        if end is None:
            search_from = start + 1
            continue
        out.append(text[position:start])
        out.append(_keep_last(text[start:end], 4, head=2))
        position = search_from = end
    out.append(text[position:])
    return "".join(out)


def _iban_end(text: str, start: int) -> Optional[int]:
    """Where an IBAN starting at `start` ends, or None when it is not one (length, digits, boundary)."""
    length = IBAN_LENGTHS.get(text[start : start + 2].upper())
    if length is None:
        return None
    count, index, digits = 0, start, 0
    while index < len(text) and count < length:
        char = text[index]
        if char.isascii() and char.isalnum():
            count += 1
            digits += char.isdigit()
            index += 1
        elif (
            char in " -"
            and count >= 4
            and index + 1 < len(text)
            and text[index + 1].isascii()
            and text[index + 1].isalnum()
            and text[index - 1] not in " -"
        ):
            index += 1
        else:
            break
    if count != length or digits - 2 < 4:
        return None
    if index < len(text) and text[index].isalnum():
        return None
    return index


def _mask_cards(text: str) -> str:
    def replace(match: "re.Match[str]") -> str:
        run = match.group(0)
        digits = re.sub(r"\D", "", run)
        if len(digits) < 13:
            return run
        if len(digits) <= 19 and _card_like(digits):
            return _keep_last(run, 4)
        return _mask_card_windows(run)

    return _DIGIT_RUN.sub(replace, text)


def _mask_card_windows(run: str) -> str:
    """A run of digit groups that is not one card ("4242 4242 4242 4242 123"): mask every Luhn-valid
    13-19 digit stretch of whole groups inside it, longest first."""
    groups = [(m.start(), m.end()) for m in re.finditer(r"\d+", run)]
    if len(groups) < 2:
        return run
    masked = list(run)
    taken = [False] * len(groups)
    windows = []
    for first in range(len(groups)):
        count = 0
        for last in range(first, len(groups)):
            count += groups[last][1] - groups[last][0]
            if count > 19:
                break
            if count >= 13:
                windows.append((count, first, last))
    for _, first, last in sorted(windows, key=lambda w: (-w[0], w[1])):
        if any(taken[first : last + 1]):
            continue
        start, end = groups[first][0], groups[last][1]
        if _card_like(re.sub(r"\D", "", run[start:end])):
            masked[start:end] = _keep_last(run[start:end], 4)
            taken[first : last + 1] = [True] * (last - first + 1)
    return "".join(masked)


def _star_group(pattern: "re.Pattern[str]", text: str, fixed: Optional[int] = None) -> str:
    def replace(match: "re.Match[str]") -> str:
        start, end = match.span(1)
        secret = "*" * (fixed if fixed is not None else end - start)
        return match.group(0)[: start - match.start()] + secret + match.group(0)[end - match.start() :]

    return pattern.sub(replace, text)


def _keep_head(token: str) -> str:
    """A credential that announces its kind (``sk_live_...``, ``xoxb-...``): the kind stays, the rest is starred."""
    head = re.match(r"(?:(?:sk|pk|rk)_(?:live|test)_|xox[abprse]-|gh[pousr]_|glpat-|bkl_|AKIA|ASIA|eyJ)", token)
    keep = head.end() if head else 0
    return token[:keep] + "*" * 8


def mask(text: Any) -> Any:
    """`text` with card numbers, IBANs, CVV / PIN / one-time codes, passwords, credentials and SSNs masked.

    Anything that is not a string is returned as it is (see `mask_data` for structures)."""
    if not isinstance(text, str) or not text:
        return text
    masked = _mask_ibans(text)
    masked = _mask_cards(masked)
    masked = _star_group(_CVV, masked)
    masked = _star_group(_PIN, masked)
    masked = _star_group(_ONE_TIME_CODE, masked)
    masked = _star_group(_PASSWORD, masked, fixed=8)
    masked = _star_group(_PASSWORD_SET, masked, fixed=8)
    masked = _TOKENS.sub(lambda m: _keep_head(m.group(0)), masked)
    masked = _star_group(_LABELLED_SECRET, masked, fixed=8)
    masked = _SSN.sub(lambda m: f"***-**-{m.group(3)}", masked)
    return masked


def mask_data(value: Any) -> Any:
    """A copy of `value` with every string masked (mappings, lists and tuples recursively; keys
    kept). A bare integer that is a card number becomes its masked string."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {key: mask_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        masked = mask(str(value))
        return masked if masked != str(value) else value
    return value
