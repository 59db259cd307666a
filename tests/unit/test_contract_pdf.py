"""The contract PDF (ReportLab) and the lender's PAdES signature (pyHanko).

Text is read back the way a PDF reader does it (pyHanko's file reader, a content-stream
tokenizer written here and the fonts' ToUnicode maps: `pdf_text`), never from ReportLab's
input. Signatures are judged by pyHanko's own
`validate_pdf_signature` against the development CA (`pyhanko_status`), not by our code.
The schedule figures are the hand-calculated loan of tests/integration/test_loan_lifecycle.py.
"""

from __future__ import annotations

import io
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko_certvalidator import ValidationContext
from tests.ocr_cards import IN_CI

from mobilend.collateral.agent import LOCKED_ALLOWLIST
from mobilend.trust import contract_pdf, contract_texts, pades
from mobilend.trust.contract_pdf import CollateralFacts, ContractFacts, ScheduleRow
from mobilend.trust.contracts import find_cjk_font

D = Decimal
NOW = datetime(2025, 1, 15, 4, tzinfo=UTC)


# -- reading a PDF back (pyHanko's parser; no ReportLab) ---------------------------------


def _pages(node: Any) -> Iterator[Any]:
    if node["/Type"] == "/Pages":
        for kid in node["/Kids"]:
            yield from _pages(kid.get_object())
    else:
        yield node


