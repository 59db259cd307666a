"""Collection conduct: may an agent make this contact now? (pure)

`check_contact` looks at one proposed contact, the borrower's contact history and the lender's
rules, and raises `ConductViolation` for the first rule broken. The rules, checked in this
order (docs/collections.md, "Conduct rules", explains each):

1. channel-not-allowed: the channel is one the lender has switched on.
2. do-not-contact: a borrower flagged do-not-contact (complaint, legal representation) may
   only be sent letters.
3. no-third-party / contact-consent / locate-only: only the borrower is contacted about the
   debt. An emergency contact (if the rules allow) and an unrelated third party (only if the
   rules allow; refused by default) may be contacted to locate the borrower, never to
   collect, and an emergency contact only once they have consented to be contacted.
4. registered-address: visits only at one of the borrower's registered addresses.
5. quiet-hours: no call, SMS, e-mail or visit in [22:00, 08:00) borrower-local time.
6. visit-hours: visits only in the daytime window, [09:00, 18:00) local by default.
7. daily-limit: at most `max_attempts_per_day` attempts to one contact point (a phone number,
   e-mail or address, by its blind-index id) per borrower-local calendar day.
8. min-gap: optionally, at least `min_gap_minutes` between two attempts to one contact point.

A letter is posted, not delivered at a set moment: rules 5-8 do not apply to letters and
letters do not count towards them. Local time comes from the borrower's IANA time zone, so a
zone with daylight saving is handled by its own clock (quiet hours are 9 real hours long on a
spring-forward night in New York, 11 on a fall-back night).

`next_allowed_time` tells an agent the earliest instant at which the same contact would pass,
or None when only a change of channel, person or flag could make it pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mobilend.core.errors import MobilendError, ValidationFailed

CHANNELS = ("call", "sms", "visit", "letter", "email")
RELATIONS = ("borrower", "emergency_contact", "third_party")
PURPOSES = ("collect", "locate")
TIMED_CHANNELS = frozenset({"call", "sms", "visit", "email"})  # letters are exempt from 5-8
TIME_RULES = frozenset({"quiet-hours", "visit-hours", "daily-limit", "min-gap"})
DEFAULT_MAX_ATTEMPTS_PER_DAY = 6  # "at most 6 unanswered calls a day" (FACTS.md, 2026 guideline)


class ConductViolation(MobilendError):
    """A contact would break a conduct rule: `rule` names it, `field` the attempt's field.

    Status 422: the request is well formed but the rules refuse it (the same status for every
    conduct rule, so a client handles one kind of refusal).
    """

    type = "conduct-violation"
    title = "Contact not allowed"
    status = 422

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


@dataclass(frozen=True)
class ConductRules:
    """The lender's (or product's) conduct settings; the defaults are the strict reading.

    Times are borrower-local wall-clock times. Quiet hours are [quiet_start, quiet_end) and may
    wrap midnight; the visit window [visit_start, visit_end) may not wrap midnight and must lie
    outside quiet hours.
    """

    channels: frozenset[str] = frozenset(CHANNELS)
    quiet_start: time = time(22, 0)
    quiet_end: time = time(8, 0)
    visit_start: time = time(9, 0)
    visit_end: time = time(18, 0)
    max_attempts_per_day: int = DEFAULT_MAX_ATTEMPTS_PER_DAY
    min_gap_minutes: int | None = None
    emergency_contacts_to_locate: bool = True
    third_parties_to_locate: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.channels, frozenset) or not self.channels <= set(CHANNELS):
            raise ValidationFailed("channels", "one-of", f"channels are a subset of {CHANNELS}")
        for name in ("quiet_start", "quiet_end", "visit_start", "visit_end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValidationFailed(name, "local-time", f"{name} is a naive local time")
        if self.quiet_start == self.quiet_end:
            raise ValidationFailed("quiet_end", "non-empty", "quiet hours start and end differ")
        if not self.visit_start < self.visit_end:
            raise ValidationFailed(
                "visit_end", "after-start", "the visit window ends after it starts"
            )
        if _overlaps(self.visit_start, self.visit_end, self.quiet_start, self.quiet_end):
            raise ValidationFailed("visit_start", "daytime", "the visit window is in quiet hours")
        _check_int("max_attempts_per_day", self.max_attempts_per_day, 1, 50)
        if self.min_gap_minutes is not None:
            _check_int("min_gap_minutes", self.min_gap_minutes, 1, 24 * 60)
        for name in ("emergency_contacts_to_locate", "third_parties_to_locate"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationFailed(name, "boolean", f"{name} is true or false")

    @property
    def min_gap(self) -> timedelta:
        return timedelta(minutes=self.min_gap_minutes or 0)


@dataclass(frozen=True)
class ContactRecord:
    """A contact attempt already made (answered or not) to one of the borrower's contact points."""

    at: datetime
    contact_point: str
    channel: str

    def __post_init__(self) -> None:
        _check_aware("at", self.at)
        _check_one_of("channel", self.channel, CHANNELS)
        _check_text("contact_point", self.contact_point)


