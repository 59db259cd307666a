"""The decision engine on fixed inputs, with the real default models (trained once per run).

Expected figures are worked out here from the rules and the product, not read from the code:
the affordability limit is 12 x monthly income / 3, the cap is checked with an IRR this file
computes by bisection over the offered schedule.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mobilend.decisioning.default_models import ModelSet, load_models
from mobilend.decisioning.engine import (
    ApplicationInput,
    EngineConfig,
    PricingParams,
    Product,
    decide,
)
from mobilend.decisioning.features import build_features
from mobilend.decisioning.sources.bureau import (
    Account,
    AccountStatus,
    BureauReport,
    LenderType,
)
from mobilend.loans.schemas import ProductConfig

TODAY = date(2025, 6, 30)
SUBJECT = "a" * 64


def shared_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One registry for the whole run, shared by xdist workers (trained under a file lock)."""
    root = tmp_path_factory.getbasetemp().parent / "mobilend-decision-models"
    load_models(root)
    return root


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelSet:
    loaded = load_models(shared_model_dir(tmp_path_factory))
    assert loaded.challenger is not None
    # Share 0: the scorecard champion decides every case here; the challenger is the shadow.
    return ModelSet(loaded.champion, loaded.challenger, 0.0)


def clean_bureau() -> BureauReport:
    """One bank card, never late, nothing owed: bureau debt 0."""
    card = Account(
        lender_type=LenderType.BANK,
        opened=date(2018, 3, 1),
        closed=None,
        limit=Decimal("20000.00"),
        balance=Decimal("0.00"),
        monthly_payment=Decimal("0.00"),
        status=AccountStatus.CURRENT,
        worst_dpd_24m=0,
    )
    return BureauReport(SUBJECT, TODAY, "test", "CNY", (card,), (), (), frozenset())


