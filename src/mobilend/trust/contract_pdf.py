"""Render the loan agreement and key-facts statement to PDF with ReportLab (pure).

`render(facts, font_path=...)` takes plain data (`ContractFacts`) and returns PDF bytes: part 1
the key facts (amounts, both annualized rates by IRR, total cost, the full schedule, fees,
penalty interest, security, cooling-off, complaints), part 2 the agreement (allocation,
prepayment, late payment, collateral and device lock, default, cooling-off, complaints,
personal data, electronic signature, the borrower's consent statement). The wording is in
`contract_texts`.

All text is set in one TrueType font that covers Chinese and Latin (WenQuanYi Micro Hei by
default), embedded as a subset with a ToUnicode map, so the PDF shows and extracts the same on
any reader; ReportLab's built-in CID fonts (STSong-Light) are never used: they are not
embedded. The output is byte-for-byte reproducible (ReportLab's invariant mode: no creation
time, a fixed document id), so the draft's SHA-256 depends only on the facts and the font.
The only file read is the font.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from mobilend.core.errors import ValidationFailed
from mobilend.trust.contract_texts import (
    CONSENT_TEXTS,
    FREQUENCY_UNITS,
    LANGUAGES,
    SCHEDULE_NAMES,
    TEXTS,
    USABLE_WHILE_LOCKED,
)

HUNDRED = Decimal(100)
_FONTS: dict[str, str] = {}
_FONTS_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScheduleRow:
    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal
    total: Decimal
    balance: Decimal


@dataclass(frozen=True)
class CollateralFacts:
    """A pledged phone and the product's collateral terms (collateral.service.Terms)."""

    device: str  # brand and model, e.g. "Apple iPhone 15"
    storage_gb: int
    imei: str
    grade: str
    custody_mode: str  # pawn / device_lock
    location: str | None  # where a pawned phone is held
    value: Decimal  # valuation when pledged
    lending_value: Decimal
    max_ltv: Decimal  # fractions, e.g. 0.80
    warning_ltv: Decimal
    margin_call_ltv: Decimal
    liquidation_ltv: Decimal
    margin_call_days: int
    lock_after_grace_days: int
    offline_lock_days: int
    reminder_days_before: tuple[int, ...]
    usable_while_locked: tuple[str, ...]  # keys of contract_texts.USABLE_WHILE_LOCKED


@dataclass(frozen=True)
class ContractFacts:
    """Everything the document shows. Money in the loan's currency, rates in percent."""

    language: str
    contract_no: str
    loan_id: int
    issued_on: date
    template_version: str
    consent_version: str
    lender_name: str
    support_phone: str
    complaint_email: str
    complaint_hotline: str
    complaint_reply_days: int
    cooling_off_days: int
    borrower_name: str
    borrower_id_number: str  # as printed (the service passes it masked)
    borrower_phone: str  # as printed (masked)
    currency: str
    principal: Decimal
    disbursed_amount: Decimal
    start_date: date
    nominal_rate_pct: Decimal
    irr_simple_pct: Decimal
    irr_compound_pct: Decimal
    total_interest: Decimal
    total_fees: Decimal
    total_payment: Decimal
    schedule_type: str
    frequency_unit: str
    frequency_count: int
    upfront_fee: Decimal
    upfront_fee_treatment: str  # deducted / financed
    installment_fee: Decimal
    late_fee: Decimal
    late_fee_grace_days: int
    penalty_rate_pct: Decimal
    waterfall: tuple[str, ...]  # e.g. ("penalty", "fee", "interest", "principal")
    schedule: tuple[ScheduleRow, ...]
    collateral: tuple[CollateralFacts, ...] = ()

    @property
    def total_cost(self) -> Decimal:
        """Interest plus every fee: what the credit costs over the amount received."""
        return self.total_interest + self.total_fees


# -- formatting --------------------------------------------------------------------------


def money(amount: Decimal) -> str:
    """1,200.00: thousands separated, two decimals."""
    return f"{amount + 0:,.2f}"


def percent(value: Decimal) -> str:
    """A percent figure as given, without trailing zeros past the point: 12, 12.5, 12.6828."""
    text = format(value.normalize(), "f")
    return text


def ratio_pct(value: Decimal) -> str:
    """A fraction as percent: 0.85 -> 85."""
    return percent(value * HUNDRED)


def frequency_text(unit: str, count: int, language: str) -> str:
    word = FREQUENCY_UNITS[unit][language]
    if language == "zh-CN":
        if count == 1:
            return {"day": "每日", "week": "每周", "semimonth": "每半月", "month": "每月"}[unit]
        return f"每{count}{word}"
    if count == 1:
        return {"day": "daily", "week": "weekly", "semimonth": "semimonthly"}.get(unit, "monthly")
    return f"every {count} {word}s"


