"""Data sources behind adapters: credit bureau, device signals, merchant social metrics.

Each source has a versioned JSON format (see docs/data-sources.md), a parser that validates it
with errors naming the JSON path, and frozen dataclasses for the parsed data.
"""

from pathlib import Path

from mobilend.decisioning.sources.bureau import (
    BureauAdapter,
    BureauReport,
    BureauResult,
    FileBureau,
    NoReport,
    SimulatedBureau,
    parse_bureau_report,
)
from mobilend.decisioning.sources.device import (
    DeviceSignals,
    device_features,
    hash_imei,
    parse_device_signals,
)
from mobilend.decisioning.sources.social import (
    SentimentScorer,
    SocialMetrics,
    parse_social_metrics,
    snownlp_sentiments,
    social_features,
)

__all__ = [
    "SAMPLES_DIR",
    "BureauAdapter",
    "BureauReport",
    "BureauResult",
    "DeviceSignals",
    "FileBureau",
    "NoReport",
    "SentimentScorer",
    "SimulatedBureau",
    "SocialMetrics",
    "device_features",
    "hash_imei",
    "parse_bureau_report",
    "parse_device_signals",
    "parse_social_metrics",
    "snownlp_sentiments",
    "social_features",
]

#: Small example files in each format: bureau/<subject_hash>.json, device.json, social.json.
SAMPLES_DIR = Path(__file__).parent / "samples"
