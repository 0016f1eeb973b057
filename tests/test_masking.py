"""Masking (`backline.consult.masking`): cards, IBANs, codes, passwords, credentials and SSNs in
realistic customer text, what must stay readable, and structures."""

from __future__ import annotations

import random
import time
from typing import List

import pytest

from backline.consult.masking import IBAN_LENGTHS, luhn_valid, mask, mask_data

CARD = "4242 4242 4242 4242"
CARD_DIGITS = "4242424242424242"
IBAN = "DE89 3704 0044 0532 0130 00"


def card_forms() -> List[str]:
    return [CARD, CARD_DIGITS, "4242-4242-4242-4242", CARD.replace(" ", " - ").replace(" - ", "-")]


@pytest.mark.parametrize(
    "text, expected",
    [
        # cards: the last four stay, separators stay
        ("4242 4242 4242 4242", "**** **** **** 4242"),
        ("4242-4242-4242-4242", "****-****-****-4242"),
        ("4242424242424242", "************4242"),
        ("card:4242424242424242.", "card:************4242."),
        ("Amex 3782 822463 10005 please", "Amex **** ****** *0005 please"),
        ("visa 4222222222222", "visa *********2222"),
        ("6011 0009 9013 9421 237", "**** **** **** ***1 237"),  # 19 digits
        ("5555555555554444 and 4111 1111 1111 1111", "************4444 and **** **** **** 1111"),
        ("order 10023 4242424242424242", "order 10023 ************4242"),
        ("4242 4242 4242 4242 123", "**** **** **** 4242 123"),
        ("(4242424242424242)", "(************4242)"),
        # not cards
        ("4242 4242 4242 4241", "4242 4242 4242 4241"),  # Luhn fails
        ("4242 4242 4242", "4242 4242 4242"),  # 12 digits
        ("00340434161094012345", "00340434161094012345"),  # a 20-digit parcel number
        ("01505298760064", "01505298760064"),  # Luhn-valid parcel number starting with 0
        ("+49 151 23456789", "+49 151 23456789"),
        ("2026-11-23 10:00", "2026-11-23 10:00"),
        ("order 10023, invoice INV-2026-0290, €1,234.56", "order 10023, invoice INV-2026-0290, €1,234.56"),
        # IBANs: country code and last four stay
        (IBAN, "DE** **** **** **** **30 00"),
        ("DE89370400440532013000", "DE****************3000"),
        ("IBAN:DE89370400440532013000.", "IBAN:DE****************3000."),
        ("GB29 NWBK 6016 1331 9268 19", "GB** **** **** **** **68 19"),
        ("FR14 2004 1010 0505 0001 3M02 606", "FR** **** **** **** **** ***2 606"),
        ("NL91ABNA0417164300", "NL************4300"),
        ("de89 3704 0044 0532 0130 00, thanks", "de** **** **** **** **30 00, thanks"),
        ("ab12 DE89 3704 0044 0532 0130 00", "ab12 DE** **** **** **** **30 00"),
        # not IBANs
        ("AB12 3456 7890 1234 5678 90", "AB12 3456 7890 1234 5678 90"),  # no such country
        ("DE89 3704 0044", "DE89 3704 0044"),  # too short
        ("DE89 3704 0044 0532 0130 0012", "DE89 3704 0044 0532 0130 0012"),  # too long
        ("at20 minutes later we spoke", "at20 minutes later we spoke"),
        ("KH-X1 and KS-SECURE", "KH-X1 and KS-SECURE"),
        # codes, passwords, SSNs
        ("cvv 123", "cvv ***"),
        ("CVC: 1234", "CVC: ****"),
        ("my security code is 987", "my security code is ***"),
        ("cvv2=321", "cvv2=***"),
        ("the pin is 4821", "the pin is ****"),
        ("password: hunter2 thanks", "password: ******** thanks"),
        ("Passwort=geheim", "Passwort=********"),
        ("my password is not working", "my password is not working"),
        ("SSN 123-45-6789", "SSN ***-**-6789"),
        # kept as they are
        ("mail me at ann@example.com", "mail me at ann@example.com"),
        ("", ""),
        ("🙂🙂🙂", "🙂🙂🙂"),
    ],
)
def test_mask(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_mask_garbage() -> None:
    for value in (None, 42, 3.5, b"4242424242424242", True, ["4242424242424242"]):
        assert mask(value) is value  # only strings are masked; see mask_data for structures
    for text in ("\x00\x01\x02", " " * 50, "-" * 100, "4" * 1000, "DE" * 500, "DE89" * 200, "cvv" * 300):
        assert isinstance(mask(text), str) and len(mask(text)) == len(text)
    assert mask("4" * 1000) == "4" * 1000  # one unbroken 1000-digit run is not a card
    started = time.monotonic()
    spaced = "4 " * 20000
    masked = mask(spaced)
    assert len(masked) == len(spaced)
    assert time.monotonic() - started < 5


def test_mask_random_text_is_safe_and_keeps_its_shape() -> None:
    rng = random.Random(4242)
    alphabet = "0123456789    --ABDEGFRNLabc:=/.,"
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        masked = mask(text)
        assert len(masked) == len(text)
        assert all(a == b or b == "*" for a, b in zip(text, masked))
    cards = ["4242424242424242", "5555555555554444", "378282246310005", "6011000990139421237"]
    for _ in range(300):
        card = rng.choice(cards)
        noise = "".join(rng.choice("abc xyz.,:;!?()") for _ in range(rng.randint(0, 10)))
        text = f"{noise} {card} {noise}"
        assert card not in mask(text) and card[-4:] in mask(text)


def test_luhn() -> None:
    assert luhn_valid("4242424242424242") and luhn_valid("79927398713")
    assert not luhn_valid("4242424242424241") and not luhn_valid("") and not luhn_valid("42a2")


def test_mask_data_masks_every_string_in_a_structure() -> None:
    data = {"a": [CARD, {"b": (f"x {IBAN}", 4242424242424242)}], "n": 12, "flag": True, "card 4242424242424242": "k"}
    masked = mask_data(data)
    assert masked == {
        "a": ["**** **** **** 4242", {"b": ["x DE** **** **** **** **30 00", "************4242"]}],
        "n": 12,
        "flag": True,
        "card 4242424242424242": "k",
    }  # keys are ours, not masked
    assert data["a"][0] == CARD  # the input is untouched
    assert mask_data(1234567890123) == 1234567890123  # not Luhn-valid: a number stays a number


def test_iban_registry_lengths_are_sane() -> None:
    assert IBAN_LENGTHS["DE"] == 22 and IBAN_LENGTHS["NO"] == 15 and IBAN_LENGTHS["LC"] == 32
    assert all(15 <= n <= 34 and len(code) == 2 and code.isupper() for code, n in IBAN_LENGTHS.items())


@pytest.mark.parametrize(
    "text, expected",
    [
        # passwords given in a sentence, not only after "password:"
        ("hi, my password is hunter2 and it stopped working", "hi, my password is ******** and it stopped working"),
        ("My password was Tr0ub4dor&3.", "My password was ********"),
        ('the password is "correct horse" (with the quotes)', 'the password is "******** horse" (with the quotes)'),
        ("I set the password to Summer2026! yesterday", "I set the password to ******** yesterday"),
        ("pw = kestrel99", "pw = ********"),
        ("Mein Passwort ist Sonne123, bitte prüfen", "Mein Passwort ist ******** bitte prüfen"),
        ("new password: x", "new password: ********"),
        # describing a password, not giving it: readable
        ("I forgot my password", "I forgot my password"),
        ("the password reset link has expired", "the password reset link has expired"),
        ("my password is wrong apparently", "my password is wrong apparently"),
        ("password is too weak they say", "password is too weak they say"),
        # PINs and one-time codes
        ("my PIN number is 4711", "my PIN number is ****"),
        ("the 2FA code is 123456", "the 2FA code is ******"),
        ("Verification code: 884422 - it expired", "Verification code: ****** - it expired"),
        ("I got an SMS code 55210 but it fails", "I got an SMS code ***** but it fails"),
        ("OTP 908172", "OTP ******"),
        # credentials
        ("our key is sk_live_4eC39HqLyjWDarjtT1zdp7dc, is it leaked?", "our key is sk_live_********, is it leaked?"),
        ("bot token xoxb-1234567890-0987654321-AbCdEfGh", "bot token xoxb-********"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_********"),
        ("AKIAIOSFODNN7EXAMPLE in the logs", "AKIA******** in the logs"),
        ("Authorization: Bearer abcdefghijklmnopqrstuv", "Authorization: Bearer ********"),
        ("api key: 9f8e7d6c5b4a39281716", "api key: ********"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N", "eyJ********"),
        # what the expert needs stays
        (
            "order 10023, invoice INV-2026-0290, ann@example.com, Hub X1",
            "order 10023, invoice INV-2026-0290, ann@example.com, Hub X1",
        ),
        ("my token is expired", "my token is expired"),
    ],
)
def test_mask_widened_families(text: str, expected: str) -> None:
    assert mask(text) == expected
