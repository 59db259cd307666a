"""Merchant social-commerce metrics: the mobilend-social/1 format and the social_* features.
Every expected figure is worked by hand in the comment beside it."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources import SAMPLES_DIR
from mobilend.decisioning.sources import social as social_module
from mobilend.decisioning.sources.social import (
    SOCIAL_FEATURE_DOCS,
    Floats,
    parse_social_metrics,
    snownlp_sentiments,
    social_features,
)

MERCHANT = hashlib.sha256(b"test-merchant").hexdigest()
END = date(2025, 6, 30)


def row(day: date, followers: int, views: int, likes: int, comments: int, shares: int,
        orders: int, gmv: str) -> dict[str, Any]:  # fmt: skip
    return {
        "date": day.isoformat(),
        "followers": followers,
        "views": views,
        "likes": likes,
        "comments": comments,
        "shares": shares,
        "orders": orders,
        "gmv": gmv,
    }


def document(series: list[dict[str, Any]], granularity: str = "daily",
             comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "format": "mobilend-social/1",
        "merchant": {"id_hash": MERCHANT, "platform": "douyin"},
        "granularity": granularity,
        "currency": "CNY",
        "series": series,
        "comments": comments or [],
    }


def days_before_end(n: int) -> date:
    return END - timedelta(days=n)


# A tiny daily series with gaps; d = days before END (2025-06-30).
TINY = [
    row(days_before_end(90), 1000, 2000, 100, 20, 10, 10, "1000"),  # d=90: 2025-04-01
    row(days_before_end(60), 1200, 3000, 150, 30, 20, 12, "1200"),  # d=60: 2025-05-01
    row(days_before_end(30), 1500, 4000, 200, 40, 20, 20, "2000"),  # d=30: 2025-05-31
    row(days_before_end(20), 1600, 5000, 300, 50, 25, 30, "3000"),  # d=20: 2025-06-10
    row(days_before_end(0), 2000, 5000, 250, 50, 25, 25, "2500.00"),  # d=0: 2025-06-30
]


def no_sentiment(texts: Sequence[str]) -> Floats:
    raise AssertionError("no comment should be scored")


def features(doc: dict[str, Any], as_of: date = END) -> dict[str, Any]:
    return social_features(parse_social_metrics(doc), as_of=as_of, sentiment=no_sentiment)


def test_hand_worked_daily_series() -> None:
    f = features(document(TINY))
    # W30 = rows with END-30 < date <= END: d=20 and d=0 (d=30 is outside).
    # engagement = (300+50+25 + 250+50+25) / (5000+5000) = 700 / 10000
    assert f["social_engagement_rate_30d"] == pytest.approx(0.07, rel=1e-12)
    # conversion = (30 + 25) / 10000
    assert f["social_conversion_30d"] == pytest.approx(0.0055, rel=1e-12)
    assert f["social_gmv_30d"] == 5500.0
    # P30 = END-60 < date <= END-30: only d=30. GMV per day 5500/2 = 2750 vs 2000/1:
    # growth = 2750/2000 - 1 = 0.375
    assert f["social_gmv_growth_30d"] == pytest.approx(0.375, rel=1e-12)
    # followers at END-30 = 1500 (row d=30): 2000/1500 - 1 = 1/3
    assert f["social_follower_growth_30d"] == pytest.approx(1 / 3, rel=1e-12)
    # followers at END-90 = 1000 (row d=90): 2000/1000 - 1 = 1
    assert f["social_follower_growth_90d"] == pytest.approx(1.0, rel=1e-12)
    # W90 = d < 90: GMV 1200, 2000, 3000, 2500; mean 8700/4 = 2175;
    # squared deviations 975² + 175² + 825² + 325² = 950625 + 30625 + 680625 + 105625
    # = 1767500; population variance 1767500/4 = 441875; CV = sqrt(441875) / 2175 ≈ 0.30563
    assert f["social_gmv_cv_90d"] == pytest.approx(math.sqrt(441875) / 2175, rel=1e-12)
    # views 3000, 4000, 5000, 5000: mean 4250; deviations² 1562500 + 62500 + 562500 + 562500
    # = 2750000; variance 687500; CV = sqrt(687500) / 4250 ≈ 0.19510
    assert f["social_views_cv_90d"] == pytest.approx(math.sqrt(687500) / 4250, rel=1e-12)
    assert f["social_followers"] == 2000
    assert f["social_days_since_update"] == 0 and f["social_stale"] is False
    assert (f["social_platform"], f["social_granularity"]) == ("douyin", "daily")
    assert set(f) == set(SOCIAL_FEATURE_DOCS)


def test_rows_after_as_of_are_ignored() -> None:
    f = features(document(TINY), as_of=date(2025, 6, 15))
    # end = 2025-06-10 (d=20 row); W30 = 2025-05-11 < date <= 2025-06-10: rows d=30 and d=20.
    # engagement = (200+40+20 + 300+50+25) / (4000+5000) = 635 / 9000
    assert f["social_engagement_rate_30d"] == pytest.approx(635 / 9000, rel=1e-12)
    assert f["social_followers"] == 1600
    assert f["social_days_since_update"] == 5


def test_staleness_boundary_daily() -> None:
    assert features(document(TINY), as_of=END + timedelta(days=7))["social_stale"] is False
    late = features(document(TINY), as_of=END + timedelta(days=8))
    assert late["social_stale"] is True and late["social_days_since_update"] == 8


def test_weekly_growth_is_per_day() -> None:
    # 9 weeks (dates are week ends) of 700 GMV each. W30 holds the weeks at d = 0, 7, 14, 21,
    # 28 (5 weeks = 35 days, 3500: 100 a day); P30 holds d = 35, 42, 49, 56 (4 weeks, 2800:
    # 100 a day). Growth 100/100 - 1 = 0, where a plain ratio of sums would say 3500/2800 - 1.
    weekly = [
        row(END - timedelta(weeks=8 - i), 100 + i, 1000, 10, 1, 1, 7, "700") for i in range(9)
    ]
    f = features(document(weekly, "weekly"))
    assert f["social_gmv_growth_30d"] == pytest.approx(0.0, abs=1e-12)
    assert f["social_gmv_cv_90d"] == 0.0  # every week equal
    # followers at END-30 = last week dated <= 2025-05-31, i.e. END-35 (i=3: 103); 108/103 - 1
    assert f["social_follower_growth_30d"] == pytest.approx(108 / 103 - 1, rel=1e-12)
    assert (
        features(document(weekly, "weekly"), as_of=END + timedelta(days=14))["social_stale"]
        is False
    )
    assert (
        features(document(weekly, "weekly"), as_of=END + timedelta(days=15))["social_stale"] is True
    )


def test_short_history_gives_none_not_zero() -> None:
    f = features(document([TINY[-1]]))
    assert f["social_follower_growth_30d"] is None and f["social_follower_growth_90d"] is None
    assert f["social_gmv_growth_30d"] is None
    assert f["social_gmv_cv_90d"] is None  # one period has no spread to speak of
    assert f["social_engagement_rate_30d"] == pytest.approx(325 / 5000, rel=1e-12)


def test_zero_views_gives_none() -> None:
    f = features(document([row(END, 10, 0, 0, 0, 0, 0, "0")]))
    assert f["social_engagement_rate_30d"] is None and f["social_conversion_30d"] is None


def test_no_period_before_as_of() -> None:
    f = features(document(TINY), as_of=date(2025, 3, 1))
    assert f["social_stale"] is True
    assert f["social_followers"] is None and f["social_engagement_rate_30d"] is None
    assert f["social_days_since_update"] is None


# --- comments ------------------------------------------------------------------------------


def test_comment_features_with_given_scores() -> None:
    comments = [
        {"date": "2025-06-01", "text": "a"},
        {"date": "2025-06-02", "text": "   "},  # blank: not scored
        {"text": "b"},  # undated: used
        {"date": "2025-06-03", "text": "c"},
        {"date": "2025-07-01", "text": "after as_of"},  # not used
        {"date": "2025-06-04", "text": "d"},
    ]
    given = {"a": 0.9, "b": 0.2, "c": 0.29, "d": 0.3}
    seen: list[str] = []

    def scorer(texts: Sequence[str]) -> Floats:
        seen.extend(texts)
        return np.array([given[t] for t in texts])

    metrics = parse_social_metrics(document(TINY, comments=comments))
    f = social_features(metrics, as_of=END, sentiment=scorer)
    assert seen == ["a", "b", "c", "d"]
    # mean (0.9 + 0.2 + 0.29 + 0.3) / 4 = 1.69 / 4 = 0.4225; negative: 0.2 and 0.29 (< 0.3)
    assert f["social_sentiment_mean"] == pytest.approx(0.4225, rel=1e-12)
    assert f["social_negative_share"] == 0.5
    assert f["social_comments_scored"] == 4


def test_no_comments() -> None:
    f = features(document(TINY, comments=[{"text": ""}]))
    assert f["social_sentiment_mean"] is None and f["social_negative_share"] is None
    assert f["social_comments_scored"] == 0


POSITIVE = ["质量很好，物流也快，已经回购了", "东西不错，物流快，好评", "主播很专业，推荐购买"]
NEGATIVE = ["太差了，骗人的，退货", "假货，质量差，差评", "发货太慢了，客服也不回复，差评"]


def test_snownlp_ranks_positive_above_negative() -> None:
    scores = snownlp_sentiments([*POSITIVE, "", *NEGATIVE, "  ", POSITIVE[0]])
    positive, negative = scores[:3], scores[4:7]
    assert np.isnan(scores[3]) and np.isnan(scores[7])  # blank texts
    assert positive.min() > negative.max()
    assert scores[8] == scores[0]
    assert (
        (scores[:7][~np.isnan(scores[:7])] >= 0) & (scores[:7][~np.isnan(scores[:7])] <= 1)
    ).all()


def test_snownlp_model_is_loaded_once() -> None:
    snownlp_sentiments(["好"])
    before = social_module._snownlp_classify.cache_info()
    snownlp_sentiments(["很好", "差"])
    after = social_module._snownlp_classify.cache_info()
    assert after.misses == before.misses == 1 and after.hits == before.hits + 1


def test_only_blank_texts_do_not_load_the_model() -> None:
    assert np.isnan(snownlp_sentiments(["", " "])).all()


def test_sample_merchant_with_snownlp() -> None:
    data = json.loads((SAMPLES_DIR / "social.json").read_text(encoding="utf-8"))
    f = social_features(parse_social_metrics(data), as_of=date(2025, 6, 1))
    assert f["social_comments_scored"] == 6  # the 7th comment is empty
    negative, mean = f["social_negative_share"], f["social_sentiment_mean"]
    assert isinstance(negative, float) and isinstance(mean, float)
    assert 0 <= negative <= 1 and 0 < mean < 1


# --- validation ----------------------------------------------------------------------------


def broken(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(document(TINY, comments=[{"date": "2025-06-01", "text": "好"}]))
    *parents, last = path.split(".")
    node: Any = doc
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field", "rule"),
    [
        ("series.1.date", "2025-03-01", "series[1].date", "increasing"),
        ("series.2.date", "2025-05-01", "series[2].date", "increasing"),
        ("series.0.views", 12.5, "series[0].views", "type-integer"),
        ("series.0.likes", -3, "series[0].likes", "minimum"),
        ("series.3.gmv", 3000.5, "series[3].gmv", "decimal-string"),
        ("series.3.gmv", "-1", "series[3].gmv", "non-negative"),
        ("series.4.orders", None, "series[4].orders", "required"),
        ("series", [], "series", "min-items"),
        ("merchant.platform", "weibo", "merchant.platform", "enum"),
        ("merchant.shop_name", "小王的店", "merchant.shop_name", "unknown-field"),
        ("comments.0.user_name", "王**", "comments[0].user_name", "unknown-field"),
        ("comments.0.text", 5, "comments[0].text", "type-string"),
        ("granularity", "monthly", "granularity", "enum"),
    ],
)
def test_validation_errors_name_the_json_path(path: str, value: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationFailed) as err:
        parse_social_metrics(broken(path, value))
    assert (err.value.field, err.value.rule) == (field, rule)


def test_weekly_periods_must_be_whole_weeks_apart() -> None:
    series = [row(END - timedelta(days=10), 1, 1, 0, 0, 0, 0, "0"), row(END, 1, 1, 0, 0, 0, 0, "0")]
    with pytest.raises(ValidationFailed) as err:
        parse_social_metrics(document(series, "weekly"))
    assert (err.value.field, err.value.rule) == ("series[1].date", "increasing")
