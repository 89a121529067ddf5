"""Circular 22/2021/TT-BGDĐT arithmetic and levels (grades 6–12), and Circular 27/2020 year-end results (grades 1–5).

Averages are rounded to one decimal, half up (the convention of Vietnamese school software: 6.45 → 6.5).
The thresholds are data (LEVEL_RULES, CONDUCT_YEAR, PRIMARY_RULES), so a correction to a reading of the circular
changes one table. Every rule cites its article; docs/rules.md lists them with the test that proves each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

ONE_DECIMAL = Decimal("0.1")
PASS, FAIL = "Đạt", "Chưa đạt"
LEVEL_ORDER = ("Tốt", "Khá", "Đạt", "Chưa đạt")
MAX_SESSIONS_ABSENT = 45
RETEST_BELOW = Decimal("5.0")


def round1(value: Decimal) -> Decimal:
    return value.quantize(ONE_DECIMAL, rounding=ROUND_HALF_UP)


def vn(value: Decimal | int | str) -> str:
    """A number as a Vietnamese teacher writes it: decimal comma (6,5)."""
    return str(value).replace(".", ",")


def semester_average(tx: Sequence[Decimal], gk: Decimal, ck: Decimal) -> Decimal:
    """Circular 22 Art. 9 cl. 2: ĐTBmhk = (ΣĐĐGtx + 2·ĐĐGgk + 3·ĐĐGck) / (số ĐĐGtx + 5)."""
    return round1((sum(tx, Decimal(0)) + 2 * gk + 3 * ck) / (len(tx) + 5))


def year_average(hk1: Decimal, hk2: Decimal) -> Decimal:
    """Circular 22 Art. 9 cl. 2: ĐTBmcn = (ĐTBmhkI + 2·ĐTBmhkII) / 3."""
    return round1((hk1 + 2 * hk2) / 3)


def tx_count(periods_per_year: int) -> int:
    """Circular 22 Art. 6: regular (TX) assessments per semester from the subject's periods per school year:
    up to 35 periods → 2, over 35 up to 70 → 3, over 70 → 4."""
    if periods_per_year <= 35:
        return 2
    if periods_per_year <= 70:
        return 3
    return 4


def comment_year_level(hk2_level: str) -> str:
    """Circular 22 Art. 9 cl. 1: a comment-assessed subject's year level is its HK II level."""
    return hk2_level


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
AT_LEAST = 6


def base_level(scored: Sequence[Decimal], comments: Sequence[str]) -> str:
    """Circular 22 Art. 9 cl. 3 (a)–(d), before the adjustment: Tốt = every comment subject Đạt, every scored
    subject ≥ 6,5 and at least 6 ≥ 8,0; Khá = comment subjects Đạt, every scored ≥ 5,0, at least 6 ≥ 6,5; Đạt = at
    most one comment subject Chưa đạt, at least 6 scored ≥ 5,0 and none < 3,5; otherwise Chưa đạt.
    "At least 6" means six subjects: a year with fewer than six scored subjects never reaches those levels."""
    fails = sum(1 for c in comments if c != PASS)
    for rule in LEVEL_RULES:
        if fails > rule.max_comment_fails:
            continue
        if rule.all_scored_at_least is not None and any(s < rule.all_scored_at_least for s in scored):
            continue
        if rule.none_below is not None and any(s < rule.none_below for s in scored):
            continue
        if sum(1 for s in scored if s >= rule.at_least_six_reach) < AT_LEAST:
            continue
        return rule.level
    return FAIL


