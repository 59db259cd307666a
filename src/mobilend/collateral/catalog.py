"""The device catalog: models, storage variants and launch prices, IMEI and TAC checks (pure).

A `DeviceModel` is one phone model (``apple-iphone-15``) with its storage `Variant`s, each with
its launch price in the model's currency, the type allocation codes (TACs: the first 8 digits of
an IMEI) known for it, the next model of the same line (``successor_key``) and a pricing tier.

Catalog CSV: one row per model and storage variant, columns ``key, brand, model, release_date,
currency, storage_gb, launch_price, tacs, successor_key, tier``. Rows of the same key are merged;
their model columns (all but ``storage_gb`` and ``launch_price``) must be identical. ``tacs`` is
a semicolon-separated list of 8-digit TACs and may be empty. Row numbers in errors are line
numbers in the file (the header is row 1); the field is ``"row {n}: {column}"``.

IMEI: 15 digits, the last a Luhn check digit (python-stdnum). Spaces and dashes are ignored.
A 16-digit IMEISV (software version instead of a check digit) is refused: ask for the IMEI
(``*#06#`` shows both on most phones).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from importlib import resources

from stdnum import imei as stdnum_imei
from stdnum import luhn

from mobilend.core.errors import ValidationFailed
from mobilend.core.money import parse_amount

TIERS = ("flagship", "midrange", "budget", "foldable")
COLUMNS = (
    "key",
    "brand",
    "model",
    "release_date",
    "currency",
    "storage_gb",
    "launch_price",
    "tacs",
    "successor_key",
    "tier",
)
# Columns that describe the model, not the variant: equal on every row of one key.
MODEL_COLUMNS = ("brand", "model", "release_date", "currency", "tacs", "successor_key", "tier")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_TAC = re.compile(r"^[0-9]{8}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True, slots=True)
class Variant:
    storage_gb: int
    launch_price: Decimal


@dataclass(frozen=True, slots=True)
class DeviceModel:
    key: str  # slug, e.g. "apple-iphone-15"
    brand: str
    model: str
    release_date: date
    currency: str
    variants: tuple[Variant, ...]  # sorted by storage, smallest (the base variant) first
    tacs: tuple[str, ...]
    successor_key: str | None
    tier: str  # one of TIERS

    @property
    def base_variant(self) -> Variant:
        return self.variants[0]

    def variant(self, storage_gb: int) -> Variant:
        """The variant with this storage, or ValidationFailed("storage_gb", "unknown-variant")."""
        for variant in self.variants:
            if variant.storage_gb == storage_gb:
                return variant
        known = ", ".join(str(v.storage_gb) for v in self.variants)
        raise ValidationFailed(
            "storage_gb",
            "unknown-variant",
            f"{self.key} has no {storage_gb} GB variant (known: {known})",
        )


# --- IMEI and TAC -------------------------------------------------------------------------


def validate_imei(imei: str, *, field: str = "imei") -> str:
    """Return the 15-digit IMEI, or raise ValidationFailed naming `field` and the rule broken."""
    if not isinstance(imei, str):
        raise ValidationFailed(field, "imei-format", f"{field} must be a string of digits")
    number = stdnum_imei.compact(imei)
    if not number.isdigit() or not number.isascii():
        raise ValidationFailed(field, "imei-format", f"{field} must contain only digits")
    if len(number) == 16:
        raise ValidationFailed(
            field,
            "imeisv-not-accepted",
            f"{field} has 16 digits: that is an IMEISV; give the 15-digit IMEI",
        )
    if len(number) != 15:
        raise ValidationFailed(
            field, "imei-format", f"{field} must have 15 digits, got {len(number)}"
        )
    if not luhn.is_valid(number):
        raise ValidationFailed(field, "imei-checksum", f"{field} fails the Luhn check digit")
    return number


def tac_of(imei: str) -> str:
    """The type allocation code: the first 8 digits of a valid IMEI."""
    return validate_imei(imei)[:8]


def match_tac(models: Iterable[DeviceModel], imei: str) -> DeviceModel | None:
    """The catalog model whose TAC list holds this IMEI's TAC, or None."""
    tac = tac_of(imei)
    return next((model for model in models if tac in model.tacs), None)


def check_imei_matches_model(model: DeviceModel, imei: str) -> None:
    """Refuse an IMEI whose TAC is not one of the model's. A model without TACs accepts any."""
    tac = tac_of(imei)
    if model.tacs and tac not in model.tacs:
        raise ValidationFailed(
            "imei", "tac-mismatch", f"IMEI TAC {tac} does not belong to {model.model}"
        )


# --- catalog CSV --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ModelFields:
    brand: str
    model: str
    release_date: date
    currency: str
    tacs: tuple[str, ...]
    successor_key: str | None
    tier: str


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    key: str
    fields: _ModelFields
    variant: Variant


