"""Merchant social-commerce metrics (Douyin/Kuaishou style), format `mobilend-social/1`.

A merchant's account is a time series of complete periods (daily or weekly; `date` is the
period's LAST day, so a row dated on or before `as_of` holds no future data) with the follower
count at the period's end and the period's views, likes, comments, shares, orders and GMV, plus a
sample of comment texts (no user names). The format, each feature's formula and a worked
example are in docs/data-sources.md.

Windows are anchored at `end`, the last period dated on or before `as_of`:
``W30 = {rows: end - 30 days < date <= end}``, ``P30 = {end - 60 < date <= end - 30}``,
``W90 = {end - 90 < date <= end}``. Sentiment comes from SnowNLP's offline Bayes model,
imported lazily (it takes several seconds to load) and loaded once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from mobilend.core.errors import ValidationFailed
from mobilend.decisioning.sources._schema import HEX64, Obj

FORMAT = "mobilend-social/1"
PLATFORMS = ("douyin", "kuaishou", "other")
PERIOD_DAYS = {"daily": 1, "weekly": 7}
STALE_AFTER_DAYS = {"daily": 7, "weekly": 14}  # days from the last period to as_of
NEGATIVE_BELOW = 0.3  # a comment with sentiment below this counts as negative
MAX_COMMENT_CHARS = 200  # longer comments are cut before scoring (cost grows with length)
COUNTS = ("followers", "views", "likes", "comments", "shares", "orders")

FeatureValue = float | int | bool | str | None
Floats = npt.NDArray[np.float64]
SentimentScorer = Callable[[Sequence[str]], Floats]


@dataclass(frozen=True, slots=True)
class Comment:
    date: date | None
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class SocialMetrics:
    merchant_hash: str
    platform: str
    granularity: str  # daily | weekly
    currency: str
    dates: npt.NDArray[np.datetime64]  # datetime64[D], strictly increasing, period end
    counts: dict[str, npt.NDArray[np.int64]]  # COUNTS -> one value per period
    gmv: Floats  # per period, in `currency`
    comments: tuple[Comment, ...]


def parse_social_metrics(data: object) -> SocialMetrics:
    """Validate a `mobilend-social/1` document; errors name the JSON path at fault."""
    doc = Obj(data)
    doc.expect_format(FORMAT)
    merchant = doc.obj("merchant")
    merchant_hash = merchant.text("id_hash", pattern=HEX64)
    platform = merchant.choice("platform", PLATFORMS)
    merchant.close()
    granularity = doc.choice("granularity", tuple(PERIOD_DAYS))
    currency = doc.text("currency", max_len=3)
    rows = doc.objects("series", max_items=5_000)
    if not rows:
        raise ValidationFailed("series", "min-items", "series needs at least one period")
    days: list[date] = []
    values: dict[str, list[int]] = {name: [] for name in COUNTS}
    gmv: list[float] = []
    for row in rows:
        day = row.day("date")
        if days and (day <= days[-1] or (day - days[-1]).days % PERIOD_DAYS[granularity]):
            path = row.at("date")
            raise ValidationFailed(
                path, "increasing", f"{path} must follow the previous {granularity} period"
            )
        days.append(day)
        for name in COUNTS:
            values[name].append(row.integer(name, maximum=10**12))
        gmv.append(float(row.amount("gmv")))
        row.close()
    comments = []
    for item in doc.objects("comments", max_items=500):
        when = item.day("date") if item.optional("date") else None
        comments.append(Comment(when, item.text("text", max_len=5_000)))
        item.close()
    doc.close()
    return SocialMetrics(
        merchant_hash=merchant_hash,
        platform=platform,
        granularity=granularity,
        currency=currency,
        dates=np.array(days, dtype="datetime64[D]"),
        counts={name: np.array(v, dtype=np.int64) for name, v in values.items()},
        gmv=np.array(gmv, dtype=np.float64),
        comments=tuple(comments),
    )


# --- sentiment -------------------------------------------------------------------------------


@functools.cache
def _snownlp_classify() -> Callable[[str], float]:
    """SnowNLP's sentiment classifier, imported on first use and kept for the process."""
    from snownlp import sentiment  # slow: loads segmentation and sentiment models

    classify: Callable[[str], float] = sentiment.classifier.classify
    return classify


