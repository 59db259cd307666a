"""Synthetic ID-card images for the OCR tests: drawn here, never photos of real people.

`draw_card` paints the front side of a resident-ID-like card (labels, values, a grey placeholder
where the photo goes) at 856x540, the card's 85.6 x 54 mm at 10 px/mm. `random_person` makes
fictional data with a valid ID number (region codes from stdnum's table, a random birth date,
the sex digit and the check digit). `degrade` adds what a scan or phone upload adds: a small
rotation, noise, blur, JPEG compression.

Needs a Chinese font: `cjk_font_path()` finds one (MOBILEND_CJK_FONT, WenQuanYi Micro Hei or
Noto CJK from Debian, or fontconfig); `scripts/system-deps.sh` installs one.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from stdnum.cn import ric

CARD_SIZE = (856, 540)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国志文玉红海燕辉鹏飞宇浩然"
    "子涵欣怡佳琪思雨梓萱俊杰晨曦博文雅婷宏伟春梅晓东丹阳立新淑珍"
)
ETHNICITIES = ("汉", "汉", "汉", "汉", "回", "满", "壮", "苗", "土家", "蒙古", "维吾尔")
# (region code, province + city + district as printed in an address)
REGIONS = (
    ("110101", "北京市东城区"),
    ("110105", "北京市朝阳区"),
    ("310104", "上海市徐汇区"),
    ("310115", "上海市浦东新区"),
    ("440305", "广东省深圳市南山区"),
    ("440106", "广东省广州市天河区"),
    ("330106", "浙江省杭州市西湖区"),
    ("320102", "江苏省南京市玄武区"),
    ("420111", "湖北省武汉市洪山区"),
    ("510107", "四川省成都市武侯区"),
    ("610113", "陕西省西安市雁塔区"),
    ("370102", "山东省济南市历下区"),
    ("430104", "湖南省长沙市岳麓区"),
    ("350203", "福建省厦门市思明区"),
)
STREETS = (
    "人民路",
    "解放大道",
    "中山北路",
    "建设路",
    "文化街",
    "长江路",
    "和平里",
    "新华街道",
    "东风路",
    "青年大街",
    "黄河路",
    "幸福小区",
)


@dataclass(frozen=True)
class Person:
    name: str
    sex: str
    ethnicity: str
    birth_date: date
    address: str
    id_number: str


@cache
def cjk_font_path() -> str | None:
    """A font file with simplified Chinese glyphs, or None."""
    env = os.environ.get("MOBILEND_CJK_FONT")
    if env and os.path.exists(env):
        return env
    for path in FONT_CANDIDATES:
        if os.path.exists(path):
            return path
    if shutil.which("fc-list"):  # fonts fontconfig says cover Chinese
        out = subprocess.run(
            ["fc-list", ":lang=zh-cn", "-f", "%{file}\\n"], capture_output=True, text=True
        ).stdout.split()
        for path in sorted(out):
            if os.path.exists(path):
                return path
    return None


def require_cjk_font() -> str:
    """The font path; without one the test skips locally and fails in CI (CI=true)."""
    import pytest

    path = cjk_font_path()
    if path is None:
        message = (
            "no Chinese font to draw the synthetic ID cards: run scripts/system-deps.sh "
            "(installs fonts-wqy-microhei) or set MOBILEND_CJK_FONT to a .ttf/.ttc/.otf file"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


# ------------------------------------------------------------------ fictional people


def id_number_for(region: str, birth: date, sequence: int) -> str:
    """An 18-character ID number: region, birth date, 3-digit sequence, check digit."""
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def random_person(rng: random.Random) -> Person:
    while True:  # stdnum also checks the region code existed in the birth year
        region, place = rng.choice(REGIONS)
        birth = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 45))
        sequence = rng.randrange(1, 1000)
        id_number = id_number_for(region, birth, sequence)
        if ric.is_valid(id_number):
            break
    given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))
    street = rng.choice(STREETS)
    address = f"{place}{street}{rng.randrange(1, 300)}号"
    if rng.random() < 0.6:
        address += f"{rng.randrange(1, 30)}栋{rng.randrange(1, 6)}单元{rng.randrange(101, 2800)}室"
    return Person(
        name=rng.choice(SURNAMES) + given,
        sex="男" if sequence % 2 else "女",
        ethnicity=rng.choice(ETHNICITIES),
        birth_date=birth,
        address=address,
        id_number=id_number,
    )


# ------------------------------------------------------------------ drawing

LABEL_COLOUR = (40, 110, 170)
VALUE_COLOUR = (20, 20, 20)
ADDRESS_CHARS_PER_LINE = 11


def draw_card(person: Person, *, font_path: str | None = None, seed: int = 0) -> Image.Image:
    """The front side of an ID-card-like image (RGB, 856x540)."""
    font_path = font_path or require_cjk_font()
    rng = random.Random(seed)
    w, h = CARD_SIZE
    card = _background(w, h, rng)
    draw = ImageDraw.Draw(card)
    label = ImageFont.truetype(font_path, 26)
    value = ImageFont.truetype(font_path, 32)
    digits = ImageFont.truetype(font_path, 38)

    x_label, x_value = 60, 170
    draw.text((x_label, 62), "姓  名", font=label, fill=LABEL_COLOUR)
    draw.text((x_value, 56), person.name, font=value, fill=VALUE_COLOUR)
    draw.text((x_label, 132), "性  别", font=label, fill=LABEL_COLOUR)
    draw.text((x_value, 126), person.sex, font=value, fill=VALUE_COLOUR)
    draw.text((280, 132), "民  族", font=label, fill=LABEL_COLOUR)
    draw.text((380, 126), person.ethnicity, font=value, fill=VALUE_COLOUR)
    b = person.birth_date
    draw.text((x_label, 202), "出  生", font=label, fill=LABEL_COLOUR)
    draw.text((x_value, 196), f"{b.year}", font=value, fill=VALUE_COLOUR)
    draw.text((x_value + 92, 202), "年", font=label, fill=LABEL_COLOUR)
    draw.text((x_value + 138, 196), f"{b.month}", font=value, fill=VALUE_COLOUR)
    draw.text((x_value + 180, 202), "月", font=label, fill=LABEL_COLOUR)
    draw.text((x_value + 226, 196), f"{b.day}", font=value, fill=VALUE_COLOUR)
    draw.text((x_value + 268, 202), "日", font=label, fill=LABEL_COLOUR)
    draw.text((x_label, 272), "住  址", font=label, fill=LABEL_COLOUR)
    lines = [
        person.address[i : i + ADDRESS_CHARS_PER_LINE]
        for i in range(0, len(person.address), ADDRESS_CHARS_PER_LINE)
    ]
    for i, line in enumerate(lines[:3]):
        draw.text((x_value, 266 + 46 * i), line, font=value, fill=VALUE_COLOUR)
    draw.text((x_label, 452), "公民身份号码", font=label, fill=LABEL_COLOUR)
    draw.text((290, 444), person.id_number, font=digits, fill=VALUE_COLOUR)
    _photo_placeholder(draw, rng)
    return card


def _background(w: int, h: int, rng: random.Random) -> Image.Image:
    """A pale card with a faint guilloche-like wave pattern and rounded corners on grey."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.empty((h, w, 3), np.float32)
    base[..., 0] = 236 + 8 * xx / w
    base[..., 1] = 240 + 6 * yy / h
    base[..., 2] = 232 + 10 * (1 - xx / w)
    phase = rng.random() * 6.28
    wave = 5 * np.sin(xx / 23 + 3 * np.sin(yy / 41 + phase)) * np.sin(yy / 17)
    base += wave[..., None] * np.array([0.6, 0.3, 0.9], np.float32)
    card = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    canvas = Image.new("RGB", (w, h), (150, 150, 150))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=32, fill=255)
    canvas.paste(card, (0, 0), mask)
    return canvas


def _photo_placeholder(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    """A grey head-and-shoulders silhouette: where a card has its photo, never a face."""
    x0, y0, x1, y1 = 570, 70, 800, 360
    tone = rng.randrange(200, 225)
    draw.rectangle((x0, y0, x1, y1), fill=(tone, tone, tone + 5))
    draw.ellipse((635, 120, 735, 240), fill=(tone - 60,) * 3)
    draw.pieslice((590, 240, 780, 440), 180, 360, fill=(tone - 60,) * 3)


def degrade(
    img: Image.Image,
    *,
    rng: random.Random,
    angle: float = 0.0,
    noise: float = 0.0,
    blur: float = 0.0,
    jpeg_quality: int | None = None,
) -> bytes:
    """Rotate by `angle` degrees, add Gaussian noise (sigma in grey levels), blur, encode."""
    out = img
    if angle:
        out = out.rotate(
            angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(150,) * 3
        )
    if blur:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        arr = np.asarray(out, np.float32)
        gen = np.random.default_rng(rng.randrange(2**32))
        arr = arr + gen.normal(0, noise, arr.shape)
        out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    if jpeg_quality is None:
        out.save(buf, "PNG")
    else:
        out.save(buf, "JPEG", quality=jpeg_quality)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()
