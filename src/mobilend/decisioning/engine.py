"""The credit decision: models, policy, limit, risk price and the capped offer (pure).

`decide` takes the applicant's features (features.build_features plus the check flags the
service adds), the application, the product, the loaded models and the engine settings, and
returns a `Decision`. No database, web or clock code: the business date comes in.

Steps, in order:

1. Both models score the application (champion and challenger); `ModelSet.route` on the
   application key picks the deciding model, the other is recorded as the shadow.
2. The policy runs on the features plus the deciding model's score (rounded to whole points)
   and pd (4 decimals). A knockout declines here: no limit, price or offer is computed.
3. Risk price: price_breakdown with the deciding model's pd, the engine's cost of funds, LGD,
   operating cost and margin, within the product's [min, max] annual rate. bound == "max"
   (the risk is not covered at the product's highest rate) declines with reason PRICE_MAX.
4. Limit: credit_limit with the product's max_principal as policy cap, 12 x declared monthly
   income for affordability (one third), the bureau's open balances as existing debt, and the
   phone's value x max LTV when one is offered. Below the product's min_principal: decline
   (LIMIT_BELOW_MIN).
5. Offer: the product's terms for min(amount, limit) at the risk price, kept within the
   jurisdiction's cap (offer_within_cap) and within the product's own apr_cap_pct (compound,
   which loans.service.create_loan checks at acceptance). Fees alone above the cap: decline.
6. The outcome is the policy's (approve or refer) when an offer exists.

Reasons a borrower reads (zh-CN and en): the policy's knockout/refer hits, the decline causes
above, the limit when it cut the amount, a cap cut, and the deciding model's reason codes on
characteristics the application supplied (german_map.NOT_REASONS excluded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import numpy as np

from mobilend.decisioning.default_models import FEATURE_MAP, LoadedModel, ModelSet
from mobilend.decisioning.german_map import NOT_REASONS, german_row
from mobilend.decisioning.limits import REGULATORY_MAX, Limit, credit_limit
from mobilend.decisioning.pricing import (
    JURISDICTIONS,
    Jurisdiction,
    Offer,
    RatePrice,
    Reason,
    offer_within_cap,
    price_breakdown,
)
from mobilend.decisioning.registry import route_point
from mobilend.decisioning.rules import Policy, PolicyResult, default_policy
from mobilend.loans.quoting import Quote, quote, quote_json, terms_for
from mobilend.loans.schemas import ProductConfig
from mobilend.loans.terms import Frequency

Outcome = Literal["approve", "refer", "decline"]
HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class PricingParams:
    """Fractions a year: rate = cost_of_funds + pd x lgd x 12/horizon + operating + margin."""

    cost_of_funds: Decimal = Decimal("0.04")
    lgd: Decimal = Decimal("0.60")
    operating_cost: Decimal = Decimal("0.03")
    margin: Decimal = Decimal("0.02")
    pd_horizon_months: int = 12


@dataclass(frozen=True)
class EngineConfig:
    pricing: PricingParams = field(default_factory=PricingParams)
    jurisdiction: Jurisdiction = JURISDICTIONS["CN-24"]
    max_ltv: Decimal = Decimal("0.50")
    regulatory_max: Decimal = REGULATORY_MAX["CN-MICROLOAN-ONLINE"]
    policy: Policy = field(default_factory=default_policy)


@dataclass(frozen=True)
class Product:
    code: str
    currency: str
    config: ProductConfig


@dataclass(frozen=True)
class ApplicationInput:
    amount: Decimal
    periods: int
    purpose: str
    income_monthly: Decimal
    employment: str
    employment_years: Decimal
    housing: str
    dependents: int
    collateral_value: Decimal | None = None


@dataclass(frozen=True)
class ModelOutput:
    version: str
    kind: str
    pd: float
    score: float
    reasons: list[dict[str, Any]]  # borrower-facing: supplied characteristics only
    impacts: list[dict[str, Any]]  # every characteristic's reason, for operators
    inputs: dict[str, Any]  # the row the model scored


@dataclass
class Decision:
    outcome: Outcome
    reasons: list[dict[str, str]]  # {code, kind, en, zh}
    features: dict[str, Any]
    deciding: ModelOutput
    shadow: ModelOutput | None
    route_point: float
    policy: PolicyResult
    price: RatePrice | None = None
    limit: Limit | None = None
    offer: Offer | None = None
    quote: Quote | None = None
    requested_rate: Decimal | None = None

    def record(self) -> dict[str, Any]:
        """The decision's part of the decision record, JSON-safe."""
        out: dict[str, Any] = jsonable(
            {
                "outcome": self.outcome,
                "reasons": self.reasons,
                "features": self.features,
                "models": {
                    "route_point": self.route_point,
                    "deciding": _model_json(self.deciding),
                    "shadow": _model_json(self.shadow) if self.shadow else None,
                },
                "policy": {
                    "name": self.policy.policy_name,
                    "version": self.policy.policy_version,
                    "outcome": self.policy.outcome,
                    "hits": [
                        {
                            "rule_id": h.rule_id,
                            "kind": h.kind,
                            "values": dict(h.values),
                            "missing": list(h.missing),
                            "en": h.reason_en,
                            "zh": h.reason_zh,
                        }
                        for h in self.policy.hits
                    ],
                },
                "pricing": _price_json(self.price) if self.price else None,
                "limit": _limit_json(self.limit) if self.limit else None,
                "offer": offer_json(self.offer, self.quote) if self.offer else None,
            }
        )
        return out


