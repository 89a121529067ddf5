"""Data-exchange records (school-management software ↔ SealTrail ↔ the Ministry's data store) and our transcripts.

The field names follow an UNOFFICIAL lead (see schemas/tables/exchange.json, which lists every field and marks ours);
one record is one pupil's học bạ for one school year, with sync fields ``idbanghi`` (stable record id),
``sukien`` (NEW/UPDATE/CANCEL), ``phienban`` (version) and ``thoigiancapnhat`` (Vietnam local time).

- :func:`transcript_to_records` turns a transcript into one record per school year.
- :func:`apply_records` applies a batch of records to the state a receiver holds: a NEW or UPDATE replaces the held
  record only when its version is higher, a CANCEL withdraws it; anything stale is reported and changes nothing.
  Every record is checked first and the whole batch is refused if one is malformed (nothing half-applied).
- :func:`records_to_transcripts` rebuilds our transcripts from the live (not cancelled) records, validated like any
  input, so a school's software can send its records and SealTrail can issue them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

from schemas.common import SchemaError, ValidationProblem
from schemas.transcript import Transcript

TABLE_NAME = Path("tables") / "exchange.json"
# Package data: it travels inside the schemas package, so a checkout and an installed wheel both have it.
TABLE_PLACES = (Path(__file__).resolve().parent / TABLE_NAME,)
VIETNAM = timezone(timedelta(hours=7))
EVENTS = ("NEW", "UPDATE", "CANCEL")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_REQUIRED = ("idbanghi", "sukien", "phienban", "thoigiancapnhat", "madinhdanhhocba", "matruong", "namhoc")


@cache
def table() -> dict[str, Any]:
    for place in TABLE_PLACES:
        if place.is_file():
            return dict(json.loads(place.read_text(encoding="utf-8")))
    raise FileNotFoundError(f"the data-exchange mapping {TABLE_NAME} is missing (looked in {TABLE_PLACES})")


def _codes() -> dict[str, str]:
    return dict(table()["result_codes"])


def record_id(school_code: str, transcript_id: str, school_year: str) -> str:
    """``idbanghi``: the same pupil's year in the same school always has the same id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:sealtrail:exchange:{school_code}/{transcript_id}/{school_year}"))


