"""Domain errors. Each maps to an RFC 9457 problem with a stable type and the field at fault."""

from __future__ import annotations


class MobilendError(Exception):
    """Base domain error: `type` is a stable slug, `status` the HTTP status it maps to."""

    type: str = "error"
    title: str = "Error"
    status: int = 400

    def __init__(self, detail: str, *, field: str | None = None, rule: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.rule = rule


class ValidationFailed(MobilendError):
    """Input broke a rule: names the field and the rule."""

    type = "validation-failed"
    title = "Invalid input"
    status = 422

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


class NotFound(MobilendError):
    type = "not-found"
    title = "Not found"
    status = 404


class Conflict(MobilendError):
    """The request is valid but the resource's state forbids it (e.g. repay a closed loan)."""

    type = "conflict"
    title = "Conflict"
    status = 409


class NoRateExists(MobilendError):
    """A cash-flow stream has no (unique) annualized rate."""

    type = "no-rate"
    title = "No annualized rate exists"
    status = 422
