"""Issue 22 on the accounts side, attacked as one organisation's admin, a university, a verifier organisation or
nobody, across two schools (A, B), a university and a verifier organisation, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest

from accounts import service
from tests.accounts.conftest import SCHOOL_A, SCHOOL_B, World

UNIVERSITY = "DHQG-HN"
VERIFIER = "XACMINH-1"


@pytest.fixture
def orgs(world: World) -> World:
    """The conftest's Sở, Phòng and schools A and B, plus a university and a verifier organisation with admins."""
    service.create_org(world.dep.engine, UNIVERSITY, "Đại học Quốc gia Hà Nội", "university")
    service.create_org(world.dep.engine, VERIFIER, "Công ty xác minh hồ sơ", "verifier_org")
    world.add_staff("admin-b", SCHOOL_B, "school_admin")
    world.add_staff("admin-uni", UNIVERSITY, "school_admin")
    world.add_staff("admin-ver", VERIFIER, "school_admin")
    return world


def test_audit_exports_neutralise_formulas_written_by_anyone(orgs: World) -> None:
    ctx = orgs.app.state.accounts  # type: ignore[attr-defined]
    for hostile in ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"):
        ctx.record(None, hostile, "document.revoke", org=SCHOOL_A, target=hostile)
    client = orgs.login("auditor-a")
    export = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky")
    assert export.status_code == 200
    rows = [r for r in csv.DictReader(io.StringIO(export.text)) if r["action"] == "document.revoke"]
    assert len(rows) == 6
    for row in rows:
        for cell in (row["actor"], row["target"]):
            assert cell.startswith("'") and cell[1] in "=+-@\t\r", cell


@pytest.mark.parametrize("query", ["tu=2020-01-01&den=9999-12-31", "tu=0001-01-01", "tu=2021-01-02&den=2021-01-01"])
def test_audit_dates_out_of_range_are_a_400_not_a_500(orgs: World, query: str) -> None:
    client = orgs.login("auditor-a")
    response = client.get(f"/can-bo/{SCHOOL_A}/nhat-ky?{query}")
    assert response.status_code == 400 and "/" in response.json()["detail"]
    api = query.replace("tu=", "start=").replace("den=", "end=")
    assert client.get(f"/api/v1/schools/{SCHOOL_A}/audit?{api}").status_code == 400