@dataclass(frozen=True)
class ContactAttempt:
    """A contact an agent (or the dialler) proposes to make.

    - at: when, timezone-aware; borrower_timezone: the borrower's IANA zone ("Asia/Shanghai").
    - contact_point: blind-index id of the phone number, e-mail or address contacted.
    - relation: whose contact point it is; purpose: "collect" the debt or "locate" the borrower.
    - contact_consented: an emergency contact has agreed to be contacted (a consent record).
    - do_not_contact: the borrower's flag (complaint, legal representation): letters only.
    - registered_addresses: blind-index ids of the borrower's registered addresses.
    """

    at: datetime
    borrower_timezone: str
    channel: str
    contact_point: str
    relation: str = "borrower"
    purpose: str = "collect"
    contact_consented: bool = False
    do_not_contact: bool = False
    registered_addresses: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_aware("at", self.at)
        _zone(self.borrower_timezone)
        _check_one_of("channel", self.channel, CHANNELS)
        _check_one_of("relation", self.relation, RELATIONS)
        _check_one_of("purpose", self.purpose, PURPOSES)
        _check_text("contact_point", self.contact_point)
        if not isinstance(self.registered_addresses, frozenset):
            raise ValidationFailed(
                "registered_addresses", "frozenset", "registered_addresses is a frozenset of ids"
            )

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.borrower_timezone)

    @property
    def local(self) -> datetime:
        return self.at.astimezone(self.zone)


def check_contact(
    attempt: ContactAttempt, *, history: Sequence[ContactRecord], rules: ConductRules
) -> None:
    """Raise `ConductViolation` for the first conduct rule the attempt breaks; else None."""
    violation = _first_violation(attempt, history, rules)
    if violation is not None:
        raise violation


def next_allowed_time(
    attempt: ContactAttempt, *, history: Sequence[ContactRecord], rules: ConductRules
) -> datetime | None:
    """The earliest instant (UTC) at or after `attempt.at` when the same contact would pass.

    None if a rule that waiting cannot cure blocks it (channel, do-not-contact, relation,
    address). The history is taken as it is: attempts made meanwhile are not foreseen.
    """
    at = attempt.at.astimezone(UTC)
    latest = max([at, *(record.at for record in history)])
    horizon = latest + rules.min_gap + timedelta(days=3)
    while at <= horizon:
        candidate = replace(attempt, at=at)
        violation = _first_violation(candidate, history, rules)
        if violation is None:
            return at
        if violation.rule not in TIME_RULES:
            return None
        at = _cure(violation.rule, candidate, history, rules)
    return None  # pragma: no cover - the visit window lies outside quiet hours, so unreachable


def _first_violation(
    attempt: ContactAttempt, history: Sequence[ContactRecord], rules: ConductRules
) -> ConductViolation | None:
    for check in (_channel, _do_not_contact, _relation, _address, _quiet, _visit_hours):
        violation = check(attempt, rules)
        if violation is not None:
            return violation
    return _daily_limit(attempt, history, rules) or _min_gap(attempt, history, rules)


