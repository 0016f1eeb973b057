"""Time, one policy (`backline.utc`): aware UTC everywhere; naive means UTC; stored as naive UTC."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from backline.consult.schema import UtcDateTime
from backline.utc import as_utc, from_timestamp, iso, iso_any, naive_utc, utcnow

BERLIN_WINTER = timezone(timedelta(hours=1))


def test_naive_means_utc_never_local_time() -> None:
    assert as_utc(datetime(2026, 11, 23, 9, 0)) == datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)
    assert as_utc(datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN_WINTER)).isoformat() == "2026-11-23T09:00:00+00:00"
    assert as_utc(datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN_WINTER)).tzinfo is timezone.utc


def test_as_utc_refuses_what_is_not_a_datetime() -> None:
    with pytest.raises(TypeError):
        as_utc(date(2026, 11, 23))  # type: ignore[arg-type]


def test_what_is_stored_is_naive_utc_and_comes_back_aware() -> None:
    assert naive_utc(datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN_WINTER)) == datetime(2026, 11, 23, 9, 0)
    assert naive_utc(datetime(2026, 11, 23, 9, 0)) == datetime(2026, 11, 23, 9, 0)
    column = UtcDateTime()
    stored = column.process_bind_param(datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN_WINTER), None)
    assert stored == datetime(2026, 11, 23, 9, 0) and stored.tzinfo is None
    assert column.process_result_value(stored, None) == datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


def test_the_clock_and_epoch_seconds_are_aware_utc() -> None:
    assert utcnow().tzinfo is timezone.utc
    assert from_timestamp(0) == datetime(1970, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "value, text",
    [
        (datetime(2026, 11, 23, 9, 0), "2026-11-23T09:00:00+00:00"),
        (datetime(2026, 11, 23, 10, 0, tzinfo=BERLIN_WINTER), "2026-11-23T09:00:00+00:00"),
        (date(2026, 11, 23), "2026-11-23"),
        (1795424400, "2026-11-23T09:00:00+00:00"),
        ("2026-11-23T09:00:00Z", "2026-11-23T09:00:00+00:00"),
        ("2026-11-23T10:00:00+01:00", "2026-11-23T09:00:00+00:00"),
        ("2026-11-23 09:00", "2026-11-23T09:00:00+00:00"),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ([], None),
    ],
)
def test_iso_any_reads_what_a_transcript_may_hold(value: object, text: object) -> None:
    assert iso_any(value) == text


def test_iso_is_utc_or_none() -> None:
    assert iso(None) is None
    assert iso(datetime(2026, 11, 23, 9, 0)) == "2026-11-23T09:00:00+00:00"