def parse_catalog_csv(text: str) -> list[DeviceModel]:
    """Parse a catalog CSV (see the module docstring) into models, in order of first appearance."""
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise ValidationFailed(
            "header", "missing-column", f"catalog CSV lacks column(s): {', '.join(missing)}"
        )
    rows: list[_Row] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        record = {
            name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)
        }
        rows.append(_parse_row(reader.line_num, record))
    models = _merge(rows)
    _check_links(models, rows)
    return list(models.values())


def _err(line: int, column: str, rule: str, detail: str) -> ValidationFailed:
    return ValidationFailed(f"row {line}: {column}", rule, f"row {line}, {column}: {detail}")


def _parse_row(line: int, record: dict[str, str]) -> _Row:
    key = record["key"]
    if not _SLUG.match(key):
        raise _err(line, "key", "slug", f"{key!r} is not a lowercase slug like apple-iphone-15")
    for column in ("brand", "model"):
        if not record[column]:
            raise _err(line, column, "required", "must not be empty")
    try:
        released = date.fromisoformat(record["release_date"])
    except ValueError:
        raise _err(line, "release_date", "date", "must be a date YYYY-MM-DD") from None
    if not _CURRENCY.match(record["currency"]):
        raise _err(line, "currency", "currency", "must be a 3-letter ISO code like CNY")
    storage = record["storage_gb"]
    if not storage.isdigit() or not storage.isascii() or int(storage) <= 0:
        raise _err(line, "storage_gb", "positive-integer", "must be a positive whole number")
    price = parse_amount(record["launch_price"], field=f"row {line}: launch_price")
    tacs = tuple(tac.strip() for tac in record["tacs"].split(";") if tac.strip())
    for tac in tacs:
        if not _TAC.match(tac):
            raise _err(line, "tacs", "tac-format", f"{tac!r} is not an 8-digit TAC")
    if len(set(tacs)) != len(tacs):
        raise _err(line, "tacs", "duplicate-tac", "lists a TAC twice")
    successor = record["successor_key"] or None
    if successor is not None and not _SLUG.match(successor):
        raise _err(line, "successor_key", "slug", f"{successor!r} is not a slug")
    if record["tier"] not in TIERS:
        raise _err(line, "tier", "unknown-tier", f"must be one of {', '.join(TIERS)}")
    fields = _ModelFields(
        record["brand"],
        record["model"],
        released,
        record["currency"],
        tacs,
        successor,
        record["tier"],
    )
    return _Row(line, key, fields, Variant(int(storage), price))


def _merge(rows: Sequence[_Row]) -> dict[str, DeviceModel]:
    first: dict[str, _Row] = {}
    variants: dict[str, list[Variant]] = {}
    for row in rows:
        seen = first.setdefault(row.key, row)
        for column in MODEL_COLUMNS:
            if getattr(row.fields, column) != getattr(seen.fields, column):
                raise _err(
                    row.line,
                    column,
                    "inconsistent-model",
                    f"differs from row {seen.line} of the same key {row.key}",
                )
        found = variants.setdefault(row.key, [])
        if any(v.storage_gb == row.variant.storage_gb for v in found):
            raise _err(
                row.line, "storage_gb", "duplicate-variant", f"{row.key} repeats this storage"
            )
        found.append(row.variant)
    return {
        key: DeviceModel(
            key=key,
            brand=row.fields.brand,
            model=row.fields.model,
            release_date=row.fields.release_date,
            currency=row.fields.currency,
            variants=tuple(sorted(variants[key], key=lambda v: v.storage_gb)),
            tacs=row.fields.tacs,
            successor_key=row.fields.successor_key,
            tier=row.fields.tier,
        )
        for key, row in first.items()
    }


def _check_links(models: dict[str, DeviceModel], rows: Sequence[_Row]) -> None:
    """Each TAC belongs to one model; each successor exists, is another model and is newer."""
    first_line = {row.key: row.line for row in reversed(rows)}
    owner: dict[str, str] = {}
    for model in models.values():
        line = first_line[model.key]
        for tac in model.tacs:
            other = owner.setdefault(tac, model.key)
            if other != model.key:
                raise _err(line, "tacs", "duplicate-tac", f"TAC {tac} is also listed for {other}")
        successor = model.successor_key
        if successor is None:
            continue
        if successor == model.key:
            raise _err(line, "successor_key", "self-successor", "a model cannot succeed itself")
        if successor not in models:
            raise _err(line, "successor_key", "unknown-model", f"{successor} is not in the catalog")
        if models[successor].release_date <= model.release_date:
            raise _err(
                line,
                "successor_key",
                "successor-not-newer",
                f"{successor} was released on or before {model.key}",
            )


@lru_cache(maxsize=1)
def _seed() -> tuple[DeviceModel, ...]:
    text = resources.files("mobilend.collateral").joinpath("data/catalog.csv").read_text("utf-8")
    return tuple(parse_catalog_csv(text))


def seed_catalog() -> list[DeviceModel]:
    """The catalog shipped in mobilend/collateral/data/catalog.csv (sources: the docs)."""
    return list(_seed())