def _t(key: str, language: str, **params: Any) -> str:
    return TEXTS[key][language].format(**params)


def _list(items: Sequence[str], language: str) -> str:
    return "、".join(items) if language == "zh-CN" else ", ".join(items)


# -- font --------------------------------------------------------------------------------


def register_font(path: Path) -> str:
    """Register a TrueType font file (.ttf, or the first face of a .ttc) once; its name."""
    key = str(Path(path).resolve())
    with _FONTS_LOCK:
        name = _FONTS.get(key)
        if name is None:
            name = "MobilendCJK-" + hashlib.sha256(key.encode()).hexdigest()[:8]
            try:
                font = TTFont(name, key, subfontIndex=0) if key.endswith(".ttc") else None
                font = font or TTFont(name, key)
            except Exception as exc:  # ReportLab raises TTFError, OSError, ...
                raise ValidationFailed(
                    "font", "truetype", f"cannot use {key} as the contract font: {exc}"
                ) from exc
            pdfmetrics.registerFont(font)
            _FONTS[key] = name
        return name


# -- document ----------------------------------------------------------------------------


class _Styles:
    def __init__(self, font: str, language: str) -> None:
        wrap = "CJK" if language == "zh-CN" else None
        base = {"fontName": font, "wordWrap": wrap}
        self.title = ParagraphStyle("title", fontSize=16, leading=22, spaceAfter=4, **base)
        heading = {**base, "keepWithNext": 1}
        self.h2 = ParagraphStyle(
            "h2", fontSize=12.5, leading=17, spaceBefore=9, spaceAfter=4, **heading
        )
        self.h3 = ParagraphStyle("h3", fontSize=10.5, leading=15, spaceBefore=5, **heading)
        self.body = ParagraphStyle("body", fontSize=9.2, leading=13.5, spaceAfter=3, **base)
        self.small = ParagraphStyle("small", fontSize=8, leading=11, **base)
        self.cell = ParagraphStyle("cell", fontSize=8.6, leading=11.5, **base)
        self.font = font