def exchange_time(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%Y-%m-%dT%H:%M:%S")


def parse_time(text: str) -> datetime:
    if not isinstance(text, str) or not _TIME.match(text):
        raise ValueError(f"thoigiancapnhat phải có dạng YYYY-MM-DDTHH:mm:ss / must be YYYY-MM-DDTHH:mm:ss: {text!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=VIETNAM)


def _levels(results: Any) -> dict[str, str]:
    codes = _codes()
    pairs = (("hocky1", results.hk1), ("hocky2", results.hk2), ("canam", results.year))
    return {k: codes[v] for k, v in pairs if v}


def _semester(scores: Any) -> dict[str, Any] | None:
    if scores is None:
        return None
    out = {"diemtx": [str(x) for x in scores.tx], "diemgk": str(scores.gk), "diemck": str(scores.ck)}
    if scores.average is not None:
        out["diemtb"] = str(scores.average)
    return out


def _subject(s: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"tenmon": s.subject, "hinhthuc": "D" if s.assessment == "scored" else "NX"}
    if s.assessment == "scored":
        row |= {"hocky1": _semester(s.hk1), "hocky2": _semester(s.hk2)}
        if s.year_average is not None:
            row["diemtbcn"] = str(s.year_average)
    else:
        row |= {"mucdat_hocky1": s.hk1_level, "mucdat_hocky2": s.hk2_level, "mucdat_canam": s.year_level}
    if s.teacher_comment:
        row["nhanxet"] = s.teacher_comment
    row["diemkiemtralai"] = str(s.retest_score) if s.retest_score is not None else None
    row["mucdatkiemtralai"] = s.retest_level
    return {k: v for k, v in row.items() if v is not None}


def transcript_to_records(
    doc: Transcript, *, event: str = "NEW", version: int = 1, updated: datetime, status: str = "issued"
) -> list[dict[str, Any]]:
    """One exchange record per school year of a grade 6–12 transcript."""
    if doc.level == "primary":
        raise SchemaError(
            [ValidationProblem("level", "học bạ tiểu học chưa có bản đồ trao đổi / primary records are not mapped yet")]
        )
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    holder, school = doc.holder, doc.school
    principal = next((s for s in doc.signatories if s.role == "principal"), None)
    common: dict[str, Any] = {
        "sukien": event,
        "phienban": version,
        "thoigiancapnhat": exchange_time(updated),
        "madinhdanhhocba": doc.record_id,
        "trangthaithongtinhocba": table()["record_status_codes"][status],
        "masogd": school.code[:2],
        "matruong": school.code,
        "macaphoc": table()["level_codes"][doc.level],
        "mahocsinh": doc.student_code,
        "hovaten": holder.full_name,
        "ho": holder.family_name,
        "chudem": holder.middle_name,
        "ten": holder.given_name,
        "ngaysinh": holder.birth_date.isoformat(),
        "noisinh": holder.birth_place,
        "gioitinh": int(holder.gender),
        "dantoc": holder.ethnicity,
        "quoctich": holder.nationality,
        "sodinhdanhcanhan": holder.personal_id,
        "mahosohoctap": holder.learner_code,
        "tentruong": school.name,
        "coquanchuquan": school.authority,
        "tinhthanh": school.province,
        "quanhuyen": school.district,
        "diachitruong": school.address,
        "ngaycap": doc.issue_date.isoformat(),
        "diadanhphathanh": doc.issue_place,
        "chucvugiamhieu": principal.title if principal else None,
        "nguoiky": [{"vaitro": s.role, "chucvu": s.title, "hoten": s.name} for s in doc.signatories],
        "sodangbo": doc.register_number or None,
        "noiohiennay": doc.residence or None,
        "hotencha": doc.father_name or None,
        "hotenme": doc.mother_name or None,
        "hotennguoigiamho": doc.guardian_name or None,
        "anhhocsinh": doc.photo,
        "xacnhanhoanthanhthcs": (
            {
                "soquyetdinh": doc.completion.decision_number,
                "ngayquyetdinh": doc.completion.decision_date.isoformat(),
                "hieutruong": doc.completion.principal,
                "chucvu": doc.completion.principal_title,
            }
            if doc.completion
            else None
        ),
    }
    records = []
    for year in doc.years:
        record = {
            "idbanghi": record_id(school.code, doc.record_id, year.school_year),
            **common,
            "namhoc": year.school_year,
            "makhoi": year.grade,
            "tenlop": year.class_name,
            "truongnamhoc": year.school_name,
            "ketquahoctap": _levels(year.learning),
            "ketquarenluyen": _levels(year.conduct),
            "duoclenlop": year.promoted,
            "sobuoinghi": year.sessions_absent,
            "khenthuong": year.awards or None,
            "chucvuhieutruong": year.principal_title or None,
            "kqhoctapsaukiemtralai": _codes()[year.learning_after_retest] if year.learning_after_retest else None,
            "nhiemvurenluyenhe": year.summer_training or None,
            "kqrenluyenhe": _codes()[year.conduct_after_summer] if year.conduct_after_summer else None,
            "songaynghi": year.days_absent,
            "nhanxetgvcn": year.homeroom_comment,
            "gvcn": year.homeroom_teacher,
            "hieutruong": year.principal,
            "monhoc": [_subject(s) for s in year.subjects],
        }
        records.append({k: v for k, v in record.items() if v is not None})
    return records


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # stale or repeated versions, with the reason


def check_record(record: Any, where: str) -> list[ValidationProblem]:
    if not isinstance(record, Mapping):
        return [ValidationProblem(where, "bản ghi phải là một đối tượng JSON / a record must be a JSON object")]
    problems = [
        ValidationProblem(f"{where}.{name}", f"thiếu trường {name} / {name} is missing")
        for name in _REQUIRED
        if record.get(name) in (None, "")
    ]
    if not _CODE.match(str(record.get("madinhdanhhocba", ""))) or not _CODE.match(str(record.get("matruong", ""))):
        problems.append(
            ValidationProblem(f"{where}.madinhdanhhocba", "mã chỉ gồm chữ, số, '-', '_' / codes are letters and digits")
        )
    if record.get("sukien") not in EVENTS:
        problems.append(ValidationProblem(f"{where}.sukien", "sukien phải là NEW, UPDATE hoặc CANCEL / unknown event"))
    version = record.get("phienban")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(
            ValidationProblem(f"{where}.phienban", "phienban phải là số nguyên ≥ 1 / must be an integer ≥ 1")
        )
    try:
        parse_time(record.get("thoigiancapnhat"))  # type: ignore[arg-type]
    except ValueError as exc:
        problems.append(ValidationProblem(f"{where}.thoigiancapnhat", str(exc)))
    return problems


def apply_records(state: dict[str, dict[str, Any]], records: Iterable[Any]) -> ApplyResult:
    """Apply records (in order) to ``state`` (idbanghi → latest record held). All or nothing on malformed input."""
    batch = list(records)
    problems = [p for i, r in enumerate(batch) for p in check_record(r, f"[{i}]")]
    if problems:
        raise SchemaError(problems)
    result = ApplyResult()
    for record in batch:
        key, version = str(record["idbanghi"]), int(record["phienban"])
        held = state.get(key)
        if held is not None and int(held["phienban"]) >= version:
            result.ignored.append(f"{key}: phiên bản {version} ≤ {held['phienban']} đang giữ / not newer than held")
            continue
        if held is None and record["sukien"] == "UPDATE" and version == 1:
            result.ignored.append(f"{key}: UPDATE phiên bản 1 chưa có NEW / an UPDATE cannot be version 1")
            continue
        state[key] = dict(record)
        (result.cancelled if record["sukien"] == "CANCEL" else result.applied).append(key)
    return result


def _split_name(full: str) -> tuple[str, str, str]:
    parts = full.split()
    if len(parts) == 1:
        return parts[0], "", parts[0]
    return parts[0], " ".join(parts[1:-1]), parts[-1]


def _results(levels: Mapping[str, str] | None) -> dict[str, str]:
    names = {v: k for k, v in _codes().items()}
    out = {}
    for ours, theirs in (("hk1", "hocky1"), ("hk2", "hocky2"), ("year", "canam")):
        code = (levels or {}).get(theirs)
        if code:
            if code not in names:
                raise SchemaError(
                    [ValidationProblem(theirs, f"mã kết quả không hợp lệ / unknown result code {code!r}")]
                )
            out[ours] = names[code]
    return out


def _name(code: str) -> str:
    names = {v: k for k, v in _codes().items()}
    if code not in names:
        raise SchemaError([ValidationProblem("", f"mã kết quả không hợp lệ / unknown result code {code!r}")])
    return names[code]


def _semester_back(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not data:
        return None
    out = {"tx": data.get("diemtx", []), "gk": data.get("diemgk"), "ck": data.get("diemck")}
    if data.get("diemtb") is not None:
        out["average"] = data["diemtb"]
    return out


def _subject_back(row: Mapping[str, Any]) -> dict[str, Any]:
    scored = row.get("hinhthuc", "D") == "D"
    out: dict[str, Any] = {"subject": row.get("tenmon", ""), "assessment": "scored" if scored else "comment"}
    if scored:
        out |= {"hk1": _semester_back(row.get("hocky1")), "hk2": _semester_back(row.get("hocky2"))}
        if row.get("diemtbcn") is not None:
            out["year_average"] = row["diemtbcn"]
    else:
        out |= {
            k: row.get(f"mucdat_{v}")
            for k, v in (("hk1_level", "hocky1"), ("hk2_level", "hocky2"), ("year_level", "canam"))
        }
    out["teacher_comment"] = row.get("nhanxet", "")
    out["retest_score"] = row.get("diemkiemtralai")
    out["retest_level"] = row.get("mucdatkiemtralai")
    return {k: v for k, v in out.items() if v is not None}


def records_to_transcripts(records: Iterable[Mapping[str, Any]]) -> list[Transcript]:
    """Our transcripts from the live records (CANCELled ones left out), one per madinhdanhhocba, years in order;
    the transcript-level fields come from the newest record. Validated like any input (averages re-checked)."""
    from schemas.parse import parse_document

    levels = {v: k for k, v in table()["level_codes"].items()}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        if record.get("sukien") != "CANCEL":
            groups[(str(record["matruong"]), str(record["madinhdanhhocba"]))].append(record)
    transcripts = []
    problems: list[ValidationProblem] = []
    for (_school, record_no), group in sorted(groups.items()):
        group.sort(key=lambda r: str(r["namhoc"]))
        newest = max(group, key=lambda r: parse_time(r["thoigiancapnhat"]))
        family, middle, given = _split_name(str(newest.get("hovaten", "")))
        data = {
            "kind": "transcript",
            "level": levels.get(str(newest.get("macaphoc")), ""),
            "record_id": record_no,
            "student_code": newest.get("mahocsinh", ""),
            "holder": {
                "family_name": newest.get("ho", family),
                "middle_name": newest.get("chudem", middle),
                "given_name": newest.get("ten", given),
                "birth_date": newest.get("ngaysinh"),
                "birth_place": newest.get("noisinh", ""),
                "gender": newest.get("gioitinh", 0),
                "personal_id": newest.get("sodinhdanhcanhan"),
                "learner_code": newest.get("mahosohoctap"),
                "ethnicity": newest.get("dantoc"),
                "nationality": newest.get("quoctich", "Việt Nam"),
            },
            "school": {
                "code": newest.get("matruong"),
                "name": newest.get("tentruong", ""),
                "authority": newest.get("coquanchuquan", ""),
                "province": newest.get("tinhthanh", ""),
                "district": newest.get("quanhuyen", ""),
                "address": newest.get("diachitruong", ""),
            },
            "issue_date": newest.get("ngaycap") or parse_time(newest["thoigiancapnhat"]).date().isoformat(),
            "issue_place": newest.get("diadanhphathanh", ""),
            "signatories": [
                {"role": s.get("vaitro"), "title": s.get("chucvu", ""), "name": s.get("hoten", "")}
                for s in newest.get("nguoiky", [])
            ],
            "register_number": newest.get("sodangbo", ""),
            "residence": newest.get("noiohiennay", ""),
            "father_name": newest.get("hotencha", ""),
            "mother_name": newest.get("hotenme", ""),
            "guardian_name": newest.get("hotennguoigiamho", ""),
            "photo": newest.get("anhhocsinh"),
        }
        completion = newest.get("xacnhanhoanthanhthcs")
        if isinstance(completion, Mapping):
            data["completion"] = {
                "decision_number": completion.get("soquyetdinh", ""),
                "decision_date": completion.get("ngayquyetdinh"),
                "principal": completion.get("hieutruong", ""),
                "principal_title": completion.get("chucvu", "Hiệu trưởng"),
            }
        try:
            data["years"] = [
                {
                    "school_year": r["namhoc"],
                    "grade": r.get("makhoi"),
                    "class_name": r.get("tenlop", ""),
                    "school_name": r.get("truongnamhoc", ""),
                    "subjects": [_subject_back(s) for s in r.get("monhoc", [])],
                    "learning": _results(r.get("ketquahoctap")),
                    "conduct": _results(r.get("ketquarenluyen")),
                    "homeroom_comment": r.get("nhanxetgvcn", ""),
                    **({"promoted": r["duoclenlop"]} if r.get("duoclenlop") is not None else {}),
                    **({"days_absent": r["songaynghi"]} if r.get("songaynghi") is not None else {}),
                    **({"sessions_absent": r["sobuoinghi"]} if r.get("sobuoinghi") is not None else {}),
                    "homeroom_teacher": r.get("gvcn", ""),
                    "principal": r.get("hieutruong", ""),
                    "awards": r.get("khenthuong", ""),
                    "principal_title": r.get("chucvuhieutruong", ""),
                    "summer_training": r.get("nhiemvurenluyenhe", ""),
                    **(
                        {"learning_after_retest": _name(r["kqhoctapsaukiemtralai"])}
                        if r.get("kqhoctapsaukiemtralai")
                        else {}
                    ),
                    **({"conduct_after_summer": _name(r["kqrenluyenhe"])} if r.get("kqrenluyenhe") else {}),
                }
                for r in group
            ]
            doc = parse_document({k: v for k, v in data.items() if v is not None})
        except SchemaError as exc:
            problems += [ValidationProblem(f"{record_no}.{p.where}", p.message) for p in exc.problems]
            continue
        assert isinstance(doc, Transcript)
        transcripts.append(doc)
    if problems:
        raise SchemaError(problems)
    return transcripts
