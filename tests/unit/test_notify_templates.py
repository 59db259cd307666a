"""Borrower notices exist in both languages and refuse to render half-filled."""

from __future__ import annotations

import string

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.notify.templates import LANGUAGES, TEMPLATES, render


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_in_both_languages_with_the_same_fields(key: str) -> None:
    assert set(TEMPLATES[key]) == set(LANGUAGES)
    assert _fields(TEMPLATES[key]["zh-CN"]) == _fields(TEMPLATES[key]["en"])


def test_render_margin_call() -> None:
    params = {
        "loan_id": 7,
        "value": "2175.00",
        "ltv_pct": "91.96",
        "prepayment_to_cure": "260.00",
        "due_on": "2025-02-28",
    }
    zh = render("collateral.margin_call", "zh-CN", params)
    assert "2175.00 元" in zh and "2025-02-28" in zh and "260.00" in zh
    en = render("collateral.margin_call", "en", params)
    assert en.startswith("Margin call: the phone pledged for loan 7 is now valued at CNY 2175.00")


def test_missing_parameter_unknown_template_or_language() -> None:
    with pytest.raises(ValidationFailed) as err:
        render("collateral.margin_call", "en", {"loan_id": 1})
    assert (err.value.field, err.value.rule) == ("params", "complete")
    with pytest.raises(ValidationFailed):
        render("nope", "en", {})
    with pytest.raises(ValidationFailed):
        render("collateral.released", "fr", {"loan_id": 1})
