"""Circular 22/2021 arithmetic: semester and year averages, and learning-result levels.

Averages are rounded to one decimal, half up (the convention of Vietnamese school software: 6.45 → 6.5).
The thresholds are data (LEVEL_RULES), so a correction to the circular's reading changes one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ONE_DECIMAL = Decimal("0.1")
TX_COUNT = (2, 4)
PASS, FAIL = "Đạt", "Chưa đạt"


def round1(value: Decimal) -> Decimal:
    return value.quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def semester_average(tx: Sequence[Decimal], gk: Decimal, ck: Decimal) -> Decimal:
    """ĐTBmhk = (ΣTX + 2·GK + 3·CK) / (n_TX + 5)."""
    return round1((sum(tx, Decimal(0)) + 2 * gk + 3 * ck) / (len(tx) + 5))


def year_average(hk1: Decimal, hk2: Decimal) -> Decimal:
    """ĐTBmcn = (ĐTBmhkI + 2·ĐTBmhkII) / 3."""
    return round1((hk1 + 2 * hk2) / 3)


@dataclass(frozen=True)
class LevelRule:
    level: str
    max_comment_fails: int
    all_scored_at_least: Decimal | None
    at_least_six_reach: Decimal
    none_below: Decimal | None


LEVEL_RULES = (
    LevelRule("Tốt", 0, Decimal("6.5"), Decimal("8.0"), None),
    LevelRule("Khá", 0, Decimal("5.0"), Decimal("6.5"), None),
    LevelRule("Đạt", 1, None, Decimal("5.0"), Decimal("3.5")),
)
LEVEL_ORDER = ("Tốt", "Khá", "Đạt", "Chưa đạt")


def learning_level(scored: Sequence[Decimal], comments: Sequence[str]) -> str:
    """The learning result (Tốt/Khá/Đạt/Chưa đạt) from subject averages and comment-subject levels."""
    fails = sum(1 for c in comments if c != PASS)
    for rule in LEVEL_RULES:
        if fails > rule.max_comment_fails:
            continue
        if rule.all_scored_at_least is not None and any(s < rule.all_scored_at_least for s in scored):
            continue
        if rule.none_below is not None and any(s < rule.none_below for s in scored):
            continue
        if sum(1 for s in scored if s >= rule.at_least_six_reach) < min(6, len(scored)):
            continue
        return rule.level
    return "Chưa đạt"


def valid_score(value: Decimal) -> bool:
    return Decimal(0) <= value <= Decimal(10) and value == value.quantize(ONE_DECIMAL)


# Circular 27/2020, year-end results for primary school, best first. Each rule: the subject levels allowed, the
# trait (quality/competence) levels allowed, and the lowest year-end test score allowed.
@dataclass(frozen=True)
class PrimaryRule:
    result: str
    subject_levels: frozenset[str]
    trait_levels: frozenset[str]
    min_score: int


PRIMARY_RULES = (
    PrimaryRule("Hoàn thành xuất sắc", frozenset("T"), frozenset("T"), 9),
    PrimaryRule("Hoàn thành tốt", frozenset("T"), frozenset("T"), 7),
    PrimaryRule("Hoàn thành", frozenset("TH"), frozenset({"T", "Đ"}), 5),
)
PRIMARY_FAIL = "Chưa hoàn thành"
PRIMARY_RESULTS = (*(r.result for r in PRIMARY_RULES), PRIMARY_FAIL)


def primary_result(subject_levels: Sequence[str], trait_levels: Sequence[str], scores: Sequence[int]) -> str:
    """The year-end result from every subject's level, every trait's level and every year-end test score."""
    for rule in PRIMARY_RULES:
        if (
            all(level in rule.subject_levels for level in subject_levels)
            and all(level in rule.trait_levels for level in trait_levels)
            and all(score >= rule.min_score for score in scores)
        ):
            return rule.result
    return PRIMARY_FAIL
