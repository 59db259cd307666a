"""Catalog, price feed, collateral terms and valuation (use cases over the pure modules)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilend.collateral import catalog, depreciation, grading, prices, valuation
from mobilend.collateral.lockpolicy import LockPolicy
from mobilend.collateral.models import (
    CollateralTerms,
    DeviceModel,
    DeviceTac,
    DeviceVariant,
    PriceQuote,
)
from mobilend.core.errors import NotFound, ValidationFailed
from mobilend.loans.models import Product

# Used when a product has no collateral terms of its own (docs/collateral.md).
DEFAULT_TERMS: dict[str, Any] = {
    "haircut": Decimal("0.20"),
    "max_ltv": Decimal("0.80"),
    "warning_ltv": Decimal("0.85"),
    "margin_call_ltv": Decimal("0.90"),
    "liquidation_ltv": Decimal("1.00"),
    "margin_call_days": 7,
    "required": True,
    "lock_policy": {},
}
PRICE_WINDOW_DAYS = 30
STALE_AFTER_DAYS = 14
SUCCESSOR_CYCLE_DAYS = 365  # when a model has no successor yet, expect one a year after launch


# ---------------------------------------------------------------- catalog


def to_pure(
    row: DeviceModel, variants: Sequence[DeviceVariant], tacs: Iterable[str]
) -> catalog.DeviceModel:
    return catalog.DeviceModel(
        key=row.key,
        brand=row.brand,
        model=row.model,
        release_date=row.release_date,
        currency=row.currency,
        variants=tuple(
            catalog.Variant(v.storage_gb, v.launch_price)
            for v in sorted(variants, key=lambda v: v.storage_gb)
        ),
        tacs=tuple(sorted(tacs)),
        successor_key=row.successor_key,
        tier=row.tier,
    )


def import_catalog(session: Session, models: Sequence[catalog.DeviceModel]) -> dict[str, int]:
    """Insert or update models, their variants and TACs (an import is repeatable)."""
    by_key = {m.key: m for m in models}
    release = {m.key: m.release_date for m in models}
    known = {r.key: r for r in session.scalars(select(DeviceModel))}
    release.update({k: r.release_date for k, r in known.items() if k not in release})
    taken = {t.tac: t.model_key for t in session.scalars(select(DeviceTac))}
    created = updated = 0
    for m in models:
        row = known.get(m.key)
        if row is None:
            row = DeviceModel(key=m.key)
            session.add(row)
            created += 1
        else:
            updated += 1
        row.brand, row.model, row.release_date = m.brand, m.model, m.release_date
        row.currency, row.tier, row.successor_key = m.currency, m.tier, m.successor_key
        row.successor_release_date = release.get(m.successor_key) if m.successor_key else None
        for tac in m.tacs:
            if taken.get(tac, m.key) != m.key:
                raise ValidationFailed(
                    "tacs", "tac-unique", f"TAC {tac} already identifies {taken[tac]}"
                )
    session.flush()
    for m in models:
        variants = {v.storage_gb: v for v in session.scalars(_variants_of(m.key))}
        for v in m.variants:
            row_v = variants.get(v.storage_gb)
            if row_v is None:
                session.add(
                    DeviceVariant(
                        model_key=m.key, storage_gb=v.storage_gb, launch_price=v.launch_price
                    )
                )
                session.flush()
                row_v = session.get(DeviceVariant, (m.key, v.storage_gb))
            assert row_v is not None
            row_v.launch_price = v.launch_price
        for tac in m.tacs:
            if tac not in taken:
                session.add(DeviceTac(tac=tac, model_key=m.key))
                taken[tac] = m.key
    # a model imported before its predecessor: fill the predecessor's successor date
    for row in session.scalars(select(DeviceModel).where(DeviceModel.successor_key.in_(by_key))):
        assert row.successor_key is not None
        row.successor_release_date = by_key[row.successor_key].release_date
    session.flush()
    return {"created": created, "updated": updated}


def _variants_of(key: str) -> Any:
    return select(DeviceVariant).where(DeviceVariant.model_key == key)


def get_model(session: Session, key: str) -> catalog.DeviceModel:
    row = session.get(DeviceModel, key)
    if row is None:
        raise NotFound(f"no device model {key!r} in the catalog", field="model_key")
    variants = list(session.scalars(_variants_of(key)))
    tacs = session.scalars(select(DeviceTac.tac).where(DeviceTac.model_key == key))
    return to_pure(row, variants, tacs)


def model_by_imei(session: Session, imei: str) -> catalog.DeviceModel | None:
    tac = catalog.tac_of(catalog.validate_imei(imei))
    key = session.scalar(select(DeviceTac.model_key).where(DeviceTac.tac == tac))
    return None if key is None else get_model(session, key)


def list_models(session: Session) -> list[catalog.DeviceModel]:
    rows = list(session.scalars(select(DeviceModel).order_by(DeviceModel.brand, DeviceModel.key)))
    variants: dict[str, list[DeviceVariant]] = defaultdict(list)
    for v in session.scalars(select(DeviceVariant)):
        variants[v.model_key].append(v)
    tacs: dict[str, list[str]] = defaultdict(list)
    for t in session.scalars(select(DeviceTac)):
        tacs[t.model_key].append(t.tac)
    return [to_pure(r, variants[r.key], tacs[r.key]) for r in rows]


# ---------------------------------------------------------------- price feed


def import_quotes(
    session: Session, quotes: Sequence[prices.PriceQuote], *, now: datetime
) -> dict[str, int]:
    """Store quotes; one already stored (same model, storage, grade, day, source) is skipped."""
    keys = {q.model_key for q in quotes}
    stored = set(session.scalars(select(DeviceModel.key).where(DeviceModel.key.in_(keys))))
    models = {k: get_model(session, k) for k in sorted(stored)}
    for n, q in enumerate(quotes, start=1):
        if q.model_key not in models:
            raise ValidationFailed(
                f"row {n}: model_key", "known-model", f"{q.model_key!r} is not in the catalog"
            )
        if not any(v.storage_gb == q.storage_gb for v in models[q.model_key].variants):
            raise ValidationFailed(
                f"row {n}: storage_gb",
                "unknown-variant",
                f"{q.model_key} has no {q.storage_gb} GB variant",
            )
    existing = {
        (r.model_key, r.storage_gb, r.grade, r.quoted_on, r.source)
        for r in session.scalars(select(PriceQuote).where(PriceQuote.model_key.in_(keys)))
    }
    added = 0
    for q in quotes:
        key = (q.model_key, q.storage_gb, q.grade, q.quoted_on, q.source)
        if key in existing:
            continue
        existing.add(key)
        session.add(
            PriceQuote(
                model_key=q.model_key,
                storage_gb=q.storage_gb,
                grade=q.grade,
                price=q.price,
                quoted_on=q.quoted_on,
                source=q.source,
                imported_at=now,
            )
        )
        added += 1
    session.flush()
    return {"received": len(quotes), "added": added, "skipped": len(quotes) - added}


def quotes_for(session: Session, model_key: str, *, since: date | None = None) -> list[Any]:
    stmt = select(PriceQuote).where(PriceQuote.model_key == model_key)
    if since is not None:
        stmt = stmt.where(PriceQuote.quoted_on > since)
    return [
        prices.PriceQuote(r.model_key, r.storage_gb, r.grade, r.price, r.quoted_on, r.source)
        for r in session.scalars(stmt)
    ]


def market_price(
    session: Session, *, model_key: str, storage_gb: int, grade: str, as_of: date
) -> prices.MarketPrice:
    since = as_of - timedelta(days=PRICE_WINDOW_DAYS)
    quotes = [
        q
        for q in quotes_for(session, model_key, since=since)
        if q.storage_gb == storage_gb and q.grade == grade
    ]
    return prices.aggregate(
        quotes, as_of=as_of, window_days=PRICE_WINDOW_DAYS, stale_after_days=STALE_AFTER_DAYS
    )


# ---------------------------------------------------------------- depreciation


def price_points(
    model: Any, quotes: Iterable[prices.PriceQuote], successor_on: date | None
) -> list[depreciation.PricePoint]:
    """Quotes as ratios to the variant's launch price and the grade's multiplier."""
    points = []
    launch = {v.storage_gb: v.launch_price for v in model.variants}
    for q in quotes:
        if q.storage_gb not in launch or q.quoted_on < model.release_date:
            continue
        ratio = q.price / (launch[q.storage_gb] * grading.GRADE_MULTIPLIERS[q.grade])
        points.append(
            depreciation.PricePoint(
                age_days=(q.quoted_on - model.release_date).days,
                ratio=ratio,
                after_successor=successor_on is not None and q.quoted_on >= successor_on,
            )
        )
    return points


def curve(
    session: Session, model: catalog.DeviceModel, *, as_of: date
) -> depreciation.DepreciationCurve:
    """The model's fitted curve (history up to as_of), else its brand's, else the tier default."""
    rows = session.execute(
        select(DeviceModel.key, DeviceModel.successor_release_date).where(
            DeviceModel.brand == model.brand
        )
    ).all()
    successor = dict(rows)
    model_points: list[depreciation.PricePoint] = []
    brand_points: list[depreciation.PricePoint] = []
    for key in sorted(successor):
        other = model if key == model.key else get_model(session, key)
        history = [q for q in quotes_for(session, key) if q.quoted_on <= as_of]
        pts = price_points(other, history, successor[key])
        (model_points if key == model.key else brand_points).extend(pts)
    return depreciation.curve_for(
        model, model_points=model_points, brand_points=brand_points + model_points
    )


def successor_between(
    model: catalog.DeviceModel, successor_on: date | None, start: date, end: date
) -> bool:
    """Does the successor launch in (start, end]? Without one yet, expect a yearly cycle."""
    if successor_on is not None:
        return start < successor_on <= end
    expected = model.release_date + timedelta(days=SUCCESSOR_CYCLE_DAYS)
    while expected <= start:
        expected += timedelta(days=SUCCESSOR_CYCLE_DAYS)
    return expected <= end


# ---------------------------------------------------------------- valuation


@dataclass(frozen=True)
class DeviceValuation:
    model_key: str
    storage_gb: int
    grade: grading.Grade
    carrier_factor: Decimal
    market: prices.MarketPrice
    curve: depreciation.DepreciationCurve
    curve_ratio: Decimal
    forecast_ratio: Decimal
    horizon: date
    value: valuation.Valuation

    def as_json(self) -> dict[str, Any]:
        v = self.value
        return {
            "model_key": self.model_key,
            "storage_gb": self.storage_gb,
            "grade": self.grade.grade,
            "grade_multiplier": str(self.grade.multiplier),
            "grade_reasons": list(self.grade.reasons),
            "carrier_factor": str(self.carrier_factor),
            "market_price": None if self.market.price is None else str(self.market.price),
            "market_quotes_used": self.market.used,
            "market_quotes_rejected": self.market.rejected,
            "market_latest": self.market.latest.isoformat() if self.market.latest else None,
            "market_stale": self.market.stale,
            "curve": {"k": self.curve.k, "step": self.curve.step, "source": self.curve.source},
            "curve_ratio": str(self.curve_ratio),
            "forecast_ratio": str(self.forecast_ratio),
            "horizon": self.horizon.isoformat(),
            "basis": v.basis,
            "current_value": str(v.current_value),
            "forecast_value": str(v.forecast_value),
            "lending_value": str(v.lending_value),
            "haircut": str(v.haircut),
        }


def value_device(
    session: Session,
    *,
    model_key: str,
    storage_gb: int,
    condition: grading.Condition,
    as_of: date,
    horizon: date,
    haircut: Decimal,
) -> DeviceValuation:
    """Today's value, the forecast at `horizon` (the loan's maturity) and the lending value."""
    if horizon < as_of:
        raise ValidationFailed("horizon", "not-before-today", "the horizon must not be in the past")
    model = get_model(session, model_key)
    if as_of < model.release_date:
        raise ValidationFailed("as_of", "after-release", f"{model_key} is not released yet")
    factor = grading.storage_factor(model, storage_gb)
    graded = grading.grade(condition)
    carrier = grading.carrier_factor(condition)
    market = market_price(
        session, model_key=model_key, storage_gb=storage_gb, grade=graded.grade, as_of=as_of
    )
    successor_on = session.scalar(
        select(DeviceModel.successor_release_date).where(DeviceModel.key == model_key)
    )
    fitted = curve(session, model, as_of=as_of)
    age = (as_of - model.release_date).days
    curve_ratio = depreciation.ratio_at(
        fitted, age_days=age, after_successor=successor_on is not None and successor_on <= as_of
    )
    forecast = depreciation.forecast_ratio(
        fitted,
        from_age_days=age,
        to_age_days=(horizon - model.release_date).days,
        successor_between=successor_between(model, successor_on, as_of, horizon),
    )
    value = valuation.value_device(
        market_price=None if market.stale else market.price,
        launch_price=model.base_variant.launch_price,
        storage_factor=factor,
        curve_ratio=curve_ratio,
        grade_multiplier=graded.multiplier,
        carrier_factor=carrier,
        forecast_ratio=forecast,
        haircut=haircut,
    )
    return DeviceValuation(
        model_key,
        storage_gb,
        graded,
        carrier,
        market,
        fitted,
        curve_ratio,
        forecast,
        horizon,
        value,
    )


# ---------------------------------------------------------------- terms


@dataclass(frozen=True)
class Terms:
    haircut: Decimal
    max_ltv: Decimal
    warning_ltv: Decimal
    margin_call_ltv: Decimal
    liquidation_ltv: Decimal
    margin_call_days: int
    lock_policy: LockPolicy
    required: bool = True

    def as_json(self) -> dict[str, Any]:
        p = self.lock_policy
        return {
            "haircut": str(self.haircut),
            "max_ltv": str(self.max_ltv),
            "warning_ltv": str(self.warning_ltv),
            "margin_call_ltv": str(self.margin_call_ltv),
            "liquidation_ltv": str(self.liquidation_ltv),
            "margin_call_days": self.margin_call_days,
            "required": self.required,
            "lock_policy": {
                "reminder_days_before": list(p.reminder_days_before),
                "remind_on_due": p.remind_on_due,
                "lock_after_grace_days": p.lock_after_grace_days,
                "offline_lock_days": p.offline_lock_days,
                "command_ttl_hours": p.command_ttl_hours,
            },
        }


def _lock_policy(raw: dict[str, Any]) -> LockPolicy:
    fields = dict(raw)
    if "reminder_days_before" in fields:
        fields["reminder_days_before"] = tuple(fields["reminder_days_before"])
    try:
        return LockPolicy(**fields)
    except TypeError as exc:
        raise ValidationFailed("lock_policy", "known-fields", str(exc)) from exc


def _terms(raw: dict[str, Any]) -> Terms:
    return Terms(
        haircut=Decimal(raw["haircut"]),
        max_ltv=Decimal(raw["max_ltv"]),
        warning_ltv=Decimal(raw["warning_ltv"]),
        margin_call_ltv=Decimal(raw["margin_call_ltv"]),
        liquidation_ltv=Decimal(raw["liquidation_ltv"]),
        margin_call_days=int(raw["margin_call_days"]),
        required=bool(raw.get("required", True)),
        lock_policy=_lock_policy(raw.get("lock_policy") or {}),
    )


def terms_for(session: Session, product_id: int) -> Terms:
    row = session.get(CollateralTerms, product_id)
    if row is None:
        return _terms(DEFAULT_TERMS)
    return _terms(
        {c: getattr(row, c) for c in DEFAULT_TERMS} | {"lock_policy": row.lock_policy or {}}
    )


def set_terms(session: Session, *, product_code: str, data: dict[str, Any]) -> Terms:
    product = session.scalar(select(Product).where(Product.code == product_code))
    if product is None:
        raise NotFound(f"no product {product_code!r}", field="product_code")
    raw = DEFAULT_TERMS | {k: v for k, v in data.items() if v is not None}
    terms = _terms(raw)
    if not Decimal(0) <= terms.haircut < 1:
        raise ValidationFailed("haircut", "range", "haircut must be in [0, 1)")
    if not (0 < terms.max_ltv <= terms.warning_ltv < terms.margin_call_ltv < terms.liquidation_ltv):
        raise ValidationFailed(
            "max_ltv",
            "threshold-order",
            "need 0 < max_ltv <= warning_ltv < margin_call_ltv < liquidation_ltv",
        )
    if terms.margin_call_days < 1:
        raise ValidationFailed("margin_call_days", "positive", "margin_call_days must be >= 1")
    row = session.get(CollateralTerms, product.id) or CollateralTerms(product_id=product.id)
    for name in ("haircut", "max_ltv", "warning_ltv", "margin_call_ltv", "liquidation_ltv"):
        setattr(row, name, getattr(terms, name))
    row.margin_call_days = terms.margin_call_days
    row.required = terms.required
    row.lock_policy = terms.as_json()["lock_policy"]
    session.add(row)
    session.flush()
    return terms