def _channel(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    if attempt.channel in rules.channels:
        return None
    allowed = ", ".join(c for c in CHANNELS if c in rules.channels) or "none"
    return ConductViolation(
        "channel", "channel-not-allowed", f"channel {attempt.channel} is off (allowed: {allowed})"
    )


def _do_not_contact(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    if not attempt.do_not_contact or attempt.channel == "letter":
        return None
    return ConductViolation(
        "channel",
        "do-not-contact",
        f"the borrower is flagged do-not-contact: letters only, not {attempt.channel}",
    )


def _relation(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    if attempt.relation == "borrower":
        return None
    allowed = (
        rules.emergency_contacts_to_locate
        if attempt.relation == "emergency_contact"
        else rules.third_parties_to_locate
    )
    who = attempt.relation.replace("_", " ")
    if not allowed:
        return ConductViolation(
            "relation", "no-third-party", f"the lender's rules do not allow contacting a {who}"
        )
    if attempt.purpose != "locate":
        return ConductViolation(
            "purpose", "locate-only", f"a {who} may only be contacted to locate the borrower"
        )
    if attempt.relation == "emergency_contact" and not attempt.contact_consented:
        return ConductViolation(
            "contact_consented",
            "contact-consent",
            "the emergency contact has not consented to be contacted",
        )
    return None


def _address(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    if attempt.channel != "visit" or attempt.contact_point in attempt.registered_addresses:
        return None
    return ConductViolation(
        "contact_point", "registered-address", "visits only at a registered address"
    )


def _quiet(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    if attempt.channel not in TIMED_CHANNELS:
        return None
    local = attempt.local
    if not _in_window(local.time(), rules.quiet_start, rules.quiet_end):
        return None
    return ConductViolation(
        "at",
        "quiet-hours",
        f"{local:%H:%M} in {attempt.borrower_timezone} is within quiet hours "
        f"{rules.quiet_start:%H:%M}-{rules.quiet_end:%H:%M}",
    )


def _visit_hours(attempt: ContactAttempt, rules: ConductRules) -> ConductViolation | None:
    local = attempt.local
    if attempt.channel != "visit" or rules.visit_start <= local.time() < rules.visit_end:
        return None
    return ConductViolation(
        "at",
        "visit-hours",
        f"visits only {rules.visit_start:%H:%M}-{rules.visit_end:%H:%M} local time, "
        f"not {local:%H:%M} in {attempt.borrower_timezone}",
    )


def _same_point(attempt: ContactAttempt, history: Sequence[ContactRecord]) -> list[datetime]:
    return [
        record.at
        for record in history
        if record.contact_point == attempt.contact_point and record.channel in TIMED_CHANNELS
    ]


def _local_day(attempt: ContactAttempt, moment: datetime) -> date:
    return moment.astimezone(attempt.zone).date()


def _daily_limit(
    attempt: ContactAttempt, history: Sequence[ContactRecord], rules: ConductRules
) -> ConductViolation | None:
    if attempt.channel not in TIMED_CHANNELS:
        return None
    day = _local_day(attempt, attempt.at)
    made = sum(1 for at in _same_point(attempt, history) if _local_day(attempt, at) == day)
    if made < rules.max_attempts_per_day:
        return None
    return ConductViolation(
        "contact_point",
        "daily-limit",
        f"{made} attempts to this contact on {day.isoformat()} (borrower-local); "
        f"the limit is {rules.max_attempts_per_day} a day",
    )


def _too_close(
    attempt: ContactAttempt, history: Sequence[ContactRecord], rules: ConductRules
) -> list[datetime]:
    gap = rules.min_gap
    return [at for at in _same_point(attempt, history) if abs(attempt.at - at) < gap]


def _min_gap(
    attempt: ContactAttempt, history: Sequence[ContactRecord], rules: ConductRules
) -> ConductViolation | None:
    if rules.min_gap_minutes is None or attempt.channel not in TIMED_CHANNELS:
        return None
    if not _too_close(attempt, history, rules):
        return None
    return ConductViolation(
        "at",
        "min-gap",
        f"another attempt to this contact is less than {rules.min_gap_minutes} minutes away",
    )


def _cure(
    rule: str, attempt: ContactAttempt, history: Sequence[ContactRecord], rules: ConductRules
) -> datetime:
    """The next instant worth trying after `attempt.at` fails the time rule `rule`."""
    at, zone = attempt.at.astimezone(UTC), attempt.zone
    if rule == "quiet-hours":
        return _next_wall_time(at, rules.quiet_end, zone)
    if rule == "visit-hours":
        return _next_wall_time(at, rules.visit_start, zone)
    if rule == "daily-limit":
        return _next_wall_time(at, time(0, 0), zone)
    return max(_too_close(attempt, history, rules)).astimezone(UTC) + rules.min_gap


def _next_wall_time(after: datetime, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant after `after` when the local clock reads `wall` (UTC).

    If a forward jump skips `wall` that day, the instant of the jump (the first moment the
    clock reads later than `wall`); if a backward jump repeats it, each reading counts.
    """
    day = after.astimezone(zone).date()
    candidates = [
        moment
        for offset in range(3)
        for moment in _wall_instants(day + timedelta(days=offset), wall, zone)
        if moment > after
    ]
    return min(candidates)


def _wall_instants(day: date, wall: time, zone: ZoneInfo) -> list[datetime]:
    naive = datetime.combine(day, wall)
    readings = [naive.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    real = [m for m in readings if m.astimezone(zone).replace(tzinfo=None) == naive]
    if real:
        return sorted(set(real))
    return [_jump_between(min(readings), max(readings), zone)]


def _jump_between(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The instant in (low, high] where the zone's offset changes to the one at `high`."""
    target = high.astimezone(zone).utcoffset()
    lo, hi = int(low.timestamp()), int(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _in_window(moment: time, start: time, end: time) -> bool:
    """Is `moment` in [start, end), a window that wraps midnight when start > end?"""
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


def _overlaps(start: time, end: time, quiet_start: time, quiet_end: time) -> bool:
    """Does [start, end) (not wrapping) meet the quiet window [quiet_start, quiet_end)?"""
    if quiet_start < quiet_end:
        return start < quiet_end and quiet_start < end
    return end > quiet_start or start < quiet_end


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValidationFailed("borrower_timezone", "iana-timezone", "an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            "borrower_timezone", "iana-timezone", f"unknown IANA time zone {name!r}"
        ) from None


def _check_aware(field: str, value: object) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValidationFailed(field, "timezone-aware", f"{field} must be a timezone-aware time")


def _check_one_of(field: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationFailed(field, "one-of", f"{field} must be one of {allowed}")


def _check_text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(field, "required", f"{field} is a non-empty id")


def _check_int(field: str, value: object, low: int, high: int) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
        raise ValidationFailed(field, "range", f"{field} must be a whole number {low}-{high}")