def _unicode_map(font: Any) -> dict[int, str] | None:
    if "/ToUnicode" not in font:
        return None
    cmap = font["/ToUnicode"].data.decode("latin-1")
    found: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            found[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(r"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
            for offset, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                found[code] = chr(int(dst, 16) + offset)
    return found


_WHITE = b" \t\r\n\x0c\x00"
_DELIMITERS = b"()<>[]{}/%"
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}


def _literal(data: bytes, i: int) -> tuple[bytes, int]:
    """A (...) string starting at data[i] == '(': its bytes and the index after it."""
    out, depth, i = bytearray(), 1, i + 1
    while True:
        c = data[i]
        if c == ord("\\"):
            nxt = data[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif ord("0") <= nxt <= ord("7"):
                j = i + 1
                while j < i + 4 and ord("0") <= data[j] <= ord("7"):
                    j += 1
                out.append(int(data[i + 1 : j], 8) & 0xFF)
                i = j
            elif nxt in (10, 13):  # a line continuation
                i += 2
            else:  # \( \) \\ and any other character stand for themselves
                out.append(nxt)
                i += 2
            continue
        depth += {ord("("): 1, ord(")"): -1}.get(c, 0)
        if depth == 0:
            return bytes(out), i + 1
        out.append(c)
        i += 1


def _operations(data: bytes) -> Iterator[tuple[str, list[Any]]]:
    """(operator, operands) of a content stream: strings as bytes, names as str, arrays as
    lists; enough of ISO 32000-1 7.8.2 for text (no inline images)."""
    operands: list[Any] = []
    arrays: list[list[Any]] = []
    i, n = 0, len(data)
    while i < n:
        c = data[i : i + 1]
        value: Any
        if c in _WHITE:
            i += 1
            continue
        if c == b"%":
            while i < n and data[i] not in (10, 13):
                i += 1
            continue
        if c == b"(":
            value, i = _literal(data, i)
        elif c == b"<" and data[i + 1 : i + 2] != b"<":
            j = data.index(b">", i)
            value, i = bytes.fromhex(data[i + 1 : j].decode("ascii")), j + 1
        elif c in (b"[", b"]"):
            i += 1
            if c == b"[":
                arrays.append([])
                continue
            value = arrays.pop()
        else:
            j = i + 1
            while j < n and data[j] not in _WHITE and data[j] not in _DELIMITERS:
                j += 1
            if c == b"/":
                while j < n and data[j] not in _WHITE and data[j] not in _DELIMITERS:
                    j += 1
            word, i = data[i:j].decode("latin-1"), j
            if word.startswith("/"):
                value = word
            elif re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", word):
                value = float(word)
            else:  # an operator (<< >> dictionaries do not occur in ReportLab's text)
                yield word, operands
                operands = []
                continue
        (arrays[-1] if arrays else operands).append(value)


def _shown(operator: str, operands: list[Any]) -> list[bytes]:
    if operator in ("Tj", "'", '"'):
        return [operands[-1]]
    if operator == "TJ":
        return [part for part in operands[0] if isinstance(part, bytes)]
    return []


def _page_streams(page: Any) -> bytes:
    contents = page.raw_get("/Contents").get_object()
    parts = contents if isinstance(contents, generic.ArrayObject) else [contents]
    return b"\n".join(part.get_object().data for part in parts)


_NEW_LINE = ("ET", "T*", "Td", "TD", "Tm", "'", '"')


def _shows(data: bytes) -> Iterator[tuple[Any, bytes | None]]:
    """(font dictionary, shown bytes) for every string a page shows, in order; (None, None)
    where the text moves to a new line."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    for page in _pages(reader.root["/Pages"]):
        fonts = page["/Resources"]["/Font"]
        font = None
        for operator, operands in _operations(_page_streams(page)):
            if operator in _NEW_LINE:
                yield None, None
            if operator == "Tf":
                font = fonts[operands[0]]
            for raw in _shown(operator, operands):
                assert font is not None
                yield font, raw


def pdf_text(data: bytes) -> str:
    """The text shown on every page, a new line wherever the text position moves."""
    parts = []
    for font, raw in _shows(data):
        if raw is None:
            parts.append("\n")
            continue
        mapping = _unicode_map(font)
        assert mapping is not None, f"font {font['/BaseFont']} has no ToUnicode map"
        parts.append("".join(mapping.get(b, "\ufffd") for b in raw))
    return re.sub(r"\n+", "\n", "".join(parts))


def used_fonts(data: bytes) -> dict[str, bool]:
    """BaseFont -> embedded, for every font that shows text."""
    out: dict[str, bool] = {}
    for font, raw in _shows(data):
        if raw is None:
            continue
        descriptor = font.get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else None
        embedded = descriptor is not None and any(
            k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")
        )
        out[str(font["/BaseFont"])] = embedded
    return out


def pyhanko_status(data: bytes, ca_file: Path) -> Any:
    """pyHanko's own validation of the last signature against one trusted root."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    root = load_cert_from_pemder(str(ca_file))
    context = ValidationContext(trust_roots=[root], allow_fetching=False)
    return validate_pdf_signature(reader.embedded_signatures[-1], context)


def cjk_font() -> Path:
    try:
        return find_cjk_font()
    except Exception as exc:  # no font on this machine
        message = f"{exc}: run scripts/system-deps.sh (fonts-wqy-microhei)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


# -- facts: 1200 at 12% for 3 months (hand calculation in test_loan_lifecycle.py) -------

SCHEDULE = (
    ScheduleRow(1, date(2025, 2, 15), D("396.03"), D("12.00"), D("0.00"), D("408.03"), D("803.97")),
    ScheduleRow(2, date(2025, 3, 15), D("399.99"), D("8.04"), D("0.00"), D("408.03"), D("403.98")),
    ScheduleRow(3, date(2025, 4, 15), D("403.98"), D("4.04"), D("0.00"), D("408.02"), D("0.00")),
)
PHONE = CollateralFacts(
    device="Apple iPhone 13",
    storage_gb=128,
    imei="351044630000019",
    grade="good",
    custody_mode="device_lock",
    location=None,
    value=D("2500.00"),
    lending_value=D("2000.00"),
    max_ltv=D("0.80"),
    warning_ltv=D("0.85"),
    margin_call_ltv=D("0.90"),
    liquidation_ltv=D("1.00"),
    margin_call_days=7,
    lock_after_grace_days=4,
    offline_lock_days=7,
    reminder_days_before=(3, 1),
    usable_while_locked=LOCKED_ALLOWLIST,
)


def facts(language: str, **over: Any) -> ContractFacts:
    values: dict[str, Any] = dict(
        language=language,
        contract_no="MLC-00000001",
        loan_id=1,
        issued_on=date(2025, 1, 15),
        template_version=contract_texts.TEMPLATE_VERSION,
        consent_version=contract_texts.CONSENT_VERSION,
        lender_name="Mobilend",
        support_phone="400-000-0000",
        complaint_email="complaints@mobilend.example",
        complaint_hotline="12378",
        complaint_reply_days=15,
        cooling_off_days=7,
        borrower_name="张三",
        borrower_id_number="110105********123X",
        borrower_phone="139****5678",
        currency="CNY",
        principal=D("1200.00"),
        disbursed_amount=D("1200.00"),
        start_date=date(2025, 1, 15),
        nominal_rate_pct=D("12"),
        # r solves 1200 = 408.03 v + 408.03 v^2 + 408.02 v^3 (v = 1 / (1 + r)); bisection
        # gives r = 1.000020614 % a month: simple 12 r = 12.0002 %, (1 + r)^12 - 1 = 12.6828 %
        irr_simple_pct=D("12.0002"),
        irr_compound_pct=D("12.6828"),
        total_interest=D("24.08"),
        total_fees=D("0.00"),
        total_payment=D("1224.08"),
        schedule_type="annuity",
        frequency_unit="month",
        frequency_count=1,
        upfront_fee=D("0.00"),
        upfront_fee_treatment="deducted",
        installment_fee=D("0"),
        late_fee=D("20"),
        late_fee_grace_days=3,
        penalty_rate_pct=D("18"),
        waterfall=("penalty", "fee", "interest", "principal"),
        schedule=SCHEDULE,
        collateral=(PHONE,),
    )
    values.update(over)
    return ContractFacts(**values)


FIGURES = ("1,200.00", "408.03", "408.02", "803.97", "403.98", "12.0002%", "12.6828%", "24.08")


def test_chinese_contract_text_and_embedded_font() -> None:
    pdf = contract_pdf.render(facts("zh-CN"), font_path=cjk_font())
    text = pdf_text(pdf).replace("\n", "")  # Chinese lines wrap anywhere, with no space
    for figure in (*FIGURES, "1,224.08", "2025-04-15", "18%", "20.00"):
        assert figure in text, figure
    for term in ("借款合同及关键信息摘要", "年化利率（IRR，单利）", "年化利率（IRR，复利）"):
        assert term in text, term
    for term in ("借款总成本", "罚息", "还款计划", "质押", "紧急呼叫", "冷静期", "12378"):
        assert term in text, term
    assert "张三" in text and "110105********123X" in text  # the contract names its borrower
    assert "补仓" in text and "85%" in text and "90%" in text and "100%" in text  # LTV
    assert "归借款人所有" in text  # a surplus is returned
    fonts = used_fonts(pdf)
    assert fonts and all(fonts.values()), fonts  # every font that shows text is embedded
    assert not any("STSong" in name for name in fonts)
    assert all(name.split("+")[-1].startswith("WenQuanYi") for name in fonts), fonts


def test_english_contract_text() -> None:
    pdf = contract_pdf.render(facts("en"), font_path=cjk_font())
    text = pdf_text(pdf).replace("\n", " ")  # English lines wrap between words
    for figure in FIGURES:
        assert figure in text, figure
    for term in (
        "Loan Agreement and Key Facts Statement",
        "Annualized rate by IRR (simple)",
        "Annualized rate by IRR (compound)",
        "Total cost of credit (interest + fees)",
        "Penalty interest",
        "Cooling-off period",
        "emergency calls",
        "Device lock.",
    ):
        assert term in text, term
    assert "年化利率" not in text  # one language per document
    assert "张三" in text  # the name as registered, in Chinese characters


def test_unsecured_and_pawn_terms() -> None:
    font = cjk_font()
    text = pdf_text(contract_pdf.render(facts("zh-CN", collateral=()), font_path=font))
    text = text.replace("\n", "")
    assert "无（信用借款）" in text and "紧急呼叫" not in text
    pawn = PHONE.__class__(**{**PHONE.__dict__, "custody_mode": "pawn", "location": "Store 1"})
    text = pdf_text(contract_pdf.render(facts("en", collateral=(pawn,)), font_path=font))
    text = text.replace("\n", " ")
    assert "held by the lender" in text and "Store 1" in text and "emergency calls" not in text


def test_rendering_is_reproducible() -> None:
    font = cjk_font()
    first = contract_pdf.render(facts("zh-CN"), font_path=font)
    assert contract_pdf.render(facts("zh-CN"), font_path=font) == first
    assert contract_pdf.render(facts("zh-CN", loan_id=2), font_path=font) != first


def test_every_text_in_both_languages_with_the_same_fields() -> None:
    import string

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    tables = (
        contract_texts.TEXTS,
        contract_texts.CONSENT_TEXTS,
        contract_texts.USABLE_WHILE_LOCKED,
    )
    for table in tables:
        for key, texts in table.items():
            assert set(texts) == set(contract_texts.LANGUAGES), key
            assert fields(texts["zh-CN"]) == fields(texts["en"]), key
    assert set(contract_texts.USABLE_WHILE_LOCKED) == set(LOCKED_ALLOWLIST)


# -- PAdES -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """A draft and its signed copy, with the development PKI in a data_dir of its own."""
    data_dir = tmp_path_factory.mktemp("data")
    draft = contract_pdf.render(facts("zh-CN"), font_path=cjk_font())
    config = pades.PadesConfig()
    out = pades.sign(
        draft,
        signer=pades.signer_for(config, data_dir, now=NOW),
        timestamper=pades.timestamper_for(config, data_dir, now=NOW),
        reason="test",
        location="Mobilend",
    )
    return data_dir, draft, out


def test_signature_validates_with_pyhanko(signed: tuple[Path, bytes, bytes]) -> None:
    data_dir, draft, out = signed
    assert out.startswith(draft)  # an incremental update: the draft's bytes are kept
    status = pyhanko_status(out, data_dir / "contract-pki" / "ca-cert.pem")
    assert status.bottom_line and status.intact and status.valid and status.trusted
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    assert status.timestamp_validity.timestamp == NOW  # the development TSA stamps `now`
    assert "Mobilend lender" in status.signing_cert.subject.human_friendly
    ours = pades.validate(out, roots=pades.trust_roots(pades.PadesConfig(), data_dir))
    assert ours.ok and ours.bottom_line and ours.covers_whole_file


def test_flipped_byte_is_not_intact(signed: tuple[Path, bytes, bytes]) -> None:
    data_dir, _, out = signed
    stream = out.index(b"stream", len(out) // 4)  # inside a page's content, signed bytes
    broken = bytearray(out)
    broken[stream + 40] ^= 0x01
    status = pyhanko_status(bytes(broken), data_dir / "contract-pki" / "ca-cert.pem")
    assert not status.intact and not status.bottom_line
    ours = pades.validate(bytes(broken), roots=pades.trust_roots(pades.PadesConfig(), data_dir))
    assert not ours.intact and not ours.bottom_line and not ours.ok


def test_damaged_signature_contents_is_reported_not_raised(
    signed: tuple[Path, bytes, bytes],
) -> None:
    data_dir, _, out = signed
    start = out.rindex(b"/Contents <") + len(b"/Contents <")
    broken = out[:start] + b"00" * 64 + out[start + 128 :]
    with pytest.raises((SignatureValidationError, ValueError)):
        pyhanko_status(broken, data_dir / "contract-pki" / "ca-cert.pem")
    ours = pades.validate(broken, roots=pades.trust_roots(pades.PadesConfig(), data_dir))
    assert ours.present and not ours.bottom_line and ours.problem


def test_another_ca_is_untrusted(signed: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    data_dir, draft, _ = signed
    other_dir = tmp_path / "other"
    config = pades.PadesConfig()
    by_other = pades.sign(
        draft,
        signer=pades.signer_for(config, other_dir, now=NOW),
        timestamper=pades.timestamper_for(config, other_dir, now=NOW),
        reason="test",
        location="elsewhere",
    )
    status = pyhanko_status(by_other, data_dir / "contract-pki" / "ca-cert.pem")
    assert status.intact and status.valid and not status.trusted and not status.bottom_line
    ours = pades.validate(by_other, roots=pades.trust_roots(config, data_dir))
    assert ours.intact and not ours.trusted and not ours.ok
    assert pades.validate(by_other, roots=pades.trust_roots(config, other_dir)).ok


def test_dev_pki_is_made_once_with_private_keys_0600(tmp_path: Path) -> None:
    first = pades.dev_pki(tmp_path, now=NOW)
    ca = first.ca_cert.read_bytes()
    for name in ("ca-key.pem", "lender-key.pem", "tsa-key.pem"):
        assert stat.S_IMODE(os.stat(first.path(name)).st_mode) == 0o600, name
    assert pades.dev_pki(tmp_path, now=NOW).ca_cert.read_bytes() == ca
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_configured_certificate_and_roots_from_the_environment(tmp_path: Path) -> None:
    """A 'real' certificate given as PEM key + cert (here the development one, copied)."""
    made = pades.dev_pki(tmp_path / "dev", now=NOW)
    env = {
        "MOBILEND_CONTRACT_SIGNER_KEY": str(made.path("lender-key.pem")),
        "MOBILEND_CONTRACT_SIGNER_CERT": str(made.path("lender-cert.pem")),
        "MOBILEND_CONTRACT_SIGNER_CHAIN": str(made.ca_cert),
        "MOBILEND_CONTRACT_TRUST_ROOTS": str(made.ca_cert),
    }
    config = pades.config_from_env(env)
    assert config.real_signer and config.tsa_url is None
    signer = pades.signer_for(config, tmp_path / "unused", now=NOW)
    assert signer.signing_cert is not None
    assert not (tmp_path / "unused" / "contract-pki").exists()  # no dev key for the signer
    roots = pades.trust_roots(config, tmp_path / "unused")
    assert [r.sha256 for r in roots] == [load_cert_from_pemder(str(made.ca_cert)).sha256]
    bad = {**env, "MOBILEND_CONTRACT_SIGNER_KEY": str(made.ca_cert)}  # not a key
    with pytest.raises(Exception, match="cannot load the contract signing key"):
        pades.signer_for(pades.config_from_env(bad), tmp_path, now=NOW)
    with pytest.raises(Exception, match="needs"):
        pades.config_from_env({"MOBILEND_CONTRACT_SIGNER_KEY": "k.pem"})