def adjusted_level(scored: Sequence[Decimal], comments: Sequence[str]) -> tuple[str, str | None]:
    """Circular 22 Art. 9 cl. 3 adjustment: when the result would be Tốt or Khá but one single subject pulls it down
    two levels or more, it is raised to the level next above the one computed (Tốt → Đạt becomes Khá; Tốt or Khá →
    Chưa đạt becomes Đạt). "Because of one subject": with that subject's result alone made good (10,0 or Đạt), the
    level would be Tốt or Khá. Returns (level, the subject's position or None when no adjustment was made)."""
    level = base_level(scored, comments)
    rank = LEVEL_ORDER.index(level)
    for i in range(len(scored)):
        better = base_level([*scored[:i], Decimal(10), *scored[i + 1 :]], comments)
        if better in ("Tốt", "Khá") and rank - LEVEL_ORDER.index(better) >= 2:
            return LEVEL_ORDER[rank - 1], f"scored:{i}"
    for i in range(len(comments)):
        better = base_level(scored, [*comments[:i], PASS, *comments[i + 1 :]])
        if better in ("Tốt", "Khá") and rank - LEVEL_ORDER.index(better) >= 2:
            return LEVEL_ORDER[rank - 1], f"comment:{i}"
    return level, None


def learning_level(scored: Sequence[Decimal], comments: Sequence[str]) -> str:
    """The learning result (Tốt/Khá/Đạt/Chưa đạt) of Circular 22 Art. 9 cl. 3, adjustment included."""
    return adjusted_level(scored, comments)[0]


# Circular 22 Art. 8 cl. 2: the year's conduct from (HK I, HK II). Every pair not listed is Chưa đạt.
CONDUCT_YEAR: dict[tuple[str, str], str] = {
    ("Tốt", "Tốt"): "Tốt",
    ("Khá", "Tốt"): "Tốt",
    ("Đạt", "Tốt"): "Khá",
    ("Chưa đạt", "Tốt"): "Khá",
    ("Tốt", "Khá"): "Khá",
    ("Khá", "Khá"): "Khá",
    ("Đạt", "Khá"): "Khá",
    ("Chưa đạt", "Khá"): "Đạt",
    ("Tốt", "Đạt"): "Khá",
    ("Khá", "Đạt"): "Đạt",
    ("Đạt", "Đạt"): "Đạt",
    ("Chưa đạt", "Đạt"): "Đạt",
}


def conduct_year(hk1: str, hk2: str) -> str:
    """Circular 22 Art. 8 cl. 2: Tốt = HK II Tốt and HK I at least Khá; Khá = HK II Khá and HK I at least Đạt, or HK II
    Đạt and HK I Tốt, or HK II Tốt and HK I Đạt or Chưa đạt; Đạt = HK II Đạt and HK I Khá, Đạt or Chưa đạt, or HK II
    Khá and HK I Chưa đạt; otherwise Chưa đạt."""
    return CONDUCT_YEAR.get((hk1, hk2), FAIL)


def at_least_pass(level: str | None) -> bool:
    return level in ("Tốt", "Khá", "Đạt")


def promotion(final_learning: str | None, final_conduct: str | None, sessions_absent: int) -> bool:
    """Circular 22 Art. 12: promoted when the year's conduct and learning results (after summer training and
    re-tests, Art. 13–14) are both Đạt or above, and no more than 45 sessions (buổi) were missed in the year,
    excused or not."""
    return at_least_pass(final_learning) and at_least_pass(final_conduct) and sessions_absent <= MAX_SESSIONS_ABSENT


def valid_score(value: Decimal) -> bool:
    return Decimal(0) <= value <= Decimal(10) and value == value.quantize(ONE_DECIMAL)


# Circular 27/2020 Art. 10 cl. 2, year-end results for primary school, best first. Each rule: the subject levels
# allowed, the trait (quality/competence) levels allowed, and the lowest year-end test score allowed.
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
    """Circular 27/2020 Art. 10 cl. 2: the year-end result from every subject's level, every quality's and
    competence's level and every year-end periodic test score."""
    for rule in PRIMARY_RULES:
        if (
            all(level in rule.subject_levels for level in subject_levels)
            and all(level in rule.trait_levels for level in trait_levels)
            and all(score >= rule.min_score for score in scores)
        ):
            return rule.result
    return PRIMARY_FAIL
