"""Read the front side of a Chinese resident ID card (居民身份证) with offline OCR.

Image bytes in, an `IdCardReading` out; no database, no clock, no network. The engine is
RapidOCR (PP-OCRv4 Chinese detection and recognition models shipped inside the
`rapidocr-onnxruntime` wheel), created once per process on first use and shared by all threads.

Parsing uses the card's printed labels (姓名 性别 民族 出生 住址 公民身份号码) and geometry: the
text boxes are first de-skewed by the median angle of the detected lines, then a label's value is
the text after it in the same box, plus the boxes to its right on the same row; the address also
takes the left-aligned lines below it. The ID number is checked with `stdnum.cn.ric`; one whose
check fails is repaired only when exactly one substitution among common OCR digit confusions
gives a valid number (`id_number_repaired`, confidence halved). `cross_check` compares a reading
with what the applicant typed. See docs/ocr.md for accuracy, timings and limits.
"""

from __future__ import annotations

import io
import math
import os
import re
import statistics
import threading
import time
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps
from stdnum.cn import ric

from mobilend.core.errors import ValidationFailed
from mobilend.origination.pii import mask_id_number

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_WIDTH, MIN_HEIGHT = 400, 250  # a card at 856x540 reads well; below this text is ~10 px
MAX_SIDE = 1280  # larger images are scaled down first: detection time grows with the area
# ONNX Runtime threads per inference. 1 wastes no CPU spinning when several processes (test
# workers, API workers) share 2 cores; raise it for lower latency on an idle many-core server.
ENGINE_THREADS = int(os.environ.get("MOBILEND_OCR_THREADS", "1"))
ADDRESS_SIMILARITY = 0.85  # difflib ratio on normalized text: about 1 wrong char in 7
FIELDS = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")
LABELS = {"姓名": "name", "性别": "sex", "民族": "ethnicity", "出生": "birth_date"}
LABELS |= {"住址": "address", "公民身份号码": "id_number", "公民身份号": "id_number"}
_LABEL_RE = re.compile("|".join(sorted(LABELS, key=len, reverse=True)))
_BACK_SIDE = ("签发机关", "有效期限")
# The 56 recognised groups, as printed after 民族.
_GROUPS = (
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 "
    "怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺"
)
ETHNIC_GROUPS = frozenset(_GROUPS.split())
# Digits the recognizer confuses with each other (and letters read for digits).
_CONFUSABLE = {
    "0": "689",
    "1": "74",
    "2": "7",
    "3": "85",
    "4": "1",
    "5": "63",
    "6": "508",
    "7": "12",
    "8": "0369X",
    "9": "80",
    "X": "8",
}
_AS_DIGIT = str.maketrans({"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5"})
_AS_DIGIT |= str.maketrans({"B": "8", "×": "X", "G": "6"})
_ID_RE = re.compile(r"\d{17}[\dX]")


@dataclass(frozen=True)
class OcrLine:
    """One detected text box: text, recognizer score in [0, 1], four corners (x, y)."""

    text: str
    score: float
    box: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class IdCardReading:
    name: str | None
    id_number: str | None  # 18 characters as read (or repaired); None when none was found
    id_number_valid: bool  # passes stdnum.cn.ric (checksum, birth date, region code)
    id_number_repaired: bool
    address: str | None  # the address lines joined without separators
    sex: str | None  # 男 / 女
    ethnicity: str | None  # 汉, 回, ... (without 族)
    birth_date: date | None
    confidence: dict[str, float]  # per field in FIELDS; 0.0 when not read
    lines: tuple[OcrLine, ...]  # raw OCR output, top to bottom (contains the ID number)
    warnings: tuple[str, ...] = ()

    @property
    def id_number_masked(self) -> str | None:
        return mask_id_number(self.id_number) if self.id_number else None


FieldStatus = Literal["match", "mismatch", "unread", "not_given"]


@dataclass(frozen=True)
class CrossCheck:
    name: FieldStatus
    id_number: FieldStatus
    address: FieldStatus
    address_similarity: float | None  # difflib ratio, None when not compared
    mismatch: bool  # any compared field mismatched or could not be read

    @property
    def fields(self) -> dict[str, FieldStatus]:
        return {"name": self.name, "id_number": self.id_number, "address": self.address}


# ------------------------------------------------------------------ the engine

_engine: Any = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()
_load_seconds: float | None = None


def get_engine() -> Any:
    """The process-wide RapidOCR engine, created on first use (thread-safe)."""
    global _engine, _load_seconds
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                started = time.perf_counter()
                from rapidocr_onnxruntime import RapidOCR

                # "max": detection at 960 px on the long side for card-sized images (the
                # default "min" 736 upscales a 856x540 card to 1167x736 for no gain).
                _engine = RapidOCR(
                    intra_op_num_threads=ENGINE_THREADS,
                    inter_op_num_threads=1,
                    det_limit_type="max",
                )
                _load_seconds = time.perf_counter() - started
    return _engine


