"""Declarative, versioned credit-policy rules read from YAML (pure).

A policy file names a `version`, a `name` and a list of `rules`; each rule has a stable `id`,
a `kind` (knockout = decline, refer = manual review, warn = note only), a condition `when` in a
small expression language (no `eval`), a borrower-readable `reason` in English and Chinese with
`{placeholders}`, and optional `params`. The format, the feature catalog and the default policy
are described in docs/policy-rules.md.

Conditions are evaluated in three-valued (Kleene) logic: a comparison on a missing feature (key
absent or None) is *unknown*; `all` is false if any item is false, else unknown if any is
unknown; `any` is true if any item is true, else unknown if any is unknown; `not unknown` is
unknown. `is_missing` is never unknown. A knockout or refer rule whose condition is unknown
becomes a "refer" hit naming the missing features; a warn rule stays a warning.
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Literal, TypeAlias, cast

from mobilend.core.errors import ValidationFailed

Kind = Literal["knockout", "refer", "warn"]
Outcome = Literal["approve", "refer", "decline"]
FeatureType = Literal["number", "bool", "string"]
Scalar: TypeAlias = Decimal | bool | str
Value: TypeAlias = Scalar | tuple[Scalar, ...]

# The applicant features the default policy reads (docs/policy-rules.md explains each one).
FEATURE_TYPES: Mapping[str, FeatureType] = {
    "age": "number",  # whole years at application date
    "blacklisted": "bool",  # hit on the internal or a shared blacklist
    "applications_30d": "number",  # credit applications in the last 30 days (all lenders)
    "other_platform_loans": "number",  # active loans on other platforms (多头借贷)
    "dti": "number",  # debt-to-income: monthly debt service / monthly income, a fraction
    "score": "number",  # scorecard points (higher is better)
    "pd": "number",  # 12-month probability of default, a fraction
    "consent_scoring": "bool",  # consent to use sensitive personal data for scoring (PIPL)
    "device_rooted": "bool",  # device rooted, jailbroken or tampered
    "id_ocr_mismatch": "bool",  # ID card OCR disagrees with the declared identity
    "income_monthly": "number",  # verified monthly income, currency units
    "merchant": "bool",  # the applicant is an online merchant (scored on shop data)
}
# Borrower-readable names used when a feature is missing (others show their own name).
FEATURE_LABELS: Mapping[str, tuple[str, str]] = {
    "age": ("your age", "年龄"),
    "blacklisted": ("the risk-list check", "风险名单核查结果"),
    "applications_30d": ("your recent credit applications", "近30天申请次数"),
    "other_platform_loans": ("your loans on other platforms", "其他平台借款笔数"),
    "dti": ("your debt-to-income ratio", "负债收入比"),
    "score": ("your credit score", "信用评分"),
    "pd": ("the default-probability estimate", "违约概率估计"),
    "consent_scoring": ("your consent to credit scoring", "信用评估授权"),
    "device_rooted": ("the device security check", "设备安全检测结果"),
    "id_ocr_mismatch": ("the ID card check", "身份证核验结果"),
    "income_monthly": ("your monthly income", "月收入"),
    "merchant": ("your applicant type (merchant or not)", "申请人类型（是否商户）"),
}
KINDS: tuple[Kind, ...] = ("knockout", "refer", "warn")
ORDERED_OPS = ("<", "<=", ">", ">=")
OPS = (*ORDERED_OPS, "==", "!=", "in", "not_in", "between", "is_missing")
OPS_FOR_TYPE: Mapping[FeatureType, frozenset[str]] = {
    "number": frozenset(OPS),
    "bool": frozenset({"==", "!=", "is_missing"}),
    "string": frozenset({"==", "!=", "in", "not_in", "is_missing"}),
}
MISSING_TEXT = "—"  # what a placeholder of a missing feature renders as
_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\|pct)?\}")

# ---------------------------------------------------------------- expressions


@dataclass(frozen=True, slots=True)
class Condition:
    feature: str
    op: str
    value: Value | None  # params already substituted; None for is_missing


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr: TypeAlias = Condition | AllOf | AnyOf | Not


def _features_of(expr: Expr) -> list[str]:
    if isinstance(expr, Condition):
        return [expr.feature]
    if isinstance(expr, Not):
        return _features_of(expr.item)
    return [name for item in expr.items for name in _features_of(item)]


def _compare(op: str, left: Scalar, right: Value | None) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    if op in ("in", "not_in"):
        assert isinstance(right, tuple)
        return (left in right) == (op == "in")
    assert isinstance(left, Decimal)
    if op == "between":
        assert isinstance(right, tuple)
        lo, hi = right
        assert isinstance(lo, Decimal) and isinstance(hi, Decimal)
        return lo <= left <= hi
    assert isinstance(right, Decimal)
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _evaluate(expr: Expr, values: Mapping[str, Scalar | None]) -> bool | None:
    """True, False, or None for unknown (a missing feature), in Kleene logic."""
    if isinstance(expr, Condition):
        value = values[expr.feature]
        if expr.op == "is_missing":
            return value is None
        return None if value is None else _compare(expr.op, value, expr.value)
    if isinstance(expr, Not):
        inner = _evaluate(expr.item, values)
        return None if inner is None else not inner
    results = [_evaluate(item, values) for item in expr.items]
    decisive = isinstance(expr, AnyOf)  # any: one True decides; all: one False decides
    if decisive in results:
        return decisive
    return None if None in results else not decisive


# ---------------------------------------------------------------- rules and results


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: Kind
    when: Expr
    reason_en: str
    reason_zh: str
    params: Mapping[str, Value] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        """The features the condition reads, each once, in order of appearance."""
        return tuple(dict.fromkeys(_features_of(self.when)))


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule_id: str
    kind: Kind  # "refer" when a knockout/refer rule could not be checked (missing features)
    reason_en: str
    reason_zh: str
    values: Mapping[str, Scalar | None]  # the features the rule looked at (None: missing)
    missing: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyResult:
    policy_name: str
    policy_version: str
    outcome: Outcome
    hits: list[RuleHit]

    def reasons(self, lang: Literal["en", "zh"] = "en") -> list[str]:
        """Reasons of the knockout and refer hits (warnings left out), in rule order."""
        return [h.reason_en if lang == "en" else h.reason_zh for h in self.hits if h.kind != "warn"]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    version: str
    rules: tuple[Rule, ...]
    feature_types: Mapping[str, FeatureType] = field(default_factory=lambda: dict(FEATURE_TYPES))

    @classmethod
    def load(cls, source: str | Path) -> Policy:
        """Parse and validate a policy: a `Path` is read as a UTF-8 file, a `str` with a line
        break is the YAML text itself, any other `str` is a file path. ValidationFailed names
        the bad field's path, e.g. "rules[3].when.op"."""
        if isinstance(source, str) and "\n" in source:
            text = source
        else:
            try:
                text = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValidationFailed("$", "readable", f"cannot read policy file: {exc}") from None
        return _parse_policy(_load_yaml(text))

    def evaluate(self, features: Mapping[str, object]) -> PolicyResult:
        """Run every rule over a flat dict of applicant features. Outcome: any knockout ->
        "decline", else any refer -> "refer", else "approve"; warnings never change it."""
        seen: dict[str, Scalar | None] = {}

        def value(name: str) -> Scalar | None:
            if name not in seen:
                seen[name] = _feature_value(name, features.get(name), self.feature_types[name])
            return seen[name]

        hits = [hit for rule in self.rules if (hit := _check(rule, value)) is not None]
        kinds = {h.kind for h in hits}
        outcome: Outcome = (
            "decline" if "knockout" in kinds else "refer" if "refer" in kinds else "approve"
        )
        return PolicyResult(self.name, self.version, outcome, hits)


