"""A small JSON reader that validates while it parses (pure).

It plays the part of a JSON Schema: types, required and optional fields, enums, ranges, patterns
and `additionalProperties: false` (`Obj.close()`). Every error is a `ValidationFailed` whose field
is the JSON path of the offending value, e.g. ``accounts[2].balance`` (the root is ``$``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import parse_amount

HEX64 = re.compile(r"[0-9a-f]{64}")


def load_json(path: Path) -> object:
    """Read a JSON file; numbers with a fraction become Decimal, never float."""
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValidationFailed("$", "json", f"{path.name} is not valid JSON: {exc}") from None


def _kind(value: object) -> str:
    return type(value).__name__


class Obj:
    """A JSON object at `path`; read fields with the typed getters, then call `close()`."""

    def __init__(self, data: object, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ValidationFailed(
                path or "$", "type-object", f"{path or '$'} must be an object, not {_kind(data)}"
            )
        self._data: Mapping[object, object] = data
        self.path = path
        self._seen: set[str] = set()

    def at(self, key: str) -> str:
        """The JSON path of a field of this object."""
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> object:
        """The value of a required field (present and not null)."""
        self._seen.add(key)
        value = self._data.get(key)
        if value is None:
            raise ValidationFailed(self.at(key), "required", f"{self.at(key)} is required")
        return value

    def close(self) -> None:
        """Reject fields the format does not define (`additionalProperties: false`)."""
        for key in self._data:
            if key not in self._seen:
                path = self.at(str(key))
                raise ValidationFailed(path, "unknown-field", f"{path} is not part of the format")

    def optional(self, key: str) -> bool:
        """Whether an optional field is given (absent and null mean not given)."""
        self._seen.add(key)
        return self._data.get(key) is not None

    def expect_format(self, name: str) -> None:
        """The `format` field names the format and its version, e.g. ``mobilend-bureau/1``."""
        value = self.text("format")
        if value != name:
            path = self.at("format")
            raise ValidationFailed(path, "format", f"{path} must be {name!r}, got {value!r}")

    def text(self, key: str, *, max_len: int = 200, pattern: re.Pattern[str] | None = None) -> str:
        value = self.raw(key)
        path = self.at(key)
        if not isinstance(value, str):
            raise ValidationFailed(path, "type-string", f"{path} must be a string")
        if len(value) > max_len:
            raise ValidationFailed(path, "max-length", f"{path} is longer than {max_len}")
        if pattern is not None and not pattern.fullmatch(value):
            raise ValidationFailed(path, "pattern", f"{path} must match {pattern.pattern}")
        return value

    def choice(self, key: str, choices: Iterable[str]) -> str:
        allowed = tuple(choices)
        value = self.text(key)
        if value not in allowed:
            path = self.at(key)
            raise ValidationFailed(path, "enum", f"{path} must be one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(key)
        path = self.at(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationFailed(path, "type-integer", f"{path} must be an integer")
        _check_range(path, value, minimum, maximum)
        return value

    def number(self, key: str, *, minimum: float = 0.0, maximum: float | None = None) -> float:
        value = self.raw(key)
        path = self.at(key)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise ValidationFailed(path, "type-number", f"{path} must be a number")
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise ValidationFailed(path, "finite", f"{path} must be finite")
        _check_range(path, number, minimum, maximum)
        return number

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise ValidationFailed(self.at(key), "type-boolean", f"{self.at(key)} must be boolean")
        return value

    def day(self, key: str) -> date:
        """An ISO 8601 calendar date, YYYY-MM-DD."""
        value = self.text(key, max_len=10)
        try:
            return date.fromisoformat(value)
        except ValueError:
            path = self.at(key)
            raise ValidationFailed(path, "date", f"{path} must be a date YYYY-MM-DD") from None

    def timestamp(self, key: str) -> datetime:
        """An ISO 8601 date-time with a UTC offset."""
        value = self.text(key, max_len=40)
        path = self.at(key)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(path, "date-time", f"{path} must be ISO 8601") from None
        if moment.tzinfo is None:
            raise ValidationFailed(path, "utc-offset", f"{path} must carry a UTC offset")
        return moment

    def amount(self, key: str) -> Decimal:
        """A non-negative money amount: decimal string or integer (never a binary float)."""
        value = self.raw(key)
        if isinstance(value, Decimal):  # a JSON number read by load_json
            value = str(value)
        return parse_amount(value, field=self.at(key), allow_zero=True)

    def obj(self, key: str) -> Obj:
        return Obj(self.raw(key), self.at(key))

    def items(self, key: str, *, max_items: int = 10_000) -> list[tuple[object, str]]:
        """A required array: (value, path) for each item, path like ``accounts[2]``."""
        value = self.raw(key)
        path = self.at(key)
        if not isinstance(value, list):
            raise ValidationFailed(path, "type-array", f"{path} must be an array")
        if len(value) > max_items:
            raise ValidationFailed(path, "max-items", f"{path} has more than {max_items} items")
        return [(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def objects(self, key: str, *, max_items: int = 10_000) -> list[Obj]:
        return [Obj(item, path) for item, path in self.items(key, max_items=max_items)]


def _check_range(path: str, value: float, minimum: float, maximum: float | None) -> None:
    if value < minimum:
        raise ValidationFailed(path, "minimum", f"{path} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ValidationFailed(path, "maximum", f"{path} must be at most {maximum}")
