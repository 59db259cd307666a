"""Collection conduct rules: local quiet hours across DST, limits, third parties, visits.

Every instant is written in UTC with its borrower-local reading worked out beside it:
Asia/Shanghai is UTC+8 all year; America/New_York is UTC-5 (EST) until 2026-03-08 02:00, when
clocks jump to 03:00 (EDT, UTC-4), and falls back from 02:00 EDT to 01:00 EST on 2026-11-01.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobilend.collections.conduct import (
    DEFAULT_MAX_ATTEMPTS_PER_DAY,
    TIME_RULES,
    ConductRules,
    ConductViolation,
    ContactAttempt,
    ContactRecord,
    check_contact,
    next_allowed_time,
)
from mobilend.core.errors import MobilendError, ValidationFailed

SH = "Asia/Shanghai"
NY = "America/New_York"
PHONE = "phone:7f3a"
HOME = "addr:home"
RULES = ConductRules()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def attempt(at: datetime, **overrides: Any) -> ContactAttempt:
    args: dict[str, Any] = {
        "at": at,
        "borrower_timezone": SH,
        "channel": "call",
        "contact_point": PHONE,
        "registered_addresses": frozenset({HOME}),
    }
    args.update(overrides)
    return ContactAttempt(**args)


def refused(
    item: ContactAttempt, history: list[ContactRecord] | None = None, rules: ConductRules = RULES
) -> str | None:
    """The rule that refuses the attempt, or None if it passes."""
    try:
        check_contact(item, history=history or [], rules=rules)
    except ConductViolation as exc:
        return exc.rule
    return None


def calls(*moments: datetime, point: str = PHONE, channel: str = "call") -> list[ContactRecord]:
    return [ContactRecord(at=m, contact_point=point, channel=channel) for m in moments]


# --- quiet hours ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "rule"),
    [
        (utc(2026, 3, 10, 13, 59), None),  # 21:59 in Shanghai
        (utc(2026, 3, 10, 14, 0), "quiet-hours"),  # 22:00
        (utc(2026, 3, 10, 23, 59), "quiet-hours"),  # 07:59 on 03-11
        (utc(2026, 3, 11, 0, 0), None),  # 08:00 on 03-11
        (utc(2026, 3, 10, 16, 0), "quiet-hours"),  # 00:00 (midnight)
    ],
)
def test_quiet_hours_are_22_to_08_borrower_local(at: datetime, rule: str | None) -> None:
    assert refused(attempt(at)) == rule


def test_quiet_hours_apply_to_sms_and_email_but_not_to_letters() -> None:
    at = utc(2026, 3, 10, 15, 0)  # 23:00 in Shanghai
    assert refused(attempt(at, channel="sms")) == "quiet-hours"
    assert refused(attempt(at, channel="email", contact_point="mail:9c")) == "quiet-hours"
    assert refused(attempt(at, channel="letter", contact_point=HOME)) is None


@pytest.mark.parametrize(
    ("at", "rule"),
    [
        # Before the change (EST, UTC-5): 22:00 local is 03:00 UTC.
        (utc(2026, 3, 7, 2, 59), None),  # 21:59 EST on 03-06
        (utc(2026, 3, 7, 3, 0), "quiet-hours"),  # 22:00 EST
        (utc(2026, 3, 7, 12, 0), "quiet-hours"),  # 07:00 EST
        (utc(2026, 3, 7, 12, 59), "quiet-hours"),  # 07:59 EST
        (utc(2026, 3, 7, 13, 0), None),  # 08:00 EST
        # After the change (EDT, UTC-4): the same local hours are an hour earlier in UTC.
        (utc(2026, 3, 10, 1, 59), None),  # 21:59 EDT on 03-09
        (utc(2026, 3, 10, 2, 0), "quiet-hours"),  # 22:00 EDT
        (utc(2026, 3, 10, 2, 59), "quiet-hours"),  # 22:59 EDT (02:59 UTC was allowed on 03-07)
        (utc(2026, 3, 9, 11, 59), "quiet-hours"),  # 07:59 EDT
        (utc(2026, 3, 9, 12, 0), None),  # 08:00 EDT (12:00 UTC was quiet on 03-07)
    ],
)
def test_new_york_quiet_hours_follow_the_dst_change(at: datetime, rule: str | None) -> None:
    assert refused(attempt(at, borrower_timezone=NY)) == rule


def test_attempt_time_in_any_offset_is_read_in_the_borrower_zone() -> None:
    # 2026-03-10 09:30 in Tokyo (UTC+9) is 00:30 UTC, 08:30 in Shanghai: allowed.
    assert refused(attempt(datetime(2026, 3, 10, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo")))) is None
    # 2026-03-10 06:30 in Tokyo is 05:30 in Shanghai: quiet.
    assert refused(attempt(datetime(2026, 3, 10, 6, 30, tzinfo=ZoneInfo("Asia/Tokyo")))) == (
        "quiet-hours"
    )


def test_next_allowed_time_after_a_spring_forward_night_is_9_hours_later() -> None:
    # 22:30 EST on 03-07 is 03:30 UTC on 03-08; the next 08:00 local is EDT: 12:00 UTC.
    item = attempt(utc(2026, 3, 8, 3, 30), borrower_timezone=NY)
    assert next_allowed_time(item, history=[], rules=RULES) == utc(2026, 3, 8, 12, 0)


def test_next_allowed_time_after_a_fall_back_night_is_08_00_est() -> None:
    # 22:00 EDT on 10-31 is 02:00 UTC on 11-01; 08:00 EST on 11-01 is 13:00 UTC.
    item = attempt(utc(2026, 11, 1, 2, 0), borrower_timezone=NY)
    assert next_allowed_time(item, history=[], rules=RULES) == utc(2026, 11, 1, 13, 0)


def test_quiet_end_skipped_by_the_spring_jump_ends_at_the_jump() -> None:
    # Quiet until 02:30, a time New York skips on 2026-03-08 (01:59:59 EST -> 03:00 EDT).
    rules = ConductRules(quiet_end=time(2, 30))
    item = attempt(utc(2026, 3, 8, 6, 0), borrower_timezone=NY)  # 01:00 EST: quiet
    assert refused(item, rules=rules) == "quiet-hours"
    jump = utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first instant after 02:30 on the clock
    assert next_allowed_time(item, history=[], rules=rules) == jump
    assert refused(attempt(jump, borrower_timezone=NY), rules=rules) is None
    before = attempt(jump - timedelta(seconds=1), borrower_timezone=NY)  # 01:59:59 EST
    assert refused(before, rules=rules) == "quiet-hours"


def test_repeated_hour_on_the_fall_back_night_is_read_by_the_wall_clock() -> None:
    # Quiet until 01:30. On 2026-11-01 New York reads 01:00-01:59 twice: EDT, then EST.
    rules = ConductRules(quiet_end=time(1, 30))
    first_0145 = attempt(utc(2026, 11, 1, 5, 45), borrower_timezone=NY)  # 01:45 EDT
    second_0100 = attempt(utc(2026, 11, 1, 6, 0), borrower_timezone=NY)  # 01:00 EST
    assert refused(first_0145, rules=rules) is None
    assert refused(second_0100, rules=rules) == "quiet-hours"
    # 01:30 EST is 06:30 UTC.
    assert next_allowed_time(second_0100, history=[], rules=rules) == utc(2026, 11, 1, 6, 30)


# --- attempts per day and gaps ----------------------------------------------------------------


MAX3 = ConductRules(max_attempts_per_day=3)
# Three calls on 2026-03-10 in Shanghai at 09:00, 11:00 and 14:00 local.
THREE_CALLS = calls(utc(2026, 3, 10, 1, 0), utc(2026, 3, 10, 3, 0), utc(2026, 3, 10, 6, 0))


def test_fourth_attempt_of_a_day_is_refused() -> None:
    fourth = attempt(utc(2026, 3, 10, 8, 0))  # 16:00 local
    assert refused(attempt(utc(2026, 3, 10, 8, 0)), THREE_CALLS[:2], MAX3) is None
    assert refused(fourth, THREE_CALLS, MAX3) == "daily-limit"
    with pytest.raises(ConductViolation) as caught:
        check_contact(fourth, history=THREE_CALLS, rules=MAX3)
    assert caught.value.field == "contact_point"
    assert "3 attempts to this contact on 2026-03-10" in caught.value.detail
    # An SMS to the same number counts too; another number does not.
    assert refused(attempt(utc(2026, 3, 10, 8, 0), channel="sms"), THREE_CALLS, MAX3) == (
        "daily-limit"
    )
    other = attempt(utc(2026, 3, 10, 8, 0), contact_point="phone:other")
    assert refused(other, THREE_CALLS, MAX3) is None
    assert refused(attempt(utc(2026, 3, 11, 0, 0)), THREE_CALLS, MAX3) is None  # 08:00 next day


def test_letters_do_not_count_towards_the_daily_limit() -> None:
    letters = calls(*(utc(2026, 3, 10, h, 0) for h in (1, 2, 3)), point=HOME, channel="letter")
    visit = attempt(utc(2026, 3, 10, 3, 0), channel="visit", contact_point=HOME)  # 11:00 local
    assert refused(visit, letters, MAX3) is None
    assert refused(
        visit, calls(*(utc(2026, 3, 10, h, 0) for h in (0, 1, 2)), point=HOME), MAX3
    ) == ("daily-limit")


def test_default_limit_is_six_a_day() -> None:
    assert DEFAULT_MAX_ATTEMPTS_PER_DAY == 6
    six = calls(*(utc(2026, 3, 10, h, 0) for h in range(1, 7)))  # 09:00-14:00 local
    assert refused(attempt(utc(2026, 3, 10, 8, 0)), six[:5]) is None
    assert refused(attempt(utc(2026, 3, 10, 8, 0)), six) == "daily-limit"


def test_day_is_the_borrower_local_day_not_the_utc_day() -> None:
    # New York, 2026-03-10 (EDT): 18:00, 19:00 and 20:30 local; the last is 03-11 in UTC.
    history = calls(utc(2026, 3, 10, 22, 0), utc(2026, 3, 10, 23, 0), utc(2026, 3, 11, 0, 30))
    fourth = attempt(utc(2026, 3, 11, 1, 0), borrower_timezone=NY)  # 21:00 EDT on 03-10
    assert refused(fourth, history, MAX3) == "daily-limit"
    # Next local day starts 00:00 EDT (04:00 UTC), still quiet: 08:00 EDT is 12:00 UTC.
    assert next_allowed_time(fourth, history=history, rules=MAX3) == utc(2026, 3, 11, 12, 0)


def test_minimum_gap_between_attempts_to_one_contact() -> None:
    rules = ConductRules(min_gap_minutes=60)
    history = calls(utc(2026, 3, 10, 2, 0))  # 10:00 local
    assert refused(attempt(utc(2026, 3, 10, 2, 59)), history, rules) == "min-gap"
    assert refused(attempt(utc(2026, 3, 10, 3, 0)), history, rules) is None
    assert (
        refused(attempt(utc(2026, 3, 10, 2, 30), contact_point="phone:other"), history, rules)
        is None
    )
    late = next_allowed_time(attempt(utc(2026, 3, 10, 2, 30)), history=history, rules=rules)
    assert late == utc(2026, 3, 10, 3, 0)
    assert refused(attempt(utc(2026, 3, 10, 2, 30)), history, RULES) is None  # no gap by default


# --- who may be contacted ---------------------------------------------------------------------


NOON = utc(2026, 3, 10, 4, 0)  # 12:00 in Shanghai


def test_third_party_refused_by_default() -> None:
    item = attempt(NOON, relation="third_party", purpose="locate", contact_point="phone:friend")
    with pytest.raises(ConductViolation) as caught:
        check_contact(item, history=[], rules=RULES)
    assert caught.value.rule == "no-third-party"
    assert caught.value.field == "relation"
    assert next_allowed_time(item, history=[], rules=RULES) is None


def test_third_party_only_to_locate_when_the_lender_allows_it() -> None:
    rules = ConductRules(third_parties_to_locate=True)
    other = {"relation": "third_party", "contact_point": "phone:friend"}
    assert refused(attempt(NOON, **other), rules=rules) == "locate-only"
    assert refused(attempt(NOON, purpose="locate", **other), rules=rules) is None


def test_emergency_contact_needs_consent_and_a_locate_purpose() -> None:
    contact = {"relation": "emergency_contact", "contact_point": "phone:sister"}
    assert refused(attempt(NOON, purpose="locate", **contact)) == "contact-consent"
    assert refused(attempt(NOON, **contact, contact_consented=True)) == "locate-only"
    ok = attempt(NOON, purpose="locate", contact_consented=True, **contact)
    assert refused(ok) is None
    assert refused(ok, rules=ConductRules(emergency_contacts_to_locate=False)) == "no-third-party"


def test_do_not_contact_allows_letters_only() -> None:
    assert refused(attempt(NOON, do_not_contact=True)) == "do-not-contact"
    visit = attempt(NOON, channel="visit", contact_point=HOME, do_not_contact=True)
    assert refused(visit) == "do-not-contact"
    assert next_allowed_time(visit, history=[], rules=RULES) is None
    letter = attempt(NOON, channel="letter", contact_point=HOME, do_not_contact=True)
    assert refused(letter) is None


def test_channel_switched_off_by_the_lender() -> None:
    rules = ConductRules(channels=frozenset({"call", "sms", "letter"}))
    with pytest.raises(ConductViolation) as caught:
        check_contact(attempt(NOON, channel="visit", contact_point=HOME), history=[], rules=rules)
    assert (caught.value.rule, caught.value.field) == ("channel-not-allowed", "channel")
    assert "allowed: call, sms, letter" in caught.value.detail


def test_first_rule_broken_is_reported() -> None:
    # A third party at 23:00 local: refused as a third party, not for the hour.
    item = attempt(utc(2026, 3, 10, 15, 0), relation="third_party", contact_point="phone:x")
    assert refused(item) == "no-third-party"


# --- visits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "rule"),
    [
        (utc(2026, 3, 10, 0, 30), "visit-hours"),  # 08:30: not quiet, but before 09:00
        (utc(2026, 3, 10, 1, 0), None),  # 09:00
        (utc(2026, 3, 10, 9, 59), None),  # 17:59
        (utc(2026, 3, 10, 10, 0), "visit-hours"),  # 18:00
        (utc(2026, 3, 10, 15, 0), "quiet-hours"),  # 23:00
    ],
)
def test_visits_only_in_the_daytime(at: datetime, rule: str | None) -> None:
    assert refused(attempt(at, channel="visit", contact_point=HOME)) == rule


def test_visits_only_at_a_registered_address() -> None:
    item = attempt(NOON, channel="visit", contact_point="addr:office")
    assert refused(item) == "registered-address"
    assert next_allowed_time(item, history=[], rules=RULES) is None


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 3, 10, 0, 30), utc(2026, 3, 10, 1, 0)),  # 08:30 -> 09:00 the same day
        (utc(2026, 3, 10, 10, 30), utc(2026, 3, 11, 1, 0)),  # 18:30 -> 09:00 the next day
        (utc(2026, 3, 10, 15, 0), utc(2026, 3, 11, 1, 0)),  # 23:00 -> 08:00 -> 09:00
        (utc(2026, 3, 10, 4, 0), utc(2026, 3, 10, 4, 0)),  # noon: at once
    ],
)
def test_next_allowed_visit(at: datetime, expected: datetime) -> None:
    item = attempt(at, channel="visit", contact_point=HOME)
    assert next_allowed_time(item, history=[], rules=RULES) == expected


# --- errors and settings ----------------------------------------------------------------------


def test_violation_is_a_422_problem() -> None:
    with pytest.raises(ConductViolation) as caught:
        check_contact(attempt(utc(2026, 3, 10, 14, 0)), history=[], rules=RULES)
    error = caught.value
    assert isinstance(error, MobilendError)
    assert (error.status, error.type, error.rule, error.field) == (
        422,
        "conduct-violation",
        "quiet-hours",
        "at",
    )
    assert error.detail == "22:00 in Asia/Shanghai is within quiet hours 22:00-08:00"


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"at": datetime(2026, 3, 10, 12, 0)}, "at", "timezone-aware"),
        ({"borrower_timezone": "Mars/Olympus"}, "borrower_timezone", "iana-timezone"),
        ({"channel": "whatsapp"}, "channel", "one-of"),
        ({"relation": "neighbour"}, "relation", "one-of"),
        ({"purpose": "shame"}, "purpose", "one-of"),
        ({"contact_point": " "}, "contact_point", "required"),
    ],
)
def test_malformed_attempts(overrides: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        attempt(**{"at": NOON, **overrides})
    assert (caught.value.field, caught.value.rule) == (field, rule)


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"channels": frozenset({"fax"})}, "channels", "one-of"),
        ({"quiet_start": time(8), "quiet_end": time(8)}, "quiet_end", "non-empty"),
        ({"visit_start": time(7), "visit_end": time(12)}, "visit_start", "daytime"),
        ({"visit_start": time(20), "visit_end": time(23)}, "visit_start", "daytime"),
        ({"visit_start": time(12), "visit_end": time(12)}, "visit_end", "after-start"),
        ({"max_attempts_per_day": 0}, "max_attempts_per_day", "range"),
        ({"min_gap_minutes": 0}, "min_gap_minutes", "range"),
    ],
)
def test_invalid_rules(overrides: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ConductRules(**overrides)
    assert (caught.value.field, caught.value.rule) == (field, rule)


# --- properties -------------------------------------------------------------------------------


ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney"]
INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@given(at=INSTANTS, zone=st.sampled_from(ZONES))
def test_a_call_passes_exactly_when_the_local_hour_is_8_to_21(at: datetime, zone: str) -> None:
    item = attempt(at, borrower_timezone=zone)
    local_hour = at.astimezone(item.zone).hour
    assert (refused(item) is None) == (8 <= local_hour < 22)


@settings(max_examples=200)
@given(
    at=INSTANTS,
    zone=st.sampled_from(ZONES),
    minutes_before=st.lists(st.integers(0, 2000), max_size=6),
    limit=st.integers(1, 4),
    gap=st.one_of(st.none(), st.integers(30, 180)),
    channel=st.sampled_from(["call", "visit"]),
)
def test_next_allowed_time_is_compliant_and_earliest(
    at: datetime,
    zone: str,
    minutes_before: list[int],
    limit: int,
    gap: int | None,
    channel: str,
) -> None:
    rules = ConductRules(max_attempts_per_day=limit, min_gap_minutes=gap)
    history = calls(*(at - timedelta(minutes=m) for m in minutes_before), point=HOME)
    item = attempt(at, borrower_timezone=zone, channel=channel, contact_point=HOME)
    found = next_allowed_time(item, history=history, rules=rules)
    assert found is not None and found >= at
    assert refused(replace(item, at=found), history, rules) is None
    if found > at:  # the second before still broke a time rule
        assert refused(replace(item, at=found - timedelta(seconds=1)), history, rules) in TIME_RULES