def snownlp_sentiments(texts: Sequence[str]) -> Floats:
    """Probability that each text is positive (SnowNLP, offline); NaN for a blank text.

    Texts are stripped and cut to MAX_COMMENT_CHARS; each distinct text is scored once.
    """
    cleaned = [text.strip()[:MAX_COMMENT_CHARS] for text in texts]
    distinct = {text for text in cleaned if text}
    if not distinct:
        return np.full(len(cleaned), np.nan)
    classify = _snownlp_classify()
    scores = {text: float(classify(text)) for text in distinct}
    return np.array([scores.get(text, np.nan) for text in cleaned], dtype=np.float64)


# --- features --------------------------------------------------------------------------------


SOCIAL_FEATURE_DOCS: dict[str, dict[str, str]] = {
    "social_platform": {"en": "Platform", "zh": "平台", "unit": "douyin|kuaishou|other"},
    "social_granularity": {"en": "Series granularity", "zh": "数据粒度", "unit": "daily|weekly"},
    "social_followers": {
        "en": "Followers at the end of the last period on or before as_of",
        "zh": "粉丝数",
        "unit": "count",
    },
    "social_engagement_rate_30d": {
        "en": "sum(likes + comments + shares) / sum(views) over W30",
        "zh": "近30天互动率",
        "unit": "ratio",
    },
    "social_follower_growth_30d": {
        "en": "F(end) / F(end - 30d) - 1; F(t) = followers of the last period dated <= t",
        "zh": "近30天粉丝增长率",
        "unit": "ratio",
    },
    "social_follower_growth_90d": {
        "en": "F(end) / F(end - 90d) - 1",
        "zh": "近90天粉丝增长率",
        "unit": "ratio",
    },
    "social_gmv_30d": {"en": "sum(gmv) over W30", "zh": "近30天成交额(GMV)", "unit": "currency"},
    "social_gmv_growth_30d": {
        "en": "daily GMV in W30 / daily GMV in P30 - 1; daily GMV = sum(gmv) / (periods x "
        "period days)",
        "zh": "GMV环比增长率",
        "unit": "ratio",
    },
    "social_gmv_cv_90d": {
        "en": "population std / mean of per-period GMV over W90 (coefficient of variation)",
        "zh": "近90天GMV波动率(变异系数)",
        "unit": "ratio",
    },
    "social_views_cv_90d": {
        "en": "population std / mean of per-period views over W90",
        "zh": "近90天播放量波动率(变异系数)",
        "unit": "ratio",
    },
    "social_conversion_30d": {
        "en": "sum(orders) / sum(views) over W30",
        "zh": "近30天转化率",
        "unit": "ratio",
    },
    "social_sentiment_mean": {
        "en": "Mean SnowNLP positive probability of non-blank comments dated <= as_of",
        "zh": "评论平均情感得分",
        "unit": "probability 0-1",
    },
    "social_negative_share": {
        "en": "Share of scored comments with sentiment < 0.3",
        "zh": "负面评论占比",
        "unit": "ratio 0-1",
    },
    "social_comments_scored": {
        "en": "Number of comments scored for sentiment",
        "zh": "参与情感分析的评论数",
        "unit": "count",
    },
    "social_days_since_update": {
        "en": "as_of - end (days since the last period on or before as_of)",
        "zh": "数据距今天数",
        "unit": "days",
    },
    "social_stale": {
        "en": "No period on or before as_of, or days since update > 7 (daily) / 14 (weekly)",
        "zh": "数据过期",
        "unit": "bool",
    },
}


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def _cv(values: Floats) -> float | None:
    """Coefficient of variation with the population standard deviation (ddof=0)."""
    if values.size < 2:
        return None
    mean = float(values.mean())
    return float(values.std() / mean) if mean > 0 else None


