"""Borrower-facing texts shown on a device-lock phone, in zh-CN (default) and en.

Lock messages fit Knox Guard's 350 characters, others its 200 (commands.py checks both).
The lender's name and support number come from settings (MOBILEND_LENDER_NAME,
MOBILEND_SUPPORT_PHONE).
"""

from __future__ import annotations

from collections.abc import Mapping

from mobilend.collateral import lockpolicy
from mobilend.core.errors import ValidationFailed

MESSAGE_LANGUAGE = "zh-CN"  # borrower-facing texts default to Simplified Chinese

_EN_EXTRA = {
    "lock.default": (
        "This phone has been locked by {lender}. Emergency calls still work. Help: {support_phone}"
    ),
    "unlock.default": "{lender} has unlocked this phone.",
    "reminder.default": "{lender}: please open the app to check your loan. Help: {support_phone}",
}
MESSAGES: Mapping[str, Mapping[str, str]] = {
    "zh-CN": {
        "lock.overdue": (
            "此手机已锁定：{due_date} 到期的还款已逾期 {days_past_due} 天。"
            "在{lender} App 内还款后立即解锁。紧急呼叫仍可使用。客服电话：{support_phone}"
        ),
        "lock.forfeited": (
            "此手机已质押给{lender}，因借款违约，质押权已依约执行。"
            "紧急呼叫仍可使用。请致电 {support_phone}。"
        ),
        "lock.margin_call": (
            "此手机已锁定：质押补仓期限已过。请在{lender} App 内还款或联系客服。"
            "紧急呼叫仍可使用。客服电话：{support_phone}"
        ),
        "lock.default": "此手机已被{lender}锁定。紧急呼叫仍可使用。客服电话：{support_phone}",
        "unlock.current": "谢谢！您在{lender}的借款已无逾期，此手机已解锁。",
        "unlock.default": "{lender}已为此手机解锁。",
        "release.loan_closed": "您在{lender}的借款已结清，此手机已解除锁定管理。谢谢！",
        "release.pledge_released": "{lender}已解除对此手机的质押。谢谢！",
        "reminder.before_due": "{lender}：您的还款将于 {due_date} 到期，请在 App 内按时还款。",
        "reminder.due_today": "{lender}：您的还款今天到期，请在 App 内还款。",
        "reminder.default": "{lender}：请打开 App 查看您的借款。客服电话：{support_phone}",
    },
    "en": {**lockpolicy.MESSAGE_TEMPLATES, **_EN_EXTRA},
}
# Texts for commands that do not come from the policy (which names its own message key).
REASON_KEYS: Mapping[tuple[str, str], str] = {
    ("lock", "forfeited"): "lock.forfeited",
    ("lock", "margin call expired"): "lock.margin_call",
    ("release", "loan repaid"): "release.loan_closed",
    ("release", "loan-closed"): "release.loan_closed",
}
DEFAULT_KEYS = {
    "lock": "lock.default",
    "unlock": "unlock.default",
    "reminder": "reminder.default",
    "release": "release.pledge_released",
}


def render(message_key: str, values: Mapping[str, object], language: str = MESSAGE_LANGUAGE) -> str:
    """The borrower-facing text for a message key, in zh-CN or en, within the phone's limits."""
    texts = MESSAGES.get(language)
    if texts is None:
        raise ValidationFailed("language", "one-of", f"language must be one of {list(MESSAGES)}")
    return lockpolicy.render_message(message_key, values, texts)