def _model_json(m: ModelOutput) -> dict[str, Any]:
    return {
        "version": m.version,
        "kind": m.kind,
        "pd": m.pd,
        "score": m.score,
        "reasons": m.reasons,
        "impacts": m.impacts,
        "inputs": m.inputs,
    }


def _price_json(p: RatePrice) -> dict[str, Any]:
    return {
        "rate": p.rate,
        "cost_of_funds": p.cost_of_funds,
        "expected_loss": p.expected_loss,
        "operating_cost": p.operating_cost,
        "margin": p.margin,
        "unrounded": p.unrounded,
        "bound": p.bound,
    }


def _limit_json(limit: Limit) -> dict[str, Any]:
    return {
        "amount": limit.amount,
        "binding": limit.binding,
        "constraints": dict(limit.constraints),
        "currency": limit.currency,
        "en": limit.explanation_en,
        "zh": limit.explanation_zh,
    }


def offer_json(offer: Offer, q: Quote | None) -> dict[str, Any]:
    if not offer.offered or offer.terms is None:
        return {"status": offer.status, "decline_reason": offer.decline_reason}
    terms = offer.terms
    rate = offer.annual_rate or Decimal(0)
    schedule = quote_json(q)["installments"] if q is not None else []
    return {
        "status": offer.status,
        "amount": terms.principal.quantize(CENT),
        "currency": terms.currency,
        "periods": terms.periods,
        "start_date": terms.start,
        "nominal_rate_pct": (rate * HUNDRED).quantize(CENT),
        "irr_simple_pct": offer.irr_simple_pct,
        "irr_compound_pct": offer.irr_compound_pct,
        "cap_pct": offer.cap_pct,
        "cap_basis": offer.basis,
        "cut": offer.cut,
        "installment": offer.installment,
        "total_interest": offer.total_interest,
        "total_fees": offer.total_fees,
        "total_payment": offer.total_payment,
        "disbursed_amount": offer.disbursed_amount,
        "schedule": schedule,
    }