def engine_load_seconds() -> float | None:
    """How long creating the engine took in this process (None before first use)."""
    return _load_seconds


def run_ocr(image: np.ndarray) -> list[OcrLine]:
    """Detected lines for a BGR image. Calls are serialized: RapidOCR keeps per-call state on
    the engine (the detector's resize step), so two threads must not run it at once."""
    engine = get_engine()
    with _run_lock:
        result, _ = engine(image)
    lines = []
    for box, text, score in result or []:
        corners = tuple((float(x), float(y)) for x, y in box)
        lines.append(OcrLine(str(text), float(score), corners))
    return lines


# ------------------------------------------------------------------ image checks


def load_image(data: bytes) -> np.ndarray:
    """Decode, apply EXIF orientation, check size; BGR uint8 array for the engine."""
    if not data:
        raise ValidationFailed("image", "image-required", "the image is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailed(
            "image", "image-too-large", f"the image is larger than {MAX_IMAGE_BYTES} bytes"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data))
            if img.width * img.height > MAX_PIXELS:
                raise ValidationFailed(
                    "image", "image-too-large", f"the image has more than {MAX_PIXELS} pixels"
                )
            img = ImageOps.exif_transpose(img)
            img.load()
    except ValidationFailed:
        raise
    except (OSError, ValueError, SyntaxError, Warning, Image.DecompressionBombError) as exc:
        raise ValidationFailed(
            "image", "image-format", "not a readable image (JPEG, PNG or WebP expected)"
        ) from exc
    if max(img.size) < MIN_WIDTH or min(img.size) < MIN_HEIGHT:  # portrait is fine too
        raise ValidationFailed(
            "image",
            "image-too-small",
            f"the image is {img.width}x{img.height}; at least {MIN_WIDTH}x{MIN_HEIGHT} "
            "pixels are needed to read an ID card",
        )
    img = img.convert("RGB")
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    rgb = np.asarray(img)
    return np.ascontiguousarray(rgb[:, :, ::-1])


# ------------------------------------------------------------------ reading


def read_id_card(image: bytes) -> IdCardReading:
    """Read name, ID number, address (and sex, ethnicity, birth date) from a card's front side.

    Raises ValidationFailed(field "image") for a non-image, a too small or too large image, the
    back side of a card, or an image with no ID-card text at all."""
    img = load_image(image)
    lines = run_ocr(img)
    if _mostly_vertical(lines):  # a sideways photo without EXIF orientation: turn it
        img = np.ascontiguousarray(np.rot90(img))
        lines = run_ocr(img)
    if _upside_down(lines):  # each line reads right (the angle model), the layout does not
        lines = run_ocr(np.ascontiguousarray(img[::-1, ::-1]))
    return parse_lines(lines)


def _mostly_vertical(lines: list[OcrLine]) -> bool:
    tall = sum(
        math.dist(ln.box[1], ln.box[2]) > 1.5 * math.dist(ln.box[0], ln.box[1]) for ln in lines
    )
    wide = sum(
        math.dist(ln.box[0], ln.box[1]) > 1.5 * math.dist(ln.box[1], ln.box[2]) for ln in lines
    )
    return tall > wide


def _upside_down(lines: list[OcrLine]) -> bool:
    """The ID-number label is the card's lowest: above another label means turned 180°."""
    labels = {b.label: b for b in _deskewed(lines) if b.label}
    bottom = labels.pop("id_number", None)
    return bottom is not None and any(b.cy > bottom.cy for b in labels.values())