def features(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = dict(
        build_features(
            applicant={"birth_date": "1990-01-01", "income_monthly": "8000"},
            bureau=clean_bureau(),
            device=None,
            social=None,
            as_of=TODAY,
        )
    )
    out.update(consent_scoring=True, id_ocr_mismatch=False, merchant=False, device_rooted=False)
    out.update(overrides)
    return out


def application(**overrides: Any) -> ApplicationInput:
    base: dict[str, Any] = dict(
        amount=Decimal("3000"),
        periods=6,
        purpose="phone",
        income_monthly=Decimal("8000"),
        employment="management",
        employment_years=Decimal("8"),
        housing="own",
        dependents=1,
    )
    base.update(overrides)
    return ApplicationInput(**base)


PRODUCT = Product("PHONE", "CNY", ProductConfig())  # 12% default, 0-24% range, 24% APR cap


def run(
    models: ModelSet,
    *,
    feats: dict[str, Any] | None = None,
    app: ApplicationInput | None = None,
    product: Product = PRODUCT,
    config: EngineConfig | None = None,
) -> Any:
    return decide(
        key="1",
        application=app or application(),
        features=feats or features(),
        product=product,
        models=models,
        config=config or EngineConfig(),
        business_date=TODAY,
    )


def monthly_irr(disbursed: Decimal, payments: list[Decimal]) -> float:
    """Periodic IRR by bisection on the NPV (independent of loans.apr)."""

    def npv(r: float) -> float:
        return -float(disbursed) + sum(float(p) / (1 + r) ** k for k, p in enumerate(payments, 1))

    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if npv(mid) > 0 else (lo, mid)
    return lo


def test_approve_with_offer_within_cap(models: ModelSet) -> None:
    d = run(models)
    assert d.outcome == "approve", d.reasons
    assert d.deciding.kind == "scorecard" and d.shadow is not None and d.shadow.kind == "gbdt"
    assert d.deciding.score >= 505  # the policy's review band ends at 505
    assert [r for r in d.reasons if r["kind"] == "policy"] == []
    offer = d.record()["offer"]
    assert offer["status"] == "offered" and Decimal(offer["amount"]) == Decimal("3000")
    assert offer["periods"] == 6 and len(offer["schedule"]) == 6
    # rate = 4% + pd x 60% + 3% + 2%, rounded up to 0.01%: at least 9%, at most 24%
    rate = Decimal(offer["nominal_rate_pct"])
    assert Decimal(9) <= rate <= Decimal(24)
    pd_ = Decimal(str(round(d.deciding.pd, 6)))
    assert rate / 100 >= Decimal("0.09") + pd_ * Decimal("0.6") - Decimal("0.0001")
    payments = [Decimal(i["total"]) for i in offer["schedule"]]
    r = monthly_irr(Decimal(offer["disbursed_amount"]), payments)
    assert (1 + r) ** 12 - 1 <= 0.24
    assert Decimal(offer["irr_compound_pct"]) <= 24
    # principal repaid in full
    assert sum(Decimal(i["principal"]) for i in offer["schedule"]) == Decimal("3000")


def test_refer_by_rule(models: ModelSet) -> None:
    d = run(models, feats=features(device_rooted=True))
    assert d.outcome == "refer"
    codes = [r["code"] for r in d.reasons]
    assert "RF_DEVICE_ROOTED" in codes
    assert d.offer is not None and d.offer.offered  # the officer sees the proposed offer
    zh = next(r["zh"] for r in d.reasons if r["code"] == "RF_DEVICE_ROOTED")
    assert "root" in zh and "人工审核" in zh


def test_decline_by_knockout(models: ModelSet) -> None:
    d = run(models, feats=features(blacklisted=True))
    assert d.outcome == "decline"
    assert d.reasons[0]["code"] == "KO_BLACKLIST"
    assert d.offer is None and d.limit is None and d.price is None
    assert d.record()["offer"] is None


def test_decline_by_age_knockout_names_the_age(models: ModelSet) -> None:
    d = run(models, feats=features(age=17))
    assert d.outcome == "decline"
    hit = next(r for r in d.reasons if r["code"] == "KO_AGE_MIN")
    assert "17" in hit["en"] and "18" in hit["zh"]


def test_cap_cut(models: ModelSet) -> None:
    """A 20% margin prices far above the 24% compound cap; the rate is cut to meet it."""
    product = Product(
        "PHONE36",
        "CNY",
        ProductConfig(max_annual_rate_pct=Decimal(36), apr_cap_pct=Decimal(36)),
    )
    config = EngineConfig(pricing=PricingParams(margin=Decimal("0.20")))
    d = run(models, product=product, config=config)
    assert d.offer is not None and d.offer.offered and d.offer.cut
    assert d.price is not None and d.price.rate >= Decimal("0.27")  # 4% + 3% + 20% + EL
    offer = d.record()["offer"]
    assert Decimal(offer["nominal_rate_pct"]) < 24  # a compound IRR of 24% needs < 24% nominal
    payments = [Decimal(i["total"]) for i in offer["schedule"]]
    r = monthly_irr(Decimal(offer["disbursed_amount"]), payments)
    assert (1 + r) ** 12 - 1 <= 0.24
    # one more 0.01% would break the cap: the cut is the largest rate within it
    assert (1 + r) ** 12 - 1 > 0.235
    assert any(x["code"] == "CAP_CUT" for x in d.reasons)


def test_limit_binds_at_a_third_of_annual_income(models: ModelSet) -> None:
    income = Decimal("1500")
    feats = features(income_monthly=float(income), dti=0.0)
    app = application(amount=Decimal("9000"), income_monthly=income, periods=6)
    d = run(models, feats=feats, app=app)
    expected = income * 12 / 3  # 6,000: no bureau debt, well under the policy/regulatory caps
    assert d.limit is not None and d.limit.binding == "affordability"
    assert d.limit.amount == expected
    assert d.offer is not None and d.offer.terms is not None
    assert d.offer.terms.principal == expected
    limit_reason = next(r for r in d.reasons if r["code"] == "LIMIT")
    assert "6,000" in limit_reason["en"] and "三分之一" in limit_reason["zh"]


def test_collateral_limit(models: ModelSet) -> None:
    app = application(collateral_value=Decimal("2000"))
    d = run(models, app=app)
    assert d.limit is not None and d.limit.binding == "collateral"
    assert d.limit.amount == Decimal("1000")  # 2,000 x 50% LTV
    assert d.offer is not None and d.offer.terms is not None
    assert d.offer.terms.principal == Decimal("1000")


def test_record_is_json_and_reasons_bilingual(models: ModelSet) -> None:
    import json

    d = run(models, feats=features(device_rooted=True))
    record = d.record()
    json.dumps(record, allow_nan=False)
    assert record["models"]["deciding"]["version"] == models.champion.version
    assert record["models"]["shadow"]["version"] == models.challenger.version  # type: ignore[union-attr]
    for reason in record["reasons"]:
        assert reason["en"] and reason["zh"]
    # borrower-facing model reasons never name characteristics we did not supply
    assert all(r["feature"] != "CHK_ACCT" for r in record["models"]["deciding"]["reasons"])


def test_single_row_path_equals_model_predict(models: ModelSet) -> None:
    """predict_row on the engine's rows gives model.predict's pd, score and reasons."""
    import pandas as pd

    from mobilend.decisioning.engine import application_view, model_row

    view = application_view(
        application(housing="rent", employment_years=Decimal("0.5")), PRODUCT.config
    )
    for feats in (features(), features(worst_dpd_24m=45, active_accounts=6, age=None)):
        for loaded in (models.champion, models.challenger):
            assert loaded is not None
            row = model_row(loaded, feats, view)
            fast, slow = loaded.model.predict_row(row), loaded.model.predict(pd.DataFrame([row]))
            assert (fast.pd, fast.score) == (slow.pd[0], slow.score[0])
            assert fast.reasons == slow.reasons[0]