def render(facts: ContractFacts, *, font_path: Path) -> bytes:
    """The PDF (key facts, then the agreement) in facts.language; reproducible bytes."""
    if facts.language not in LANGUAGES:
        raise ValidationFailed("language", "one-of", f"language must be one of {LANGUAGES}")
    if facts.consent_version not in CONSENT_TEXTS:
        raise ValidationFailed("consent_version", "known", "unknown consent text version")
    styles = _Styles(register_font(font_path), facts.language)
    buffer = io.BytesIO()
    title = _t("title", facts.language)
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=f"{title} {facts.contract_no}",
        author=facts.lender_name,
        subject=facts.template_version,
        creator="Mobilend",
        invariant=1,
        lang=facts.language,
    )
    story = _heading(facts, styles) + _key_facts(facts, styles) + _agreement(facts, styles)

    def footer(canvas: Any, _doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(styles.font, 7.5)
        text = _t(
            "footer",
            facts.language,
            lender=facts.lender_name,
            contract_no=facts.contract_no,
            page=canvas.getPageNumber(),
        )
        canvas.drawString(18 * mm, 9 * mm, text)
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _heading(f: ContractFacts, s: _Styles) -> list[Any]:
    lang = f.language
    line = _t(
        "heading_line",
        lang,
        contract_no=f.contract_no,
        loan_id=f.loan_id,
        issued_on=f.issued_on.isoformat(),
        template=f.template_version,
    )
    parties = _t(
        "parties",
        lang,
        lender=f.lender_name,
        borrower=f.borrower_name,
        id_number=f.borrower_id_number,
        phone=f.borrower_phone,
    )
    return [_p(_t("title", lang), s.title), _p(line, s.small), Spacer(1, 3), _p(parties, s.body)]


def _device(c: CollateralFacts, lang: str) -> str:
    custody = _t(f"custody_{c.custody_mode}", lang)
    return _t("kf_collateral_value", lang, device=c.device, custody=custody)


def _key_facts(f: ContractFacts, s: _Styles) -> list[Any]:
    lang = f.language
    rows = f.schedule
    penalty = (
        _t("kf_penalty_value", lang, rate=percent(f.penalty_rate_pct))
        if f.penalty_rate_pct > 0
        else _t("kf_penalty_none", lang)
    )
    late_fee = (
        _t("kf_late_fee_value", lang, amount=money(f.late_fee), days=f.late_fee_grace_days)
        if f.late_fee > 0
        else _t("kf_penalty_none", lang)
    )
    security = (
        "; ".join(_device(c, lang) for c in f.collateral)
        if f.collateral
        else _t("kf_collateral_none", lang)
    )
    repayment = _t(
        "kf_repayment_value",
        lang,
        schedule=SCHEDULE_NAMES[f.schedule_type][lang],
        periods=len(rows),
        frequency=frequency_text(f.frequency_unit, f.frequency_count, lang),
        first_due=rows[0].due_date.isoformat() if rows else "-",
        last_due=rows[-1].due_date.isoformat() if rows else "-",
    )
    facts = [
        ("kf_principal", money(f.principal)),
        ("kf_disbursed", money(f.disbursed_amount)),
        ("kf_nominal", f"{percent(f.nominal_rate_pct)}%"),
        ("kf_irr_simple", f"{percent(f.irr_simple_pct)}%"),
        ("kf_irr_compound", f"{percent(f.irr_compound_pct)}%"),
        ("kf_total_interest", money(f.total_interest)),
        ("kf_total_fees", money(f.total_fees)),
        ("kf_total_cost", money(f.total_cost)),
        ("kf_total_payment", money(f.total_payment)),
        ("kf_repayment", repayment),
        ("kf_penalty", penalty),
        ("kf_late_fee", late_fee),
        ("kf_collateral", security),
        ("kf_cooling_off", _t("kf_cooling_off_value", lang, days=f.cooling_off_days)),
        (
            "kf_complaints",
            _t(
                "kf_complaints_value",
                lang,
                phone=f.support_phone,
                email=f.complaint_email,
                hotline=f.complaint_hotline,
            ),
        ),
    ]
    table = Table(
        [[_p(_t(k, lang), s.cell), _p(v, s.cell)] for k, v in facts],
        colWidths=[58 * mm, 116 * mm],
    )
    table.setStyle(_grid(header=False))
    return [
        _p(_t("kfs_title", lang), s.h2),
        _p(_t("kfs_intro", lang, currency=f.currency), s.body),
        table,
        Spacer(1, 3),
        _p(_t("irr_note", lang), s.small),
        _p(_t("schedule_title", lang), s.h3),
        _schedule_table(f, s),
        _p(_t("fees_title", lang), s.h3),
        *[_p(text, s.body) for text in _fee_lines(f)],
    ]


def _grid(*, header: bool) -> TableStyle:
    commands: list[Any] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.92, 0.92, 0.92)))
    else:
        commands.append(("BACKGROUND", (0, 0), (0, -1), colors.Color(0.95, 0.95, 0.95)))
    return TableStyle(commands)


def _schedule_table(f: ContractFacts, s: _Styles) -> Table:
    lang = f.language
    heads = ("col_number", "col_due", "col_principal", "col_interest", "col_fee", "col_total")
    data: list[list[str]] = [[_t(h, lang) for h in (*heads, "col_balance")]]
    for r in f.schedule:
        data.append(
            [
                str(r.number),
                r.due_date.isoformat(),
                money(r.principal),
                money(r.interest),
                money(r.fee),
                money(r.total),
                money(r.balance),
            ]
        )
    data.append(
        [
            _t("row_sum", lang),
            "",
            money(sum((r.principal for r in f.schedule), Decimal(0))),
            money(sum((r.interest for r in f.schedule), Decimal(0))),
            money(sum((r.fee for r in f.schedule), Decimal(0))),
            money(sum((r.total for r in f.schedule), Decimal(0))),
            "",
        ]
    )
    widths = [14 * mm, 26 * mm, 27 * mm, 25 * mm, 22 * mm, 30 * mm, 30 * mm]
    table = Table(data, colWidths=widths, repeatRows=1)
    style = _grid(header=True)
    style.add("FONTNAME", (0, 0), (-1, -1), s.font)
    style.add("FONTSIZE", (0, 0), (-1, -1), 8.6)
    style.add("ALIGN", (2, 1), (-1, -1), "RIGHT")
    table.setStyle(style)
    return table


def _fee_lines(f: ContractFacts) -> list[str]:
    lang = f.language
    lines = []
    if f.upfront_fee > 0:
        key = f"fee_upfront_{f.upfront_fee_treatment}"
        lines.append(_t(key, lang, amount=money(f.upfront_fee)))
    if f.installment_fee > 0:
        lines.append(_t("fee_installment", lang, amount=money(f.installment_fee)))
    if f.late_fee > 0:
        lines.append(_t("fee_late", lang, amount=money(f.late_fee), days=f.late_fee_grace_days))
    if not lines:
        lines.append(_t("fee_none", lang))
    lines.append(_t("fee_no_other", lang))
    return lines