def _check(rule: Rule, value: Callable[[str], Scalar | None]) -> RuleHit | None:
    """The rule's hit, or None when its condition is false."""
    looked = {name: value(name) for name in rule.features}
    result = _evaluate(rule.when, looked)
    if result is False:
        return None
    if result is None:
        missing = tuple(n for n, v in looked.items() if v is None)
        en, zh = _missing_reason(rule.id, missing)
        return RuleHit(rule.id, "warn" if rule.kind == "warn" else "refer", en, zh, looked, missing)

    def lookup(key: str) -> Value | None:
        return rule.params[key] if key in rule.params else value(key)

    en, zh = _render(rule.reason_en, lookup), _render(rule.reason_zh, lookup)
    return RuleHit(rule.id, rule.kind, en, zh, looked)


@cache
def default_policy() -> Policy:
    """The packaged policy (mobilend/decisioning/policies/default.yaml), parsed once."""
    resource = files("mobilend.decisioning.policies").joinpath("default.yaml")
    return _parse_policy(_load_yaml(resource.read_text(encoding="utf-8")))


# ---------------------------------------------------------------- features and reasons


def _feature_value(name: str, raw: object, ftype: FeatureType) -> Scalar | None:
    """A feature as Decimal / bool / str; None when missing. Wrong types are the caller's bug."""
    if raw is None:
        return None
    path = f"features.{name}"
    if ftype == "bool":
        if isinstance(raw, bool):
            return raw
        raise ValidationFailed(path, "bool", f"feature {name} must be true or false, not {raw!r}")
    if ftype == "string":
        if isinstance(raw, str):
            return raw
        raise ValidationFailed(path, "string", f"feature {name} must be a string, not {raw!r}")
    number = _number(raw)
    if number is None:
        raise ValidationFailed(path, "number", f"feature {name} must be a number, not {raw!r}")
    return number


