"""Device signals from the borrower's app: the mobilend-device/1 format, field errors, the
IMEI kept only as a keyed hash, and the device_* features."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import date
from typing import Any

import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources.device import (
    DEVICE_FEATURE_DOCS,
    device_features,
    hash_imei,
    parse_device_signals,
)

KEY = b"test-imei-key"
IMEI = "490154203237518"  # a textbook IMEI: Luhn check digit 8


def doc() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES_DIR / "device.json").read_text(encoding="utf-8"))
    return data


def with_value(section: str | None, key: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(doc())
    target = data[section] if section else data
    target[key] = value
    return data


def test_sample_parses() -> None:
    signals = parse_device_signals(doc(), imei_key=KEY)
    assert (signals.os, signals.os_version, signals.os_major) == ("android", "13", 13)
    assert (signals.rooted, signals.emulator) == (False, False)
    assert (signals.sim_changes_90d, signals.sim_tenure_days) == (0, 830)
    assert (signals.app_install_age_days, signals.active_days_30d) == (45, 21)
    assert signals.contacts_count == 214 and signals.location_consistency == 0.86
    assert signals.collected_at.date() == date(2025, 6, 1)


def test_imei_is_kept_only_as_a_keyed_hash() -> None:
    signals = parse_device_signals(doc(), imei_key=KEY)
    # HMAC-SHA256 of the first 14 digits (TAC + serial), computed here independently.
    assert signals.imei_hash == hmac.new(KEY, IMEI[:14].encode(), hashlib.sha256).hexdigest()
    assert IMEI not in repr(signals) and IMEI[:14] not in repr(signals)
    assert signals.imei_hash != hashlib.sha256(IMEI.encode()).hexdigest()  # keyed, not plain


def test_same_phone_hashes_alike_in_any_spelling() -> None:
    # The IMEISV is the 14 digits plus a 2-digit software version instead of the check digit.
    spellings = [IMEI, "49-015420-323751-8", IMEI[:14] + "07"]
    assert len({hash_imei(s, key=KEY) for s in spellings}) == 1
    assert hash_imei(IMEI, key=KEY) != hash_imei(IMEI, key=b"another key")


@pytest.mark.parametrize("bad", ["490154203237519", "12345", "49015420323751A"])
def test_invalid_imei(bad: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_device_signals(with_value("device", "imei", bad), imei_key=KEY)
    assert (err.value.field, err.value.rule) == ("device.imei", "imei")


def test_imei_is_optional() -> None:  # iOS apps cannot read it
    data = copy.deepcopy(doc())
    del data["device"]["imei"]
    data["device"].update(os="ios", os_version="17.5.1", manufacturer="Apple", model="iPhone 13")
    signals = parse_device_signals(data, imei_key=KEY)
    assert signals.imei_hash is None and signals.os_major == 17


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_device_signals(doc(), imei_key=b"")


@pytest.mark.parametrize(
    ("section", "key", "value", "field", "rule"),
    [
        ("integrity", "rooted", "yes", "integrity.rooted", "type-boolean"),
        ("integrity", "emulator", None, "integrity.emulator", "required"),
        ("sim", "changes_90d", -1, "sim.changes_90d", "minimum"),
        ("sim", "changes_90d", 1.5, "sim.changes_90d", "type-integer"),
        ("app", "active_days_30d", 31, "app.active_days_30d", "maximum"),
        ("app", "install_age_days", 3, "app.active_days_30d", "within-install-age"),
        ("battery", "night_charging_share", 1.2, "battery.night_charging_share", "maximum"),
        ("battery", "avg_level_pct", "58", "battery.avg_level_pct", "type-number"),
        ("device", "os", "symbian", "device.os", "enum"),
        ("device", "os_version", "thirteen", "device.os_version", "pattern"),
        ("device", "latitude", 31.23, "device.latitude", "unknown-field"),
        (None, "location_consistency", 1.01, "location_consistency", "maximum"),
        (None, "contacts_count", True, "contacts_count", "type-integer"),
        (None, "contacts", [{"name": "妈妈"}], "contacts", "unknown-field"),
        (None, "collected_at", "2025-06-01T09:30:00", "collected_at", "utc-offset"),
        (None, "collected_at", "yesterday", "collected_at", "date-time"),
        (None, "format", "mobilend-device/0", "format", "format"),
    ],
)
def test_field_errors(section: str | None, key: str, value: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_device_signals(with_value(section, key, value), imei_key=KEY)
    assert (err.value.field, err.value.rule) == (field, rule)


def test_device_features() -> None:
    signals = parse_device_signals(
        with_value("integrity", "rooted", True) | {"contacts_count": 3}, imei_key=KEY
    )
    features = device_features(signals, as_of=date(2025, 6, 11))
    assert set(features) == set(DEVICE_FEATURE_DOCS)
    assert features["device_rooted"] is True and features["device_emulator"] is False
    assert features["device_sim_changes_90d"] == 0
    assert features["device_sim_tenure_days"] == 830
    assert features["device_active_days_30d"] == 21
    assert features["device_contacts_count"] == 3
    assert features["device_os_major"] == 13
    assert features["device_signal_age_days"] == 10  # 1 June (+08:00 local date) to 11 June


def test_signals_from_after_as_of_are_refused() -> None:
    signals = parse_device_signals(doc(), imei_key=KEY)
    with pytest.raises(ValidationFailed) as err:
        device_features(signals, as_of=date(2025, 5, 31))
    assert err.value.rule == "not-after-as-of"
