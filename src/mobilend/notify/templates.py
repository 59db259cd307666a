"""Borrower-facing notification texts in zh-CN and en (pure).

Placeholders use str.format names; every template exists in both languages (tested), and
rendering refuses a missing parameter instead of sending a half-filled message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mobilend.core.errors import ValidationFailed

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

TEMPLATES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "collateral.margin_call": {
            "zh-CN": (
                "【补仓通知】您的贷款 {loan_id} 的质押手机估值已降至 {value} 元，"
                "质押率 {ltv_pct}%。请于 {due_on} 前提前还款 {prepayment_to_cure} 元"
                "或补充质押物，否则我们将依合同处置质押物。"
            ),
            "en": (
                "Margin call: the phone pledged for loan {loan_id} is now valued at "
                "CNY {value} (loan-to-value {ltv_pct}%). Please prepay CNY "
                "{prepayment_to_cure} or add collateral by {due_on}; otherwise the "
                "collateral may be enforced under your contract."
            ),
        },
        "collateral.margin_call_cured": {
            "zh-CN": "您的贷款 {loan_id} 质押率已恢复至 {ltv_pct}%，补仓通知已解除。",
            "en": "Loan {loan_id}: loan-to-value is back to {ltv_pct}%; the margin call is closed.",
        },
        "collateral.margin_call_expired": {
            "zh-CN": (
                "您的贷款 {loan_id} 的补仓期限 {due_on} 已过。请尽快联系我们，以免质押物被处置。"
            ),
            "en": (
                "Loan {loan_id}: the margin call due {due_on} was not met. Please contact "
                "us to avoid enforcement of the collateral."
            ),
        },
        "collateral.released": {
            "zh-CN": "您的贷款 {loan_id} 已结清，质押手机已解除质押。感谢您的信任。",
            "en": "Loan {loan_id} is repaid and your phone is released from the pledge. Thank you.",
        },
        "collateral.forfeited": {
            "zh-CN": (
                "您的贷款 {loan_id} 已逾期违约，质押手机将依合同处置，"
                "处置所得先用于清偿欠款，余款退还给您。"
            ),
            "en": (
                "Loan {loan_id} is in default: the pledged phone will be sold under your "
                "contract; the proceeds repay the debt and any surplus is returned to you."
            ),
        },
        "contract.signing_code": {
            "zh-CN": (
                "【{lender}】您正在签署借款合同 {contract_no}（借款金额 {amount} 元），"
                "验证码 {code}，{minutes} 分钟内有效。请勿将验证码告诉任何人。"
            ),
            "en": (
                "{lender}: your code to sign loan contract {contract_no} (loan amount CNY "
                "{amount}) is {code}, valid for {minutes} minutes. Never share this code."
            ),
        },
        # Repayment reminders (servicing.reminders plans them; the relay adds `lender` and
        # `support_phone` at sending time and refreshes `amount` from the installment).
        "repayment.before_due": {
            "zh-CN": (
                "【{lender}】您的贷款 {loan_id} 第 {number} 期应还 {amount} 元，"
                "将于 {due_date} 到期（还有 {days} 天）。请按时还款，"
                "如有疑问请致电 {support_phone}。"
            ),
            "en": (
                "{lender}: installment {number} of loan {loan_id}, CNY {amount}, is due on "
                "{due_date} (in {days} days). Please pay on time; questions: {support_phone}."
            ),
        },
        "repayment.due_today": {
            "zh-CN": (
                "【{lender}】您的贷款 {loan_id} 第 {number} 期应还 {amount} 元今天（{due_date}）"
                "到期，请今日内还款。如有疑问请致电 {support_phone}。"
            ),
            "en": (
                "{lender}: installment {number} of loan {loan_id}, CNY {amount}, is due today "
                "({due_date}). Please pay today; questions: {support_phone}."
            ),
        },
        "repayment.overdue": {
            "zh-CN": (
                "【{lender}】您的贷款 {loan_id} 第 {number} 期已逾期 {days} 天"
                "（应还日 {due_date}），尚欠 {amount} 元。请尽快还款以免产生更多罚息；"
                "如有困难请致电 {support_phone} 协商。"
            ),
            "en": (
                "{lender}: installment {number} of loan {loan_id} (due {due_date}) is {days} days "
                "overdue; CNY {amount} is outstanding. Please pay soon to avoid further penalty "
                "interest; if you are in difficulty, call {support_phone}."
            ),
        },
    }
)

# E-mail subject lines by topic family (the part of the key before the dot).
SUBJECTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "collateral": {"zh-CN": "质押手机通知", "en": "About your pledged phone"},
        "contract": {"zh-CN": "借款合同签署验证码", "en": "Your loan contract signing code"},
        "repayment": {"zh-CN": "还款提醒", "en": "Repayment reminder"},
    }
)


def subject(key: str, language: str) -> str:
    """The e-mail subject of a template's message ("Mobilend notice" for an unknown family)."""
    family = SUBJECTS.get(key.partition(".")[0])
    if family is None or language not in family:
        return "Mobilend 通知" if language == "zh-CN" else "Mobilend notice"
    return family[language]


def render(key: str, language: str, params: Mapping[str, object]) -> str:
    if key not in TEMPLATES:
        raise ValidationFailed("template", "known-template", f"no template {key!r}")
    if language not in LANGUAGES:
        raise ValidationFailed("language", "one-of", f"language must be one of {LANGUAGES}")
    try:
        return TEMPLATES[key][language].format(**params)
    except KeyError as exc:
        raise ValidationFailed(
            "params", "complete", f"template {key!r} needs parameter {exc.args[0]!r}"
        ) from exc
