"""Policy rules: each default rule at its boundaries, combinators, missing features, bad files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.rules import Policy, default_policy

D = Decimal

# An applicant who passes every default rule: no hits, approved.
CLEAN: dict[str, object] = {
    "age": 30,
    "blacklisted": False,
    "applications_30d": 1,
    "other_platform_loans": 0,
    "dti": D("0.20"),
    "score": 650,
    "pd": D("0.02"),
    "consent_scoring": True,
    "device_rooted": False,
    "id_ocr_mismatch": False,
    "income_monthly": D(8000),
    "merchant": False,
}


def run(**changes: object) -> tuple[str, list[str]]:
    result = default_policy().evaluate({**CLEAN, **changes})
    return result.outcome, [h.rule_id for h in result.hits]


def test_clean_applicant_is_approved_with_no_hits() -> None:
    result = default_policy().evaluate(CLEAN)
    assert (result.outcome, result.hits) == ("approve", [])
    assert result.policy_version == "2026-11-28"


@pytest.mark.parametrize(
    ("changes", "outcome", "ids"),
    [
        # age: knocked out under 18 and over 60; 18 and 60 themselves pass
        ({"age": 17}, "decline", ["KO_AGE_MIN"]),
        ({"age": 18}, "approve", []),
        ({"age": 60}, "approve", []),
        ({"age": 61}, "decline", ["KO_AGE_MAX"]),
        ({"blacklisted": True}, "decline", ["KO_BLACKLIST"]),
        # more than 5 applications in 30 days
        ({"applications_30d": 5}, "approve", []),
        ({"applications_30d": 6}, "decline", ["KO_APPLICATIONS_30D"]),
        # 4 or more active loans elsewhere (多头借贷)
        ({"other_platform_loans": 3}, "approve", []),
        ({"other_platform_loans": 4}, "decline", ["KO_MULTI_LENDING"]),
        # DTI: refer on [0.40, 0.50] (both ends included), knock out above 0.50
        ({"dti": D("0.3999")}, "approve", []),
        ({"dti": D("0.40")}, "refer", ["RF_DTI"]),
        ({"dti": D("0.50")}, "refer", ["RF_DTI"]),
        ({"dti": D("0.5001")}, "decline", ["KO_DTI"]),
        # score = 487.1229 + 28.8539 ln(good:bad odds) (600 at 50:1, PDO 20), by hand:
        # PD 50% is odds 1:1, score 487.12 -> decline below 487 (score 487 is PD 50.11%);
        # PD 35% is odds 13:7, ln 1.857143 = 0.619039, 487.1229 + 17.8617 = 504.98 -> the
        # review band is [487, 505) (score 505 is PD 34.99%); approve from 505.
        ({"score": D("486.99")}, "decline", ["KO_SCORE"]),
        ({"score": 487}, "refer", ["RF_SCORE"]),
        ({"score": D("504.99")}, "refer", ["RF_SCORE"]),
        ({"score": 505}, "approve", []),
        # consent refused or never recorded: knockout (is_missing, not a referral)
        ({"consent_scoring": False}, "decline", ["KO_CONSENT"]),
        ({"consent_scoring": None}, "decline", ["KO_CONSENT"]),
        ({"device_rooted": True}, "refer", ["RF_DEVICE_ROOTED"]),
        ({"id_ocr_mismatch": True}, "refer", ["RF_ID_MISMATCH"]),
        # warnings never change the outcome
        ({"pd": D("0.10")}, "approve", []),
        ({"pd": D("0.1001")}, "approve", ["WN_PD_HIGH"]),
        ({"income_monthly": 1999}, "approve", ["WN_INCOME_LOW"]),
        ({"income_monthly": 2000}, "approve", []),
        ({"income_monthly": 1999, "merchant": True}, "approve", []),
    ],
)
def test_default_rule_boundaries(changes: dict[str, object], outcome: str, ids: list[str]) -> None:
    assert run(**changes) == (outcome, ids)


def test_knockout_beats_refer_and_every_hit_is_reported_in_rule_order() -> None:
    assert run(age=17, device_rooted=True, dti=D("0.45")) == (
        "decline",
        ["KO_AGE_MIN", "RF_DTI", "RF_DEVICE_ROOTED"],
    )


def test_reasons_fill_placeholders_in_both_languages() -> None:
    result = default_policy().evaluate({**CLEAN, "age": 17, "dti": D("0.55")})
    age, dti = result.hits
    assert age.reason_en == "Applicants must be at least 18 years old; you are 17."
    assert age.reason_zh == "申请人须年满18周岁，您目前17岁。"
    # 0.55 x 100 = 55 -> "55%"; the param "0.50" x 100 = 50 -> "50%"
    assert dti.reason_en == "Your debt payments are 55% of your income, above the 50% we allow."
    assert dti.reason_zh == "您的负债收入比为55%，超过50%的上限。"
    assert dti.values == {"dti": D("0.55")}
    assert result.reasons("zh") == [age.reason_zh, dti.reason_zh]


def test_missing_feature_refers_with_a_clear_reason() -> None:
    features = dict(CLEAN)
    del features["score"]
    result = default_policy().evaluate(features)
    assert result.outcome == "refer"
    assert [(h.rule_id, h.kind, h.missing) for h in result.hits] == [
        ("KO_SCORE", "refer", ("score",)),
        ("RF_SCORE", "refer", ("score",)),
    ]
    assert result.hits[0].values == {"score": None}
    assert "your credit score is missing" in result.hits[0].reason_en
    assert "缺少信用评分" in result.hits[0].reason_zh


def test_missing_feature_follows_three_valued_logic() -> None:
    # WN_INCOME_LOW = all[not(merchant == true), income_monthly < 2000]. With merchant missing the
    # first item is unknown; income 8000 makes the second false, so the rule is false: no hit.
    assert run(merchant=None) == ("approve", [])
    # With income 1500 the second item is true, so the rule is unknown: a warn rule stays a warning.
    result = default_policy().evaluate({**CLEAN, "merchant": None, "income_monthly": 1500})
    assert result.outcome == "approve"
    assert [(h.rule_id, h.kind, h.missing) for h in result.hits] == [
        ("WN_INCOME_LOW", "warn", ("merchant",))
    ]


def test_feature_types_are_checked_and_numbers_may_be_int_float_or_decimal_text() -> None:
    assert run(dti=0.45) == ("refer", ["RF_DTI"])  # float by its repr "0.45"
    assert run(dti="0.45") == ("refer", ["RF_DTI"])
    for name, bad in (("age", "thirty"), ("blacklisted", 1), ("score", True)):
        with pytest.raises(ValidationFailed) as exc:
            run(**{name: bad})
        assert exc.value.field == f"features.{name}"


def test_default_policy_is_cached_and_loads_from_a_path(tmp_path: Path) -> None:
    assert default_policy() is default_policy()
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    assert Policy.load(path).version == Policy.load(str(path)).version == "2026-12-01"


POLICY = """
version: "2026-12-01"
name: test
features: {channel: string}
rules:
  - id: KO_COMBO
    kind: knockout
    params: {channels: [web, agent]}
    when:
      all:
        - {feature: channel, op: in, param: channels}
        - any:
            - {feature: age, op: between, value: [18, 21]}
            - not: {feature: merchant, op: "!=", value: true}
    reason: {en: "channel {channel}, age {age}", zh: "渠道{channel}，年龄{age}"}
  - id: RF_NOT_IN
    kind: refer
    when: {feature: channel, op: not_in, value: [app, web, agent]}
    reason: {en: "unknown channel {channel}", zh: "未知渠道{channel}"}