def _number(raw: object) -> Decimal | None:
    """Decimal of an int, Decimal, float (by its shortest repr) or decimal string; else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        return None
    if isinstance(raw, Decimal | str | numbers.Real):
        try:
            number = raw if isinstance(raw, Decimal) else Decimal(str(raw))
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _render(template: str, lookup: Callable[[str], Value | None]) -> str:
    def fill(match: re.Match[str]) -> str:
        value = lookup(match.group(1))
        if value is None:
            return MISSING_TEXT
        if isinstance(value, tuple):
            return ", ".join(_text(v) for v in value)
        number = _number(value) if match.group(2) else None
        return _text(value) if number is None else _plain(number * 100) + "%"

    return _PLACEHOLDER.sub(fill, template)


def _text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _plain(value) if isinstance(value, Decimal) else value


def _missing_reason(rule_id: str, missing: Sequence[str]) -> tuple[str, str]:
    en = ", ".join(FEATURE_LABELS.get(n, (n, n))[0] for n in missing)
    zh = "、".join(FEATURE_LABELS.get(n, (n, n))[1] for n in missing)
    return (
        f"We could not complete check {rule_id} because {en} is missing; "
        "a credit officer will review your application.",
        f"缺少{zh}，无法完成{rule_id}项检查，您的申请将转人工审核。",
    )


# ---------------------------------------------------------------- parsing and validation


def _load_yaml(text: str) -> object:
    """yaml.safe_load behind a typed wrapper (PyYAML ships no type hints)."""
    yaml = importlib.import_module("yaml")
    try:
        document: object = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed("$", "yaml", f"the policy is not valid YAML: {exc}") from None
    return document


def _fail(path: str, rule: str, detail: str) -> ValidationFailed:
    return ValidationFailed(path, rule, f"{path}: {detail}")


def _mapping(raw: object, path: str, allowed: set[str]) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise _fail(path, "object", "must be a mapping")
    for key in raw:
        if key not in allowed:
            raise _fail(f"{path}.{key}" if path != "$" else str(key), "unknown-field", "unknown")
    return raw


def _text_field(raw: Mapping[str, object], key: str, path: str) -> str:
    value = raw.get(key)
    if isinstance(value, date):  # an unquoted version: 2026-11-01
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, "required-text", "a non-empty string is required")
    return value


def _parse_policy(raw: object) -> Policy:
    top = _mapping(raw, "$", {"version", "name", "description", "features", "rules"})
    version = _text_field(top, "version", "version")
    name = _text_field(top, "name", "name")
    types = dict(FEATURE_TYPES)
    extra = top.get("features", {})
    if not isinstance(extra, Mapping):
        raise _fail("features", "object", "must map feature names to number, bool or string")
    for feature, ftype in extra.items():
        at = f"features.{feature}"
        if not isinstance(feature, str) or not _NAME.match(feature) or feature in types:
            raise _fail(at, "name", "a new snake_case feature name is required")
        if ftype not in OPS_FOR_TYPE:
            raise _fail(at, "type", "type must be number, bool or string")
        types[feature] = cast(FeatureType, ftype)
    raw_rules = top.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise _fail("rules", "non-empty-list", "a non-empty list of rules is required")
    rules: list[Rule] = []
    for k, raw_rule in enumerate(raw_rules):
        rule = _parse_rule(raw_rule, f"rules[{k}]", types)
        if any(r.id == rule.id for r in rules):
            raise _fail(f"rules[{k}].id", "unique", f"duplicate rule id {rule.id}")
        rules.append(rule)
    return Policy(name, version, tuple(rules), MappingProxyType(types))


def _parse_rule(raw: object, path: str, types: Mapping[str, FeatureType]) -> Rule:
    rule = _mapping(raw, path, {"id", "kind", "when", "reason", "params", "description"})
    rule_id = rule.get("id")
    if not isinstance(rule_id, str) or not _ID.match(rule_id):
        raise _fail(f"{path}.id", "code", "id must be an upper-case code like KO_AGE_MIN")
    kind = rule.get("kind")
    if kind not in KINDS:
        raise _fail(f"{path}.kind", "one-of", f"kind must be one of {', '.join(KINDS)}")
    params = _parse_params(rule.get("params", {}), f"{path}.params", types)
    if "when" not in rule:
        raise _fail(f"{path}.when", "required", "a condition is required")
    when = _parse_expr(rule["when"], f"{path}.when", types, params)
    reason = _mapping(rule.get("reason"), f"{path}.reason", {"en", "zh"})
    texts = [_text_field(reason, lang, f"{path}.reason.{lang}") for lang in ("en", "zh")]
    for lang, text in zip(("en", "zh"), texts, strict=True):
        for match in _PLACEHOLDER.finditer(text):
            key, pct = match.group(1), match.group(2)
            known = key in params or key in types
            numeric = types.get(key) == "number" or _number(params.get(key)) is not None
            if not known or (pct and not numeric):
                raise _fail(
                    f"{path}.reason.{lang}",
                    "placeholder",
                    f"{{{key}}} must name a param or a feature ({{name|pct}} a number)",
                )
    return Rule(rule_id, kind, when, texts[0], texts[1], MappingProxyType(params))


def _parse_params(raw: object, path: str, types: Mapping[str, FeatureType]) -> dict[str, Value]:
    if not isinstance(raw, Mapping):
        raise _fail(path, "object", "must be a mapping")
    params: dict[str, Value] = {}
    for key, value in raw.items():
        at = f"{path}.{key}"
        if not isinstance(key, str) or not _NAME.match(key) or key in types:
            raise _fail(at, "name", "param names are snake_case and not feature names")
        if isinstance(value, list):
            params[key] = tuple(_scalar(v, f"{at}[{i}]") for i, v in enumerate(value))
        else:
            params[key] = _scalar(value, at)
    return params


def _scalar(raw: object, path: str) -> Scalar:
    if isinstance(raw, bool | str):
        return raw
    number = _number(raw)
    if number is None:
        raise _fail(path, "scalar", "must be a number, a boolean or a string")
    return number


def _parse_expr(
    raw: object, path: str, types: Mapping[str, FeatureType], params: Mapping[str, Value]
) -> Expr:
    if not isinstance(raw, Mapping):
        raise _fail(path, "object", "a condition must be a mapping")
    heads = [k for k in ("all", "any", "not", "feature") if k in raw]
    if len(heads) != 1:
        raise _fail(path, "one-of", "a condition has exactly one of all, any, not, feature")
    head = heads[0]
    if head == "feature":
        return _parse_condition(raw, path, types, params)
    _mapping(raw, path, {head})
    if head == "not":
        return Not(_parse_expr(raw["not"], f"{path}.not", types, params))
    items = raw[head]
    if not isinstance(items, list) or not items:
        raise _fail(f"{path}.{head}", "non-empty-list", "a non-empty list of conditions")
    parsed = tuple(
        _parse_expr(item, f"{path}.{head}[{i}]", types, params) for i, item in enumerate(items)
    )
    return AllOf(parsed) if head == "all" else AnyOf(parsed)


def _parse_condition(
    raw: Mapping[str, object],
    path: str,
    types: Mapping[str, FeatureType],
    params: Mapping[str, Value],
) -> Condition:
    _mapping(raw, path, {"feature", "op", "value", "param"})
    feature = raw["feature"]
    if not isinstance(feature, str) or feature not in types:
        raise _fail(f"{path}.feature", "unknown-feature", f"unknown feature {feature!r}")
    ftype = types[feature]
    op = raw.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise _fail(f"{path}.op", "unknown-op", f"op must be one of {' '.join(OPS)}")
    if op not in OPS_FOR_TYPE[ftype]:
        raise _fail(f"{path}.op", "op-for-type", f"op {op} does not apply to a {ftype} feature")
    given = [k for k in ("value", "param") if k in raw]
    if op == "is_missing":
        if given:
            raise _fail(f"{path}.{given[0]}", "no-value", "is_missing takes no value")
        return Condition(feature, op, None)
    if len(given) != 1:
        raise _fail(f"{path}.value", "one-of", "give exactly one of value or param")
    at = f"{path}.{given[0]}"
    raw_value = raw[given[0]] if given[0] == "value" else _param(raw["param"], at, params)
    return Condition(feature, op, _operand(raw_value, op, ftype, at))


def _param(name: object, path: str, params: Mapping[str, Value]) -> object:
    """A param's value; for between/in a list of param names gives the list of their values."""
    if isinstance(name, list):
        return [_param(n, f"{path}[{i}]", params) for i, n in enumerate(name)]
    if not isinstance(name, str) or name not in params:
        raise _fail(path, "unknown-param", f"{name!r} is not one of the rule's params")
    value = params[name]
    return list(value) if isinstance(value, tuple) else value


def _operand(raw: object, op: str, ftype: FeatureType, path: str) -> Value:
    """Check the literal against the op and the feature's type; numbers become Decimal."""
    if op in ("between", "in", "not_in"):
        if not isinstance(raw, list | tuple) or not raw:
            raise _fail(path, "list", f"{op} needs a non-empty list")
        items = tuple(_typed(v, ftype, f"{path}[{i}]") for i, v in enumerate(raw))
        if op == "between":
            lo, hi = items[0], items[-1]
            if len(items) != 2 or not (isinstance(lo, Decimal) and isinstance(hi, Decimal)):
                raise _fail(path, "pair", "between needs [low, high]")
            if lo > hi:
                raise _fail(path, "low-le-high", "between needs low <= high")
        return items
    return _typed(raw, ftype, path)


def _typed(raw: object, ftype: FeatureType, path: str) -> Scalar:
    if ftype == "number":
        number = _number(raw)
        if number is None:
            raise _fail(path, "number", f"a number is required, not {raw!r}")
        return number
    expected = bool if ftype == "bool" else str
    if not isinstance(raw, expected):
        raise _fail(path, ftype, f"a {ftype} is required, not {raw!r}")
    return raw
