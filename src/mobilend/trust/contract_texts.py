"""The wording of the loan agreement and key-facts statement in zh-CN and en (pure data).

Every key exists in both languages (tested); placeholders are str.format names filled by
`contract_pdf`. Changing the wording means a new TEMPLATE_VERSION; changing the borrower's
consent statement a new CONSENT_VERSION (the old texts stay here, so an old contract's
consent can still be shown as it was).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

LANGUAGES = ("zh-CN", "en")
TEMPLATE_VERSION = "loan-agreement-v1"
CONSENT_VERSION = "contract-consent-v1"

# The statement the borrower agrees to by entering the one-time code, by version.
CONSENT_TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "contract-consent-v1": {
            "zh-CN": (
                "本人已阅读并理解本《借款合同》及《关键信息摘要》的全部条款，特别是年化利率、"
                "费用、罚息、质押与设备锁定以及违约处置条款。本人输入发送至本人手机的一次性验证码，"
                "即表示同意以电子签名方式签署本合同，其效力与手写签名相同。"
            ),
            "en": (
                "I have read and understood this loan agreement and key facts statement, in "
                "particular the annualized rate, the fees, the penalty interest, the pledge and "
                "device lock, and what happens on default. By entering the one-time code sent to "
                "my phone I sign this agreement electronically, with the same effect as a "
                "handwritten signature."
            ),
        }
    }
)

# What a locked phone still runs (collateral.agent.LOCKED_ALLOWLIST), in words.
USABLE_WHILE_LOCKED: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "emergency-calls": {"zh-CN": "紧急呼叫", "en": "emergency calls"},
        "payment-app": {"zh-CN": "还款应用", "en": "the payment app"},
        "customer-service-call": {
            "zh-CN": "拨打客服电话 {support_phone}",
            "en": "calls to customer service on {support_phone}",
        },
        "settings": {
            "zh-CN": "无线网络与移动数据设置",
            "en": "Wi-Fi and mobile-data settings",
        },
    }
)

SCHEDULE_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "annuity": {"zh-CN": "等额本息", "en": "equal installments (annuity)"},
        "equal_principal": {"zh-CN": "等额本金", "en": "equal principal"},
        "interest_only": {"zh-CN": "先息后本", "en": "interest only, principal at maturity"},
        "bullet": {"zh-CN": "到期还本付息", "en": "principal and interest at maturity"},
        "flat": {
            "zh-CN": "固定利息（按原始本金计息）",
            "en": "flat rate on the original principal",
        },
    }
)

FREQUENCY_UNITS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "day": {"zh-CN": "日", "en": "day"},
        "week": {"zh-CN": "周", "en": "week"},
        "semimonth": {"zh-CN": "半月", "en": "half-month"},
        "month": {"zh-CN": "个月", "en": "month"},
    }
)

TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        # -- heading -------------------------------------------------------------------
        "title": {
            "zh-CN": "借款合同及关键信息摘要",
            "en": "Loan Agreement and Key Facts Statement",
        },
        "heading_line": {
            "zh-CN": (
                "合同编号 {contract_no} · 贷款编号 {loan_id} · 出具日期 {issued_on} · "
                "模板 {template}"
            ),
            "en": (
                "Contract {contract_no} · Loan {loan_id} · Issued {issued_on} · Template {template}"
            ),
        },
        "parties": {
            "zh-CN": "出借人：{lender}　借款人：{borrower}（证件号 {id_number}，手机 {phone}）",
            "en": "Lender: {lender}. Borrower: {borrower} (ID {id_number}, phone {phone}).",
        },
        # -- key facts -----------------------------------------------------------------
        "kfs_title": {"zh-CN": "第一部分　关键信息摘要", "en": "Part 1. Key facts statement"},
        "kfs_intro": {
            "zh-CN": "以下为本笔借款最重要的信息，请在签署前仔细阅读。所有金额单位：{currency}。",
            "en": (
                "The most important facts of this loan; please read them before you sign. "
                "All amounts in {currency}."
            ),
        },
        "kf_principal": {"zh-CN": "借款金额", "en": "Loan amount"},
        "kf_disbursed": {"zh-CN": "实际到账金额", "en": "Amount you receive"},
        "kf_nominal": {"zh-CN": "名义年利率", "en": "Nominal annual interest rate"},
        "kf_irr_simple": {
            "zh-CN": "年化利率（IRR，单利）",
            "en": "Annualized rate by IRR (simple)",
        },
        "kf_irr_compound": {
            "zh-CN": "年化利率（IRR，复利）",
            "en": "Annualized rate by IRR (compound)",
        },
        "kf_total_interest": {"zh-CN": "利息总额", "en": "Total interest"},
        "kf_total_fees": {"zh-CN": "费用总额", "en": "Total fees"},
        "kf_total_cost": {
            "zh-CN": "借款总成本（利息＋费用）",
            "en": "Total cost of credit (interest + fees)",
        },
        "kf_total_payment": {"zh-CN": "应还总额", "en": "Total amount to repay"},
        "kf_repayment": {"zh-CN": "还款方式", "en": "Repayment"},
        "kf_repayment_value": {
            "zh-CN": (
                "{schedule}，共 {periods} 期，{frequency}一期，首期 {first_due}，末期 {last_due}"
            ),
            "en": (
                "{schedule}; {periods} installments, {frequency}; first due {first_due}, "
                "last due {last_due}"
            ),
        },
        "kf_penalty": {"zh-CN": "罚息", "en": "Penalty interest"},
        "kf_penalty_value": {
            "zh-CN": "逾期本金按年利率 {rate}% 按日计收，自到期日次日起算",
            "en": "{rate}% a year on overdue principal, daily from the day after the due date",
        },
        "kf_penalty_none": {"zh-CN": "无", "en": "none"},
        "kf_late_fee": {"zh-CN": "逾期费", "en": "Late fee"},
        "kf_late_fee_value": {
            "zh-CN": "每期 {amount}，逾期超过 {days} 日收取一次",
            "en": "{amount} once per installment more than {days} days overdue",
        },
        "kf_collateral": {"zh-CN": "担保", "en": "Security"},
        "kf_collateral_none": {"zh-CN": "无（信用借款）", "en": "none (unsecured loan)"},
        "kf_collateral_value": {
            "zh-CN": "手机质押：{device}，{custody}",
            "en": "pledge of a phone: {device}, {custody}",
        },
        "kf_cooling_off": {"zh-CN": "冷静期", "en": "Cooling-off period"},
        "kf_cooling_off_value": {
            "zh-CN": "签署后 {days} 个自然日内可无理由撤销",
            "en": "{days} calendar days after signing, no reason needed",
        },
        "kf_complaints": {"zh-CN": "投诉渠道", "en": "Complaints"},
        "kf_complaints_value": {
            "zh-CN": "客服电话 {phone}，电子邮箱 {email}；金融消费者投诉热线 {hotline}",
            "en": "customer service {phone}, e-mail {email}; financial consumer hotline {hotline}",
        },
        "irr_note": {
            "zh-CN": (
                "年化利率按内部收益率（IRR）法计算，已包含全部利息和费用；单利为每期内部收益率"
                "乘以每年期数，复利为按每年期数复利换算。"
            ),
            "en": (
                "The annualized rate is the internal rate of return (IRR) of your cash flows, "
                "with all interest and fees included: simple = the IRR per period times the "
                "periods in a year; compound = the IRR per period compounded over a year."
            ),
        },
        # -- schedule and fees ---------------------------------------------------------
        "schedule_title": {"zh-CN": "还款计划", "en": "Repayment schedule"},
        "col_number": {"zh-CN": "期数", "en": "No."},
        "col_due": {"zh-CN": "到期日", "en": "Due date"},
        "col_principal": {"zh-CN": "本金", "en": "Principal"},
        "col_interest": {"zh-CN": "利息", "en": "Interest"},
        "col_fee": {"zh-CN": "费用", "en": "Fee"},
        "col_total": {"zh-CN": "应还金额", "en": "Total"},
        "col_balance": {"zh-CN": "剩余本金", "en": "Balance"},
        "row_sum": {"zh-CN": "合计", "en": "Total"},
        "fees_title": {"zh-CN": "费用明细", "en": "Fees"},
        "fee_upfront_deducted": {
            "zh-CN": "一次性手续费 {amount}，放款时从借款金额中扣除。",
            "en": "Upfront fee {amount}, deducted from the loan amount when it is paid out.",
        },
        "fee_upfront_financed": {
            "zh-CN": "一次性手续费 {amount}，计入借款本金分期偿还。",
            "en": "Upfront fee {amount}, added to the principal and repaid in installments.",
        },
        "fee_installment": {
            "zh-CN": "每期服务费 {amount}，随每期还款收取。",
            "en": "Installment fee {amount}, due with every installment.",
        },
        "fee_late": {
            "zh-CN": "逾期费 {amount}，每期逾期超过 {days} 日时收取一次。",
            "en": "Late fee {amount}, once per installment more than {days} days overdue.",
        },
        "fee_none": {
            "zh-CN": "除上述利息、罚息外，本借款不收取其他费用。",
            "en": "Apart from the interest and penalty interest above, this loan has no fees.",
        },
        "fee_no_other": {
            "zh-CN": "除本合同列明的费用外，出借人不收取任何其他费用。",
            "en": "The lender charges no fee that this agreement does not list.",
        },
        # -- agreement -----------------------------------------------------------------
        "agreement_title": {"zh-CN": "第二部分　借款合同条款", "en": "Part 2. Loan agreement"},
        "c_loan": {
            "zh-CN": (
                "借款。出借人向借款人提供借款 {principal}，放款日为 {start}，实际到账 {disbursed}。"
                "借款人按第一部分的还款计划还款。"
            ),
            "en": (
                "The loan. The lender lends the borrower {principal}, paid out on {start}; the "
                "borrower receives {disbursed} and repays it by the schedule in Part 1."
            ),
        },
        "c_interest": {
            "zh-CN": (
                "利息。名义年利率 {nominal}%，年化利率（IRR）单利 {simple}%、复利 {compound}%。"
                "利息总额 {interest}，借款总成本 {cost}。"
            ),
            "en": (
                "Interest. Nominal rate {nominal}% a year; annualized rate by IRR {simple}% "
                "(simple) and {compound}% (compound). Total interest {interest}; total cost of "
                "credit {cost}."
            ),
        },
        "c_allocation": {
            "zh-CN": (
                "还款顺序。每笔还款依次用于清偿：{waterfall}。"
                "多付部分作为借款人余额保留，可申请退还。"
            ),
            "en": (
                "How payments are applied: in the order {waterfall}. Any overpayment is kept as "
                "your credit balance and refunded on request."
            ),
        },
        "c_prepayment": {
            "zh-CN": "提前还款。借款人可随时提前还款，利息计至还款日，不收取提前还款违约金。",
            "en": (
                "Prepayment. You may repay early at any time; interest runs only to the day you "
                "pay, and there is no prepayment charge."
            ),
        },
        "c_late": {
            "zh-CN": "逾期。任何一期未按时足额还款即为逾期：{penalty}{late_fee}",
            "en": (
                "Late payment. An installment not paid in full when due is overdue: "
                "{penalty}{late_fee}"
            ),
        },
        "c_late_penalty": {
            "zh-CN": "逾期本金按年利率 {rate}% 按日计收罚息；",
            "en": "penalty interest of {rate}% a year accrues daily on the overdue principal; ",
        },
        "c_late_fee": {
            "zh-CN": "逾期超过 {days} 日的每期收取逾期费 {amount}。",
            "en": (
                "a late fee of {amount} is charged once on an installment more than {days} "
                "days late."
            ),
        },
        "c_late_nothing": {
            "zh-CN": "不收取罚息或逾期费，但逾期信息可能影响后续借款。",
            "en": "no penalty interest or late fee is charged, but it may affect future loans.",
        },
        "waterfall_penalty": {"zh-CN": "罚息", "en": "penalty interest"},
        "waterfall_fee": {"zh-CN": "费用", "en": "fees"},
        "waterfall_interest": {"zh-CN": "利息", "en": "interest"},
        "waterfall_principal": {"zh-CN": "本金", "en": "principal"},
        # -- collateral ----------------------------------------------------------------
        "collateral_title": {"zh-CN": "质押物与设备锁定", "en": "Collateral and device lock"},
        "c_unsecured": {
            "zh-CN": "本借款为信用借款，无质押物。",
            "en": "This loan is unsecured: no collateral is pledged.",
        },
        "c_pledge": {
            "zh-CN": (
                "质押。借款人以下列手机为本借款提供质押担保：{device}，存储 {storage} GB，"
                "IMEI {imei}，成色 {grade}。质押时估值 {value}，可贷价值 {lending_value}。"
            ),
            "en": (
                "Pledge. The borrower pledges this phone to secure the loan: {device}, "
                "{storage} GB, IMEI {imei}, grade {grade}. Value when pledged {value}; lending "
                "value {lending_value}."
            ),
        },
        "custody_pawn": {"zh-CN": "交由出借人保管", "en": "held by the lender"},
        "custody_device_lock": {
            "zh-CN": "借款人继续使用（设备锁定）",
            "en": "kept and used by the borrower (device lock)",
        },
        "c_custody_pawn": {
            "zh-CN": "保管方式：手机交由出借人在 {location} 保管，借款结清后当即返还。",
            "en": (
                "Custody: the phone is held by the lender at {location} and handed back as soon "
                "as the loan is repaid."
            ),
        },
        "c_custody_device_lock": {
            "zh-CN": (
                "保管方式：借款人继续持有和使用手机，手机上安装出借人的设备锁定程序；"
                "借款结清后程序自动解除。"
            ),
            "en": (
                "Custody: the borrower keeps and uses the phone with the lender's device-lock "
                "agent installed; the agent removes itself when the loan is repaid."
            ),
        },
        "c_ltv": {
            "zh-CN": (
                "质押率（LTV）＝未偿金额÷手机当前估值，出借人每日按市场价格重新估值（盯市）。"
                "质押率达到 {warning}% 时出借人发出提示；达到 {margin_call}% 时发出补仓通知，"
                "借款人须在 {days} 日内提前还款或补充质押物，使质押率回到 {max_ltv}% 以下；"
                "达到 {liquidation}% 时出借人可处置质押物。"
            ),
            "en": (
                "Loan-to-value (LTV) = the amount outstanding / the phone's current value, which "
                "the lender marks to market daily. At {warning}% the lender warns you; at "
                "{margin_call}% it issues a margin call: within {days} days you prepay or add "
                "collateral to bring the LTV back to {max_ltv}%; at {liquidation}% the lender may "
                "enforce the pledge."
            ),
        },
        "c_lock_what": {
            "zh-CN": (
                "设备锁定。任何一期逾期超过 {grace} 日，出借人可远程锁定手机；锁定后除下列功能外，"
                "手机其他功能均不可使用：{usable}。借款人还清逾期款项后手机立即解锁。"
                "手机连续 {offline} 日未与出借人服务器联系，将自动锁定，联网后即可解锁。"
                "出借人在每期到期日前 {reminders} 日发送还款提醒。"
            ),
            "en": (
                "Device lock. If an installment is more than {grace} days overdue the lender may "
                "lock the phone remotely. While locked, only these still work: {usable}; "
                "everything else is blocked. The phone unlocks as soon as the overdue amount is "
                "paid. A phone that does not reach the lender's server for {offline} days locks "
                "itself until it connects again. Reminders come {reminders} days before each "
                "due date."
            ),
        },
        "c_lock_data": {
            "zh-CN": (
                "设备锁定程序仅向出借人发送设备识别码（IMEI）、SIM 卡网络代码和设备完整性状态，"
                "不读取通讯录、短信、照片或位置信息。"
            ),
            "en": (
                "The agent sends the lender only the device identifiers (IMEI), the SIM's "
                "network code and the phone's integrity status; it does not read contacts, "
                "messages, photos or location."
            ),
        },
        # -- default -------------------------------------------------------------------
        "default_title": {"zh-CN": "违约处置", "en": "What happens on default"},
        "c_default_secured": {
            "zh-CN": (
                "借款逾期或质押率达到 {liquidation}% 时，出借人可宣布质押物没收并依法处置"
                "（设备锁定的手机将保持锁定）。处置所得通过出借人的账务系统记入本借款，"
                "依次清偿：{waterfall}。处置所得超过全部欠款的部分归借款人所有，作为借款人余额退还；"
                "不足清偿的部分，借款人仍须按本合同继续偿还。"
            ),
            "en": (
                "If the loan is overdue, or the LTV reaches {liquidation}%, the lender may "
                "declare the pledged phone forfeited and sell it (a device-lock phone stays "
                "locked). The sale proceeds are booked to this loan in the lender's ledger and "
                "applied in the order {waterfall}. Any surplus over everything owed is yours and "
                "is refunded to you; any shortfall remains owed under this agreement."
            ),
        },
        "c_default_unsecured": {
            "zh-CN": (
                "借款逾期时，出借人将提醒和催收；逾期款项按本合同计收罚息和逾期费，"
                "借款人仍须偿还全部欠款。出借人不会采取暴力、恐吓或骚扰等不当催收方式。"
            ),
            "en": (
                "If the loan is overdue the lender will remind you and collect what is owed, "
                "with penalty interest and fees as this agreement says; everything owed remains "
                "due. The lender never uses violence, threats or harassment to collect."
            ),
        },
        # -- cooling-off, complaints, signature ----------------------------------------
        "cooling_title": {"zh-CN": "冷静期与投诉", "en": "Cooling-off and complaints"},
        "c_cooling_off": {
            "zh-CN": (
                "冷静期。借款人可在签署后 {days} 个自然日内无理由撤销本合同：致电 {phone} 提出，"
                "并归还实际到账金额及按名义年利率计至归还日的利息，出借人不收取任何费用，"
                "已收取的一次性手续费全额退还。"
            ),
            "en": (
                "Cooling-off. Within {days} calendar days of signing you may withdraw from this "
                "agreement without giving a reason: call {phone}, repay the amount you received "
                "with interest at the nominal rate to the day you repay; no fee is charged and "
                "any upfront fee is refunded in full."
            ),
        },
        "c_complaints": {
            "zh-CN": (
                "投诉。对本借款有任何疑问或投诉，请联系 {lender} 客服电话 {phone} 或电子邮箱 "
                "{email}，我们将在 {reply_days} 日内答复。对答复不满意的，可拨打金融消费者投诉热线 "
                "{hotline}。"
            ),
            "en": (
                "Complaints. For any question or complaint call {lender} on {phone} or e-mail "
                "{email}; we reply within {reply_days} days. If you are not satisfied with the "
                "reply, call the financial consumer complaint hotline {hotline}."
            ),
        },
        "c_privacy": {
            "zh-CN": (
                "个人信息。出借人仅为订立和履行本合同处理借款人的个人信息，并依借款人的单独同意"
                "查询征信和使用设备数据；个人信息加密存储。"
            ),
            "en": (
                "Personal data. The lender processes your personal data only to make and perform "
                "this agreement, and queries credit reports and uses device data only with your "
                "separate consent; personal data is stored encrypted."
            ),
        },
        "c_signature": {
            "zh-CN": (
                "电子签署。借款人通过输入发送至其手机的一次性验证码表示同意签署；出借人随后以其"
                "数字证书对本文件施加电子签名（PAdES）并附可信时间戳。签署后文件的 SHA-256 "
                "摘要记入出借人的透明日志，任何人可据此核验文件未被篡改。双方确认电子签名与"
                "手写签名具有同等法律效力（《中华人民共和国电子签名法》）。"
            ),
            "en": (
                "Electronic signature. The borrower signs by entering the one-time code sent to "
                "the borrower's phone; the lender then applies its electronic signature (PAdES) "
                "with its digital certificate and a trusted timestamp. The SHA-256 of the signed "
                "file is recorded in the lender's transparency log, so anyone can check that the "
                "file was not changed. Both parties accept the electronic signature as having the "
                "effect of a handwritten one (Electronic Signature Law of the PRC)."
            ),
        },
        "consent_title": {
            "zh-CN": "借款人确认（{version}）",
            "en": "Borrower's consent ({version})",
        },
        "footer": {
            "zh-CN": "{lender} · 合同编号 {contract_no} · 第 {page} 页",
            "en": "{lender} · Contract {contract_no} · page {page}",
        },
    }
)