def _waterfall(f: ContractFacts) -> str:
    names = [_t(f"waterfall_{part}", f.language) for part in f.waterfall]
    return " → ".join(names)


def _agreement(f: ContractFacts, s: _Styles) -> list[Any]:
    lang = f.language
    clauses = [
        _t(
            "c_loan",
            lang,
            principal=money(f.principal),
            start=f.start_date.isoformat(),
            disbursed=money(f.disbursed_amount),
        ),
        _t(
            "c_interest",
            lang,
            nominal=percent(f.nominal_rate_pct),
            simple=percent(f.irr_simple_pct),
            compound=percent(f.irr_compound_pct),
            interest=money(f.total_interest),
            cost=money(f.total_cost),
        ),
        _t("c_allocation", lang, waterfall=_waterfall(f)),
        _t("c_prepayment", lang),
        _late_clause(f),
    ]
    story: list[Any] = [_p(_t("agreement_title", lang), s.h2)]
    story += [_p(f"{n}. {text}", s.body) for n, text in enumerate(clauses, start=1)]
    story.append(_p(_t("collateral_title", lang), s.h3))
    story += [_p(text, s.body) for text in _collateral_clauses(f)]
    story.append(_p(_t("default_title", lang), s.h3))
    if f.collateral:
        liquidation = ratio_pct(min(c.liquidation_ltv for c in f.collateral))
        default = _t("c_default_secured", lang, liquidation=liquidation, waterfall=_waterfall(f))
    else:
        default = _t("c_default_unsecured", lang)
    story.append(_p(default, s.body))
    story.append(_p(_t("cooling_title", lang), s.h3))
    story += [
        _p(_t("c_cooling_off", lang, days=f.cooling_off_days, phone=f.support_phone), s.body),
        _p(
            _t(
                "c_complaints",
                lang,
                lender=f.lender_name,
                phone=f.support_phone,
                email=f.complaint_email,
                reply_days=f.complaint_reply_days,
                hotline=f.complaint_hotline,
            ),
            s.body,
        ),
        _p(_t("c_privacy", lang), s.body),
        _p(_t("c_signature", lang), s.body),
    ]
    consent = [
        _p(_t("consent_title", lang, version=f.consent_version), s.h3),
        _p(CONSENT_TEXTS[f.consent_version][lang], s.body),
    ]
    story.append(KeepTogether(consent))
    return story


def _late_clause(f: ContractFacts) -> str:
    lang = f.language
    penalty = (
        _t("c_late_penalty", lang, rate=percent(f.penalty_rate_pct))
        if f.penalty_rate_pct > 0
        else ""
    )
    fee = (
        _t("c_late_fee", lang, amount=money(f.late_fee), days=f.late_fee_grace_days)
        if f.late_fee > 0
        else ""
    )
    if not penalty and not fee:
        return _t("c_late", lang, penalty="", late_fee=_t("c_late_nothing", lang))
    return _t("c_late", lang, penalty=penalty, late_fee=fee)


def _collateral_clauses(f: ContractFacts) -> list[str]:
    lang = f.language
    if not f.collateral:
        return [_t("c_unsecured", lang)]
    out: list[str] = []
    for c in f.collateral:
        out.append(
            _t(
                "c_pledge",
                lang,
                device=c.device,
                storage=c.storage_gb,
                imei=c.imei,
                grade=c.grade,
                value=money(c.value),
                lending_value=money(c.lending_value),
            )
        )
        if c.custody_mode == "pawn":
            out.append(_t("c_custody_pawn", lang, location=c.location or "-"))
        else:
            out.append(_t("c_custody_device_lock", lang))
        out.append(
            _t(
                "c_ltv",
                lang,
                warning=ratio_pct(c.warning_ltv),
                margin_call=ratio_pct(c.margin_call_ltv),
                days=c.margin_call_days,
                max_ltv=ratio_pct(c.max_ltv),
                liquidation=ratio_pct(c.liquidation_ltv),
            )
        )
        if c.custody_mode == "device_lock":
            usable = [
                USABLE_WHILE_LOCKED[k][lang].format(support_phone=f.support_phone)
                for k in c.usable_while_locked
            ]
            reminders = _list([str(d) for d in c.reminder_days_before], lang)
            out.append(
                _t(
                    "c_lock_what",
                    lang,
                    grace=c.lock_after_grace_days,
                    usable=_list(usable, lang),
                    offline=c.offline_lock_days,
                    reminders=reminders or "-",
                )
            )
            out.append(_t("c_lock_data", lang))
    return out