"""


@pytest.mark.parametrize(
    ("features", "outcome", "ids"),
    [
        # channel in the list and age in [18, 21] (ends included)
        ({"channel": "web", "age": 18, "merchant": False}, "decline", ["KO_COMBO"]),
        ({"channel": "web", "age": 21, "merchant": False}, "decline", ["KO_COMBO"]),
        # age 22 outside; not(merchant != true) is true for a merchant
        ({"channel": "agent", "age": 22, "merchant": True}, "decline", ["KO_COMBO"]),
        ({"channel": "agent", "age": 22, "merchant": False}, "approve", []),
        # channel not in the list: `all` is false whatever the rest; not_in refers
        ({"channel": "kiosk", "age": 18}, "refer", ["RF_NOT_IN"]),
        ({"channel": "app", "age": 18}, "approve", []),
        # any[unknown, true] is true: a missing merchant does not matter when the age matches
        ({"channel": "web", "age": 19}, "decline", ["KO_COMBO"]),
    ],
)
def test_combinators(features: dict[str, object], outcome: str, ids: list[str]) -> None:
    result = Policy.load(POLICY).evaluate(features)
    assert (result.outcome, [h.rule_id for h in result.hits]) == (outcome, ids)


def test_rendered_reason_of_a_custom_rule() -> None:
    hit = Policy.load(POLICY).evaluate({"channel": "web", "age": 19}).hits[0]
    assert (hit.reason_en, hit.reason_zh) == ("channel web, age 19", "渠道web，年龄19")
    assert hit.values == {"channel": "web", "age": D(19), "merchant": None}


def bad(
    when: str = "{feature: age, op: '<', value: 1}",
    *,
    rule_id: str = "KO_X",
    kind: str = "knockout",
    reason: str = "{en: a, zh: b}",
    extra: str = "",
) -> str:
    """A policy whose second rule (rules[1]) carries the fault under test."""
    return (
        'version: "1"\nname: t\nrules:\n'
        "  - {id: RF_OK, kind: refer, when: {feature: age, op: '<', value: 18},"
        " reason: {en: a, zh: b}}\n"
        f"  - id: {rule_id}\n    kind: {kind}\n    when: {when}\n    reason: {reason}\n{extra}"
    )


NESTED = (
    "\n      all:\n        - {feature: age, op: '<', value: 1}\n"
    "        - not: {feature: dti, op: like, value: 1}"
)


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        (bad("{feature: age, op: '=<', value: 1}"), "rules[1].when.op", "unknown-op"),
        (bad(NESTED), "rules[1].when.all[1].not.op", "unknown-op"),
        (bad("{feature: salary, op: '<', value: 1}"), "rules[1].when.feature", "unknown-feature"),
        (bad("{feature: blacklisted, op: '<', value: 1}"), "rules[1].when.op", "op-for-type"),
        (bad("{feature: blacklisted, op: '==', value: yes sir}"), "rules[1].when.value", "bool"),
        (bad("{feature: age, op: '<', value: old}"), "rules[1].when.value", "number"),
        (bad(rule_id="RF_OK"), "rules[1].id", "unique"),
        (bad(rule_id="ko_x"), "rules[1].id", "code"),
        (bad(kind="maybe"), "rules[1].kind", "one-of"),
        (bad(reason="{en: a}"), "rules[1].reason.zh", "required-text"),
        (bad(reason="{en: 'too young {nope}', zh: b}"), "rules[1].reason.en", "placeholder"),
        (bad("{feature: age, op: '<', param: nope}"), "rules[1].when.param", "unknown-param"),
        (bad("{feature: age, op: between, value: [30, 20]}"), "rules[1].when.value", "low-le-high"),
        (bad("{feature: age, op: is_missing, value: 1}"), "rules[1].when.value", "no-value"),
        (bad(extra="    colour: red\n"), "rules[1].colour", "unknown-field"),
        (bad("{any: []}"), "rules[1].when.any", "non-empty-list"),
        (bad("{feature: age, op: '<', value: 1, any: []}"), "rules[1].when", "one-of"),
        ("name: t\nrules: []\n", "version", "required-text"),
        ('version: "1"\nname: t\nrules: []\n', "rules", "non-empty-list"),
        ('version: "1"\nname: t\nrules: [\n', "$", "yaml"),
    ],
)
def test_bad_policy_names_the_field(text: str, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        Policy.load(text)
    assert (exc.value.field, exc.value.rule) == (field, rule)
    assert field == "$" or exc.value.detail.startswith(field)