@dataclass
class _Box:
    line: OcrLine
    text: str  # normalized: NFKC, no whitespace
    x0: float
    x1: float
    y0: float
    y1: float
    label: str | None = None  # the field this box's leading label names
    rest: str = ""  # text after the label(s) in this box
    extra: list[tuple[str, str]] = field(default_factory=list)  # further labels in the box

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def h(self) -> float:
        return self.y1 - self.y0


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), no whitespace, upper case."""
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def parse_lines(lines: list[OcrLine]) -> IdCardReading:
    """Turn OCR lines into a reading (pure: no engine; tests call it with made-up lines)."""
    boxes = _deskewed(lines)
    all_text = "".join(b.text for b in boxes)
    labelled = [b for b in boxes if b.label]
    if any(word in all_text for word in _BACK_SIDE) and not labelled:
        raise ValidationFailed(
            "image", "id-card-front", "this is the back side of the card: upload the front side"
        )
    values: dict[str, tuple[str, float]] = {}
    for b in labelled:
        segments = [(b.label or "", b.rest), *b.extra]
        for i, (fname, inline) in enumerate(segments):
            if fname in values:
                continue
            pieces: list[tuple[str, float]] = [(inline, b.line.score)] if inline else []
            if i == len(segments) - 1:  # boxes to the right belong to the box's last label
                pieces += [(r.text, r.line.score) for r in _row_right_of(b, boxes)]
            if fname == "address":
                pieces += [(r.text, r.line.score) for r in _address_continuation(b, boxes)]
            if pieces:
                values[fname] = ("".join(p for p, _ in pieces), min(s for _, s in pieces))
    id_number, valid, repaired, id_score = _find_id_number(boxes, values.get("id_number"))
    if not labelled and id_number is None:
        raise ValidationFailed(
            "image",
            "id-card-front",
            "no ID-card text found: upload a sharp, well-lit photo of the front side",
        )
    confidence = {f: 0.0 for f in FIELDS}
    name = _clean_name(values["name"][0]) if "name" in values else None
    sex = _first_of(values.get("sex", ("", 0))[0], "男女")
    ethnicity = _clean_ethnicity(values["ethnicity"][0]) if "ethnicity" in values else None
    birth = _parse_birth(values["birth_date"][0]) if "birth_date" in values else None
    address = _clean_address(values["address"][0]) if "address" in values else None
    for fname, got in (
        ("name", name),
        ("sex", sex),
        ("ethnicity", ethnicity),
        ("birth_date", birth),
        ("address", address),
    ):
        if got:
            confidence[fname] = round(values[fname][1], 4)
    if id_number:
        confidence["id_number"] = round(id_score / 2 if repaired else id_score, 4)
    return IdCardReading(
        name=name,
        id_number=id_number,
        id_number_valid=valid,
        id_number_repaired=repaired,
        address=address,
        sex=sex,
        ethnicity=ethnicity,
        birth_date=birth,
        confidence=confidence,
        lines=tuple(b.line for b in sorted(boxes, key=lambda b: (round(b.cy / 20), b.x0))),
        warnings=tuple(_consistency(id_number if valid else None, sex, birth)),
    )


def _deskewed(lines: list[OcrLine]) -> list[_Box]:
    """Boxes in a frame rotated so that text rows are horizontal, labels split off."""
    angles = []
    for ln in lines:
        (ax, ay), (bx, by) = ln.box[0], ln.box[1]
        width, height = math.dist(ln.box[0], ln.box[1]), math.dist(ln.box[1], ln.box[2])
        if width > 1.5 * height:
            angles.append(math.atan2(by - ay, bx - ax))
    theta = -statistics.median(angles) if angles else 0.0
    cos, sin = math.cos(theta), math.sin(theta)
    boxes = []
    for ln in lines:
        text = normalize(ln.text)
        if not text:
            continue
        xs = [x * cos - y * sin for x, y in ln.box]
        ys = [x * sin + y * cos for x, y in ln.box]
        box = _Box(ln, text, min(xs), max(xs), min(ys), max(ys))
        parts = _LABEL_RE.split(text)
        found = _LABEL_RE.findall(text)
        if found and not parts[0]:  # the box starts with a label
            box.label, box.rest = LABELS[found[0]], parts[1]
            box.extra = [
                (LABELS[lab], part) for lab, part in zip(found[1:], parts[2:], strict=True)
            ]
        boxes.append(box)
    return boxes


def _same_row(a: _Box, b: _Box) -> bool:
    return abs(a.cy - b.cy) < 0.6 * max(a.h, b.h)


def _row_right_of(label: _Box, boxes: list[_Box]) -> list[_Box]:
    """Unlabelled boxes right of `label` on its row, up to the next label on that row. Boxes
    overlap a little (the detector pads them), so "right of" means starting past its centre."""
    row = sorted(
        (b for b in boxes if b is not label and _same_row(b, label) and b.x0 > label.cx),
        key=lambda b: b.x0,
    )
    out = []
    for b in row:
        if b.label:
            break
        out.append(b)
    return out


def _address_continuation(label: _Box, boxes: list[_Box]) -> list[_Box]:
    """Left-aligned unlabelled lines below the first address line, without big gaps."""
    first = _row_right_of(label, boxes)
    last = first[-1] if first else label

    def aligned(b: _Box) -> bool:  # with the first value line, or right of the label column
        if first:
            return abs(b.x0 - first[0].x0) < 2.5 * label.h
        return label.x0 + 1.5 * label.h < b.x0 < label.x0 + 6 * label.h

    out: list[_Box] = []
    candidates = sorted((b for b in boxes if b.cy > label.cy + 0.6 * label.h), key=lambda b: b.cy)
    for b in candidates:
        if b.label or b.y0 - last.y1 > 1.5 * max(label.h, b.h):
            break
        if aligned(b) and not _ID_RE.fullmatch(b.text.translate(_AS_DIGIT)):
            out.append(b)
            last = b
    return out


def _find_id_number(
    boxes: list[_Box], labelled: tuple[str, float] | None
) -> tuple[str | None, bool, bool, float]:
    """(number, valid, repaired, score): the labelled value first, then any 18-char token."""
    candidates: list[tuple[str, float]] = []
    if labelled:
        candidates.append(labelled)
    candidates += [(b.text, b.line.score) for b in boxes]
    fallback: tuple[str, float] | None = None
    for text, score in candidates:
        for token in _ID_RE.findall(text.translate(_AS_DIGIT)):
            if _valid_ric(token):
                return token, True, False, score
            fallback = fallback or (token, score)
    if fallback is None:
        return None, False, False, 0.0
    token, score = fallback
    repaired = _repair(token)
    if repaired:
        return repaired, True, True, score
    return token, False, False, score


def _valid_ric(number: str) -> bool:
    """stdnum.cn.ric.is_valid, which raises KeyError for some region prefixes (e.g. 110199)."""
    try:
        return ric.is_valid(number)
    except (KeyError, ValueError, IndexError):
        return False


def _repair(token: str) -> str | None:
    """The one valid number one confusable-character substitution away, if exactly one."""
    found = set()
    for i, ch in enumerate(token):
        for alt in _CONFUSABLE.get(ch, ""):
            if alt == "X" and i != 17:
                continue
            candidate = token[:i] + alt + token[i + 1 :]
            if _valid_ric(candidate):
                found.add(candidate)
    return found.pop() if len(found) == 1 else None


def _clean_name(text: str) -> str | None:
    name = "".join(ch for ch in text if _is_han(ch) or ch in "·•.")
    name = re.sub("[•.]", "·", name).strip("·")
    return name or None


def _clean_ethnicity(text: str) -> str | None:
    """The group's name; a misread one (士家) snaps to the one group of the same length that
    differs by at most one character (土家)."""
    value = "".join(ch for ch in text if _is_han(ch)).removesuffix("族")
    if value in ETHNIC_GROUPS or len(value) < 2:
        return value or None
    near = [
        g
        for g in ETHNIC_GROUPS
        if len(g) == len(value) and sum(a != b for a, b in zip(g, value, strict=True)) == 1
    ]
    return near[0] if len(near) == 1 else value


def _clean_address(text: str) -> str | None:
    return text.strip(",.;:") or None


def _first_of(text: str, allowed: str) -> str | None:
    return next((ch for ch in text if ch in allowed), None)


def _parse_birth(text: str) -> date | None:
    m = re.search(r"(\d{4})\D{0,2}?(\d{1,2})\D{0,2}?(\d{1,2})", text.translate(_AS_DIGIT))
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


def _consistency(id_number: str | None, sex: str | None, birth: date | None) -> list[str]:
    """Warnings where the printed sex or birth date disagree with the (valid) ID number."""
    out = []
    if id_number and birth and ric.get_birth_date(id_number) != birth:
        out.append("birth-date-differs-from-id-number")
    if id_number and sex and ("男" if int(id_number[16]) % 2 else "女") != sex:
        out.append("sex-differs-from-id-number")
    return out


# ------------------------------------------------------------------ cross-check


def _norm_name(text: str) -> str:
    return re.sub("[•.．・]", "·", normalize(text))


def _norm_address(text: str) -> str:
    return "".join(ch for ch in normalize(text) if ch.isalnum())


def cross_check(
    reading: IdCardReading, *, name: str, id_number: str, address: str | None = None
) -> CrossCheck:
    """Compare a reading with the typed data. Name and ID number must match exactly after
    normalization (full-width to half-width, whitespace removed, x to X); the address matches
    when difflib's ratio of the normalized texts is at least ADDRESS_SIMILARITY. A field the
    card did not yield is "unread"; `mismatch` is true when any compared field is not "match"."""
    name_status: FieldStatus = (
        "unread"
        if not reading.name
        else "match"
        if _norm_name(reading.name) == _norm_name(name)
        else "mismatch"
    )
    id_status: FieldStatus = (
        "unread"
        if not reading.id_number
        else "match"
        if reading.id_number_valid and normalize(reading.id_number) == normalize(id_number)
        else "mismatch"
    )
    similarity: float | None = None
    address_status: FieldStatus = "not_given"
    if address is not None and address.strip():
        if not reading.address:
            address_status = "unread"
        else:
            a, b = _norm_address(reading.address), _norm_address(address)
            similarity = round(SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)
            address_status = "match" if similarity >= ADDRESS_SIMILARITY else "mismatch"
    statuses = (name_status, id_status, address_status)
    return CrossCheck(
        name=name_status,
        id_number=id_status,
        address=address_status,
        address_similarity=similarity,
        mismatch=any(s in ("mismatch", "unread") for s in statuses),
    )