def jsonable(value: Any) -> Any:
    """Decimals and dates as strings, numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------- models


def application_view(application: ApplicationInput, config: ProductConfig) -> dict[str, Any]:
    """The application as german_map reads it: term in months and an estimated installment
    (annuity at the product's default rate on the requested amount)."""
    ppy = float(Frequency.parse(config.frequency).periods_per_year)
    n = application.periods
    principal = float(application.amount)
    i = float(config.annual_rate_pct) / 100 / ppy
    installment = principal / n if i == 0 else principal * i / (1 - (1 + i) ** -n)
    return {
        "term_months": n * 12 / ppy,
        "amount": principal,
        "employment_years": float(application.employment_years),
        "installment": installment,
        "employment": application.employment,
        "dependents": application.dependents,
        "housing": application.housing,
        "purpose": application.purpose,
    }


def model_row(
    loaded: LoadedModel, features: Mapping[str, Any], view: Mapping[str, Any]
) -> dict[str, Any]:
    """The row a model scores: German credit columns for the default models, else the
    platform's features by the model's own column names (missing ones None)."""
    if loaded.model.metadata.get("feature_map") == FEATURE_MAP:
        return german_row(features, view)
    schema = loaded.model.schema
    names = schema.names if schema is not None else list(features)
    return {name: features.get(name) for name in names}


def score(loaded: LoadedModel, row: Mapping[str, Any]) -> ModelOutput:
    pred = loaded.model.predict_row(row)
    every = pred.reasons
    supplied = {k for k, v in row.items() if v is not None and k not in NOT_REASONS}
    return ModelOutput(
        version=loaded.version,
        kind=loaded.kind,
        pd=pred.pd,
        score=pred.score,
        reasons=[r for r in every if r["feature"] in supplied],
        impacts=every,
        inputs=dict(row),
    )


# ---------------------------------------------------------------- the decision


def _reason(code: str, kind: str, en: str, zh: str) -> dict[str, str]:
    return {"code": code, "kind": kind, "en": en, "zh": zh}


def _model_reasons(out: ModelOutput) -> list[dict[str, str]]:
    return [
        _reason(
            f"MODEL_{r['code']}",
            "model",
            f"A main factor in your credit score: {r['en']}.",
            f"影响您信用评分的主要因素：{r['zh']}。",
        )
        for r in out.reasons
    ]


def decide(
    *,
    key: str,
    application: ApplicationInput,
    features: Mapping[str, Any],
    product: Product,
    models: ModelSet,
    config: EngineConfig,
    business_date: date,
) -> Decision:
    """Score, apply the policy, limit, price and cap; see the module docstring."""
    view = application_view(application, product.config)
    deciding_model, shadow_model = models.route(key)
    deciding = score(deciding_model, model_row(deciding_model, features, view))
    shadow = score(shadow_model, model_row(shadow_model, features, view)) if shadow_model else None
    policy = config.policy.evaluate(
        {**features, "score": round(deciding.score), "pd": round(deciding.pd, 4)}
    )
    decision = Decision(
        outcome=policy.outcome,
        reasons=[
            _reason(h.rule_id, "policy", h.reason_en, h.reason_zh)
            for h in policy.hits
            if h.kind != "warn"
        ],
        features=dict(features),
        deciding=deciding,
        shadow=shadow,
        route_point=route_point(key),
        policy=policy,
    )
    model_reasons = _model_reasons(deciding)
    if policy.outcome == "decline":
        decision.reasons += model_reasons
        return decision

    cfg = product.config
    p = config.pricing
    decision.price = price_breakdown(
        pd=Decimal(str(round(deciding.pd, 6))),
        lgd=p.lgd,
        cost_of_funds=p.cost_of_funds,
        operating_cost=p.operating_cost,
        margin=p.margin,
        floor=cfg.min_annual_rate_pct / HUNDRED,
        max_rate=cfg.max_annual_rate_pct / HUNDRED,
        pd_horizon_months=p.pd_horizon_months,
    )
    if decision.price.bound == "max":
        return _decline(
            decision,
            model_reasons,
            _reason(
                "PRICE_MAX",
                "pricing",
                "Our estimate of your credit risk is too high for the rates this product allows.",
                "根据对您信用风险的评估，本产品允许的利率范围无法覆盖该风险。",
            ),
        )

    debt = Decimal(str(features.get("total_bureau_balance") or 0)).quantize(CENT)
    collateral = application.collateral_value
    decision.limit = limit = credit_limit(
        policy_cap=cfg.max_principal,
        annual_income=application.income_monthly * 12,
        existing_debt=debt,
        collateral_value=collateral,
        max_ltv=config.max_ltv if collateral is not None else None,
        regulatory_max=config.regulatory_max,
        currency=product.currency,
    )
    amount = min(application.amount, limit.amount)
    limit_reason = _reason("LIMIT", "limit", limit.explanation_en, limit.explanation_zh)
    if amount < cfg.min_principal:
        return _decline(
            decision,
            model_reasons,
            _reason(
                "LIMIT_BELOW_MIN",
                "limit",
                f"Your credit limit is below the smallest loan of this product "
                f"({product.currency} {cfg.min_principal:,}).",
                f"您的额度低于本产品的最低借款金额（{cfg.min_principal:,}元）。",
            ),
            limit_reason,
        )

    terms = terms_for(
        cfg,
        currency=product.currency,
        principal=amount,
        periods=application.periods,
        start=business_date,
        annual_rate_pct=decision.price.rate * HUNDRED,
    )
    decision.requested_rate = terms.annual_rate
    offer, cap_reasons = _within_caps(terms, config.jurisdiction, cfg)
    decision.offer = offer
    if not offer.offered:
        return _decline(
            decision,
            model_reasons,
            *[_reason("CAP", "cap", r.en, r.zh) for r in cap_reasons],
        )
    assert offer.terms is not None
    decision.quote = quote(offer.terms)
    if amount < application.amount:
        decision.reasons.append(
            {
                **limit_reason,
                "en": limit_reason["en"]
                + f" We can offer {product.currency} {amount:,} of the {application.amount:,} "
                "you asked for.",
                "zh": limit_reason["zh"] + f"您申请{application.amount:,}元，可借{amount:,}元。",
            }
        )
    decision.reasons += [_reason("CAP_CUT", "cap", r.en, r.zh) for r in cap_reasons]
    decision.reasons += model_reasons
    return decision


def _decline(
    decision: Decision, model_reasons: list[dict[str, str]], *reasons: dict[str, str]
) -> Decision:
    decision.outcome = "decline"
    decision.reasons = [*decision.reasons, *reasons, *model_reasons]
    return decision


def _within_caps(
    terms: Any, jurisdiction: Jurisdiction, cfg: ProductConfig
) -> tuple[Offer, list[Reason]]:
    """The offer within the jurisdiction's cap, then within the product's compound cap (when
    stricter or on another basis). Returns the offer and the cap-cut or cap reasons."""
    caps = [(jurisdiction.cap_pct, jurisdiction.basis)]
    if cfg.apr_cap_pct > 0 and (
        cfg.apr_cap_pct < jurisdiction.cap_pct or jurisdiction.basis != "compound"
    ):
        caps.append((cfg.apr_cap_pct, "compound"))
    asked = terms.annual_rate
    reasons: list[Reason] = []
    offer: Offer | None = None
    for cap_pct, basis in caps:
        offer = offer_within_cap(terms, cap_pct, basis)
        if not offer.offered:
            return offer, [r for r in offer.reasons if r.code == "cap"]
        reasons += [r for r in offer.reasons if r.code == "cap-cut"]
        terms = offer.terms
    assert offer is not None
    if reasons:
        offer = replace(offer, requested_rate=asked, cut=True)
    return offer, reasons
