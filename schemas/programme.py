"""Grade programmes and assessment regimes as data (schemas/tables/programmes.json, regimes.json).

A subject is matched to the programme by a spelling-tolerant key (case, NFC, punctuation, "lí/lý", "mĩ/mỹ",
"hóa/hoá" and the table's aliases), so "Vật lý" and "Hoạt động trải nghiệm hướng nghiệp" are the programme's
"Vật lí" and "Hoạt động trải nghiệm, hướng nghiệp".
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from schemas.grading import tx_count

Regime = Literal["TT22", "TT58", "TT27", "TT30"]
REGIME_NAMES = {
    "TT22": "Thông tư 22/2021/TT-BGDĐT",
    "TT58": "Thông tư 58/2011/TT-BGDĐT (sửa đổi bởi Thông tư 26/2020/TT-BGDĐT)",
    "TT27": "Thông tư 27/2020/TT-BGDĐT",
    "TT30": "Thông tư 30/2014/TT-BGDĐT (sửa đổi bởi Thông tư 22/2016/TT-BGDĐT)",
}
_VARIANTS = {"lý": "lí", "mỹ": "mĩ", "hoá": "hóa", "kỹ": "kĩ", "thuỷ": "thủy"}


@dataclass(frozen=True)
class ProgrammeSubject:
    name: str
    assessment: Literal["scored", "comment", "level"]
    periods: int
    required: bool
    periodic_test: bool = False
    group: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def tx(self) -> int:
        """Circular 22 Art. 6: the number of regular (TX) scores per semester, from the periods per year."""
        return tx_count(self.periods)


def subject_key(name: str) -> str:
    """The matching key of a subject name: NFC, lower case, no punctuation, common spelling variants unified."""
    text = unicodedata.normalize("NFC", name).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(_VARIANTS.get(w, w) for w in text.split())


@cache
def _tables() -> tuple[dict[str, Any], dict[str, Any]]:
    folder = resources.files("schemas").joinpath("tables")
    programmes = json.loads(folder.joinpath("programmes.json").read_text(encoding="utf-8"))
    regimes = json.loads(folder.joinpath("regimes.json").read_text(encoding="utf-8"))
    return programmes, regimes


@cache
def programme(grade: int) -> tuple[ProgrammeSubject, ...]:
    """The 2018 programme's subjects of one grade (1–12)."""
    rows = _tables()[0]["grades"][str(grade)]
    return tuple(ProgrammeSubject(**{**r, "aliases": tuple(r.get("aliases", ()))}) for r in rows)


def electives_needed(grade: int) -> int:
    return int(_tables()[0]["electives"].get(str(grade), 0))


def find_subject(grade: int, name: str) -> ProgrammeSubject | None:
    key = subject_key(name)
    for s in programme(grade):
        if key == subject_key(s.name) or key in (subject_key(a) for a in s.aliases):
            return s
    return None


def primary_traits() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(qualities, competences) a primary pupil is rated on (Circular 27/2020)."""
    traits = _tables()[0]["primary_traits"]
    return tuple(traits["qualities"]), tuple(traits["competences"])


def start_year(school_year: str) -> int:
    return int(school_year[:4])


def regime(grade: int, school_year: str) -> Regime:
    """Which rules judged a year: Circular 22/2021 (grades 6–12) and Circular 27/2020 (grades 1–5) from their
    roll-out year for the grade (regimes.json); before it, Circular 58/2011 as amended by 26/2020 (secondary) or
    Circular 30/2014 as amended by 22/2016 (primary)."""
    regimes = _tables()[1]
    if grade <= 5:
        return "TT27" if start_year(school_year) >= regimes["circular27_from"][str(grade)] else "TT30"
    return "TT22" if start_year(school_year) >= regimes["circular22_from"][str(grade)] else "TT58"


def legacy_levels() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Circular 58/2011 (as amended by 26/2020): học lực Giỏi/Khá/Trung bình/Yếu/Kém; hạnh kiểm Tốt/Khá/Trung
    bình/Yếu."""
    regimes = _tables()[1]
    return tuple(regimes["circular58_learning"]), tuple(regimes["circular58_conduct"])