def social_features(
    metrics: SocialMetrics, *, as_of: date, sentiment: SentimentScorer | None = None
) -> dict[str, FeatureValue]:
    """The social_* features (see SOCIAL_FEATURE_DOCS); `sentiment` defaults to SnowNLP."""
    out: dict[str, FeatureValue] = dict.fromkeys(SOCIAL_FEATURE_DOCS)
    out["social_platform"] = metrics.platform
    out["social_granularity"] = metrics.granularity
    out["social_stale"] = True
    out.update(_comment_features(metrics.comments, as_of, sentiment or snownlp_sentiments))

    cutoff = np.datetime64(as_of, "D")
    n = int(np.searchsorted(metrics.dates, cutoff, side="right"))  # rows dated <= as_of
    if n == 0:
        return out
    dates = metrics.dates[:n]
    end = dates[-1]
    counts = {name: values[:n].astype(np.float64) for name, values in metrics.counts.items()}
    views, gmv = counts["views"], metrics.gmv[:n]
    interactions = counts["likes"] + counts["comments"] + counts["shares"]

    def rows_between(days_back_from: int, days_back_to: int) -> npt.NDArray[np.bool_]:
        """Rows with end - days_back_from < date <= end - days_back_to."""
        lower = end - np.timedelta64(days_back_from, "D")
        rows: npt.NDArray[np.bool_] = (dates > lower) & (
            dates <= end - np.timedelta64(days_back_to, "D")
        )
        return rows

    w30, p30, w90 = rows_between(30, 0), rows_between(60, 30), rows_between(90, 0)
    period = PERIOD_DAYS[metrics.granularity]
    gmv_per_day_now = _ratio(gmv[w30].sum(), w30.sum() * period)
    gmv_per_day_before = _ratio(gmv[p30].sum(), p30.sum() * period)
    age = int((cutoff - end) // np.timedelta64(1, "D"))
    out.update(
        social_followers=int(counts["followers"][-1]),
        social_engagement_rate_30d=_ratio(interactions[w30].sum(), views[w30].sum()),
        social_follower_growth_30d=_growth(dates, counts["followers"], 30),
        social_follower_growth_90d=_growth(dates, counts["followers"], 90),
        social_gmv_30d=float(gmv[w30].sum()),
        social_gmv_growth_30d=(
            gmv_per_day_now / gmv_per_day_before - 1
            if gmv_per_day_now is not None and gmv_per_day_before
            else None
        ),
        social_gmv_cv_90d=_cv(gmv[w90]),
        social_views_cv_90d=_cv(views[w90]),
        social_conversion_30d=_ratio(counts["orders"][w30].sum(), views[w30].sum()),
        social_days_since_update=age,
        social_stale=age > STALE_AFTER_DAYS[metrics.granularity],
    )
    return out


def _growth(dates: npt.NDArray[np.datetime64], levels: Floats, days: int) -> float | None:
    """levels[end] / level(end - days) - 1, the level at t being the last one dated <= t."""
    i = int(np.searchsorted(dates, dates[-1] - np.timedelta64(days, "D"), side="right"))
    if i == 0 or levels[i - 1] == 0:
        return None
    return float(levels[-1] / levels[i - 1] - 1)


def _comment_features(
    comments: Sequence[Comment], as_of: date, sentiment: SentimentScorer
) -> dict[str, FeatureValue]:
    texts = [c.text for c in comments if (c.date is None or c.date <= as_of) and c.text.strip()]
    scores = sentiment(texts) if texts else np.empty(0)
    scores = scores[~np.isnan(scores)]
    if scores.size == 0:
        return {
            "social_sentiment_mean": None,
            "social_negative_share": None,
            "social_comments_scored": 0,
        }
    return {
        "social_sentiment_mean": float(scores.mean()),
        "social_negative_share": float((scores < NEGATIVE_BELOW).mean()),
        "social_comments_scored": int(scores.size),
    }
