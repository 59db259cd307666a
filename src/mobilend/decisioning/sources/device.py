"""Device-usage signals sent by the borrower's app, in the `mobilend-device/1` JSON format.

The app reports counts and summaries only: the number of contacts (never the contacts), a
coarse location-consistency score (never coordinates), and the IMEI, which is checked with
`stdnum.imei` and kept only as an HMAC-SHA256 hash of its first 14 digits (TAC + serial, so
the IMEI with check digit and the IMEISV of one phone hash alike). The format is described
with an example in docs/data-sources.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime

from stdnum import imei as stdnum_imei
from stdnum.exceptions import ValidationError as StdnumError

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources._schema import Obj

FORMAT = "mobilend-device/1"
OS_NAMES = ("android", "ios", "harmonyos")
_VERSION = re.compile(r"\d{1,3}(\.\d{1,4}){0,3}")

FeatureValue = float | int | bool | str | None


@dataclass(frozen=True, slots=True)
class DeviceSignals:
    collected_at: datetime
    manufacturer: str
    model: str
    os: str  # android | ios | harmonyos
    os_version: str
    imei_hash: str | None  # HMAC-SHA256 hex of the IMEI's first 14 digits; None when not sent
    rooted: bool  # rooted (Android) or jailbroken (iOS)
    emulator: bool
    sim_changes_90d: int
    sim_tenure_days: int
    app_install_age_days: int
    active_days_30d: int
    battery_avg_level_pct: float
    charging_sessions_per_day: float
    night_charging_share: float  # share of charging time between 22:00 and 06:00
    contacts_count: int
    location_consistency: float  # 0..1: share of sessions in the usual coarse area

    @property
    def os_major(self) -> int:
        return int(self.os_version.split(".")[0])


def hash_imei(value: str, *, key: bytes) -> str:
    """Validate an IMEI or IMEISV and return the HMAC-SHA256 hex of its first 14 digits."""
    try:
        digits = stdnum_imei.validate(value)
    except StdnumError as exc:
        raise ValidationFailed(
            "device.imei", "imei", f"device.imei is not a valid IMEI: {exc}"
        ) from None
    return hmac.new(key, digits[:14].encode(), hashlib.sha256).hexdigest()


def parse_device_signals(data: object, *, imei_key: bytes) -> DeviceSignals:
    """Validate a `mobilend-device/1` document; errors name the JSON path at fault.

    `imei_key` is the secret for the IMEI hash (a keyed hash: IMEIs are too few to hide
    behind a plain SHA-256).
    """
    if not imei_key:
        raise ValueError("imei_key must not be empty")
    doc = Obj(data)
    doc.expect_format(FORMAT)
    collected_at = doc.timestamp("collected_at")

    device = doc.obj("device")
    manufacturer = device.text("manufacturer", max_len=80)
    model = device.text("model", max_len=80)
    os_name = device.choice("os", OS_NAMES)
    os_version = device.text("os_version", max_len=20, pattern=_VERSION)
    imei_hash = (
        hash_imei(device.text("imei", max_len=20), key=imei_key)
        if device.optional("imei")
        else None
    )
    device.close()

    integrity = doc.obj("integrity")
    rooted, emulator = integrity.boolean("rooted"), integrity.boolean("emulator")
    integrity.close()

    sim = doc.obj("sim")
    sim_changes = sim.integer("changes_90d", maximum=90)
    sim_tenure = sim.integer("tenure_days", maximum=36_500)
    sim.close()

    app = doc.obj("app")
    install_age = app.integer("install_age_days", maximum=36_500)
    active_days = app.integer("active_days_30d", maximum=30)
    if active_days > install_age + 1:
        path = app.at("active_days_30d")
        raise ValidationFailed(path, "within-install-age", f"{path} exceeds the app's age")
    app.close()

    battery = doc.obj("battery")
    avg_level = battery.number("avg_level_pct", maximum=100.0)
    sessions = battery.number("charging_sessions_per_day", maximum=50.0)
    night_share = battery.number("night_charging_share", maximum=1.0)
    battery.close()

    contacts = doc.integer("contacts_count", maximum=100_000)
    location = doc.number("location_consistency", maximum=1.0)
    doc.close()
    return DeviceSignals(
        collected_at=collected_at,
        manufacturer=manufacturer,
        model=model,
        os=os_name,
        os_version=os_version,
        imei_hash=imei_hash,
        rooted=rooted,
        emulator=emulator,
        sim_changes_90d=sim_changes,
        sim_tenure_days=sim_tenure,
        app_install_age_days=install_age,
        active_days_30d=active_days,
        battery_avg_level_pct=avg_level,
        charging_sessions_per_day=sessions,
        night_charging_share=night_share,
        contacts_count=contacts,
        location_consistency=location,
    )


DEVICE_FEATURE_DOCS: dict[str, dict[str, str]] = {
    "device_rooted": {
        "en": "Device is rooted or jailbroken",
        "zh": "设备已root/越狱",
        "unit": "bool",
    },
    "device_emulator": {"en": "App runs in an emulator", "zh": "模拟器运行", "unit": "bool"},
    "device_sim_changes_90d": {
        "en": "SIM card changes in the 90 days before collection",
        "zh": "近90天换卡次数",
        "unit": "count",
    },
    "device_sim_tenure_days": {
        "en": "Days the current SIM has been in the device",
        "zh": "当前SIM卡在网时长",
        "unit": "days",
    },
    "device_active_days_30d": {
        "en": "Days the app was opened in the 30 days before collection",
        "zh": "近30天活跃天数",
        "unit": "days",
    },
    "device_app_install_age_days": {
        "en": "Days since the app was installed",
        "zh": "应用安装天数",
        "unit": "days",
    },
    "device_contacts_count": {
        "en": "Number of contacts on the phone (count only)",
        "zh": "通讯录联系人数量（仅计数）",
        "unit": "count",
    },
    "device_location_consistency": {
        "en": "Share of sessions in the usual coarse area",
        "zh": "位置一致性得分",
        "unit": "ratio 0-1",
    },
    "device_os": {"en": "Operating system", "zh": "操作系统", "unit": "android|ios|harmonyos"},
    "device_os_major": {"en": "OS major version", "zh": "系统主版本号", "unit": "number"},
    "device_model": {"en": "Device model as reported", "zh": "设备型号", "unit": "text"},
    "device_battery_avg_level_pct": {
        "en": "Average battery level",
        "zh": "平均电量",
        "unit": "percent",
    },
    "device_charging_sessions_per_day": {
        "en": "Charging sessions per day",
        "zh": "日均充电次数",
        "unit": "per day",
    },
    "device_night_charging_share": {
        "en": "Share of charging time between 22:00 and 06:00",
        "zh": "夜间充电占比",
        "unit": "ratio 0-1",
    },
    "device_signal_age_days": {
        "en": "as_of minus the collection date (collected_at's own calendar date)",
        "zh": "设备数据距今天数",
        "unit": "days",
    },
}


def device_features(signals: DeviceSignals, *, as_of: date) -> dict[str, FeatureValue]:
    """The device_* features; signals collected after `as_of` are refused (look-ahead)."""
    age_days = (as_of - signals.collected_at.date()).days
    if age_days < 0:
        raise ValidationFailed(
            "device.collected_at", "not-after-as-of", f"device signals are dated after {as_of}"
        )
    return {
        "device_rooted": signals.rooted,
        "device_emulator": signals.emulator,
        "device_sim_changes_90d": signals.sim_changes_90d,
        "device_sim_tenure_days": signals.sim_tenure_days,
        "device_active_days_30d": signals.active_days_30d,
        "device_app_install_age_days": signals.app_install_age_days,
        "device_contacts_count": signals.contacts_count,
        "device_location_consistency": signals.location_consistency,
        "device_os": signals.os,
        "device_os_major": signals.os_major,
        "device_model": signals.model,
        "device_battery_avg_level_pct": signals.battery_avg_level_pct,
        "device_charging_sessions_per_day": signals.charging_sessions_per_day,
        "device_night_charging_share": signals.night_charging_share,
        "device_signal_age_days": age_days,
    }
