"""HTTP route: read an uploaded ID card (front side) and cross-check it with the typed data.

The response never carries the full ID number or the raw OCR lines (which contain it): the
number is masked, and the cross-check says whether it matched what was typed. The image is not
stored. The route is a plain `def`: OCR is CPU-bound and runs in FastAPI's thread pool, one
inference at a time per process (see origination/ocr.py).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from mobilend.api.auth import Principal, require
from mobilend.core.errors import ValidationFailed
from mobilend.origination.ocr import MAX_IMAGE_BYTES, cross_check, read_id_card

router = APIRouter(prefix="/v1")

# base64 is 4 characters per 3 bytes; a data-URL prefix adds a few more.
MAX_BASE64_CHARS = MAX_IMAGE_BYTES * 4 // 3 + 1024


class TypedIdentity(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    id_number: str = Field(min_length=1, max_length=32)
    address: str | None = Field(default=None, max_length=200)


class IdCardIn(BaseModel):
    image_base64: str = Field(min_length=1, max_length=MAX_BASE64_CHARS)
    typed: TypedIdentity


def decode_image(value: str) -> bytes:
    """Plain base64 or a data URL (data:image/jpeg;base64,...); whitespace is ignored."""
    if value.startswith("data:"):
        _, _, value = value.partition(",")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(
            "image_base64", "base64", "image_base64 is not valid base64"
        ) from exc


@router.post("/ocr/id-card", tags=["origination"])
def read_id_card_route(body: IdCardIn, _: Principal = require("borrowers:write")) -> dict[str, Any]:
    """Read name, ID number, address, sex, ethnicity and birth date from the card's front side
    and compare them with `typed`. `cross_check.mismatch` feeds the `id_ocr_mismatch` rule."""
    image = decode_image(body.image_base64)
    try:
        reading = read_id_card(image)
    except ValidationFailed as exc:
        if exc.field == "image":  # the client sent it as image_base64
            raise ValidationFailed("image_base64", exc.rule or "image", exc.detail) from exc
        raise
    check = cross_check(
        reading,
        name=body.typed.name,
        id_number=body.typed.id_number,
        address=body.typed.address,
    )
    return {
        "reading": {
            "name": reading.name,
            "id_number_masked": reading.id_number_masked,
            "id_number_valid": reading.id_number_valid,
            "id_number_repaired": reading.id_number_repaired,
            "address": reading.address,
            "sex": reading.sex,
            "ethnicity": reading.ethnicity,
            "birth_date": reading.birth_date.isoformat() if reading.birth_date else None,
            "confidence": reading.confidence,
            "warnings": list(reading.warnings),
        },
        "cross_check": {
            "fields": check.fields,
            "address_similarity": check.address_similarity,
            "mismatch": check.mismatch,
        },
    }
