"""Credit limits: each constraint binding in turn, with hand-worked figures."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.limits import REGULATORY_MAX, credit_limit

D = Decimal


def test_affordability_binds_exactly_one_third_of_income() -> None:
    # 90,000 / 3 = 30,000 (exact: not 29,999.99... rounded down to 29,900)
    # < policy 50,000 < regulatory 300,000
    limit = credit_limit(policy_cap=D(50000), annual_income=D(90000))
    assert (limit.amount, limit.binding) == (D(30000), "affordability")
    assert limit.constraints == {
        "regulatory": D("300000.00"),
        "affordability": D("30000.00"),
        "policy": D("50000.00"),
    }
    assert limit.explanation_en == (
        "Your limit is CNY 30,000: one third of your annual income of CNY 90,000, "
        "less the CNY 0 you already owe."
    )
    assert (
        limit.explanation_zh == "您的额度为30,000元：年收入90,000元的三分之一，扣除您已有借款0元。"
    )


def test_affordability_less_existing_debt_is_rounded_down_to_the_multiple() -> None:
    # 100,000 / 3 = 33,333.333...; less 1,234.56 = 32,098.773... -> 32,000 (multiple 100)
    args = {"policy_cap": D(50000), "annual_income": D(100000), "existing_debt": D("1234.56")}
    limit = credit_limit(**args)  # type: ignore[arg-type]
    assert (limit.amount, limit.binding) == (D(32000), "affordability")
    assert limit.constraints["affordability"] == D("32098.77")
    assert credit_limit(**args, multiple=D(1)).amount == D(32098)  # type: ignore[arg-type]
    assert credit_limit(**args, multiple=D(1000)).amount == D(32000)  # type: ignore[arg-type]


def test_policy_cap_binds() -> None:
    # policy 5,000 < 90,000 / 3 = 30,000 < 300,000
    limit = credit_limit(policy_cap=D(5000), annual_income=D(90000))
    assert (limit.amount, limit.binding) == (D(5000), "policy")
    assert limit.explanation_en == (
        "Your limit is CNY 5,000: the most our credit policy lends on this application is "
        "CNY 5,000."
    )


def test_collateral_binds_when_a_device_is_pledged() -> None:
    # 4,000 x 0.6 = 2,400 < 30,000 - 1,234.56 = 28,765.44 < policy 50,000
    limit = credit_limit(
        policy_cap=D(50000),
        annual_income=D(90000),
        existing_debt=D("1234.56"),
        collateral_value=D(4000),
        max_ltv=D("0.6"),
    )
    assert (limit.amount, limit.binding) == (D(2400), "collateral")
    assert limit.constraints["collateral"] == D("2400.00")
    assert limit.constraints["affordability"] == D("28765.44")
    assert limit.explanation_en == (
        "Your limit is CNY 2,400: 60% of the value of your pledged phone, CNY 4,000."
    )
    assert limit.explanation_zh == "您的额度为2,400元：质押手机估值4,000元的60%。"


def test_regulatory_maximum_binds_less_what_is_owed() -> None:
    # bank internet loan: 200,000 per borrower, no affordability rule; owes 50,000 -> 150,000
    limit = credit_limit(
        policy_cap=D(500000),
        existing_debt=D(50000),
        regulatory_max=REGULATORY_MAX["CN-BANK-INTERNET"],
        affordability_share=None,
    )
    assert (limit.amount, limit.binding) == (D(150000), "regulatory")
    assert "affordability" not in limit.constraints
    # online microloan: income 3,000,000 / 3 - 20,000 = 980,000 > 300,000 - 20,000 = 280,000
    limit = credit_limit(policy_cap=D(500000), annual_income=D(3000000), existing_debt=D(20000))
    assert (limit.amount, limit.binding) == (D(280000), "regulatory")
    assert limit.explanation_zh == (
        "您的额度为280,000元：单户借款上限300,000元，扣除您已有借款20,000元。"
    )


def test_limit_is_never_negative() -> None:
    # 90,000 / 3 - 40,000 = -10,000 -> 0
    limit = credit_limit(policy_cap=D(50000), annual_income=D(90000), existing_debt=D(40000))
    assert (limit.amount, limit.binding) == (D(0), "affordability")
    assert limit.constraints["affordability"] == D("0.00")


def test_a_tie_names_the_first_in_order() -> None:
    # policy 30,000 = 90,000 / 3: affordability comes before policy in the tie order
    limit = credit_limit(policy_cap=D(30000), annual_income=D(90000))
    assert (limit.amount, limit.binding) == (D(30000), "affordability")


def test_affordability_share_is_a_parameter() -> None:
    # half of 10,000 = 5,000
    limit = credit_limit(policy_cap=D(50000), annual_income=D(10000), affordability_share=D("0.5"))
    assert (limit.amount, limit.binding) == (D(5000), "affordability")
    assert "50% of your annual income of CNY 10,000" in limit.explanation_en


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"collateral_value": D(4000)}, "max_ltv"),
        ({"max_ltv": D("0.5")}, "collateral_value"),
        ({"collateral_value": D(4000), "max_ltv": D("1.5")}, "max_ltv"),
        ({"annual_income": None}, "annual_income"),
        ({"existing_debt": D(-1)}, "existing_debt"),
        ({"policy_cap": D(-1)}, "policy_cap"),
        ({"affordability_share": D(0)}, "affordability_share"),
        ({"multiple": D(0)}, "multiple"),
    ],
)
def test_bad_inputs_name_the_field(changes: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"policy_cap": D(50000), "annual_income": D(90000), **changes}
    with pytest.raises(ValidationFailed) as exc:
        credit_limit(**args)  # type: ignore[arg-type]
    assert exc.value.field == field
