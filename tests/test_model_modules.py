"""Every module that defines tables works when imported alone: the tables its foreign keys point at come with it.

A model module whose foreign key names a table defined in a module it does not import works only when something
else happened to import that module first; imported alone (one test file, one CLI command) SQLAlchemy fails with
NoReferencedTableError at the first flush. Each module is imported in a fresh interpreter and every foreign key of
the metadata it brings is resolved.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "errors",
    "schemas",
    "ledger",
    "registry",
    "signer",
    "verifier",
    "accounts",
    "workflow",
    "jobs",
    "sealtrail",
)


def _defines_tables(path: Path) -> bool:
    """A class with ``table=True`` (SQLModel) or a module-level ``Table(...)`` call."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            k.arg == "table" and isinstance(k.value, ast.Constant) and k.value.value is True for k in node.keywords
        ):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "Table":
                return True
    return False


def model_modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if _defines_tables(path):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def test_the_model_modules_are_found() -> None:
    modules = model_modules()
    assert {"registry.records", "accounts.models", "workflow.signing", "jobs.batches"} <= set(modules)


_CHECK = """
import importlib, sys
from sqlalchemy import MetaData
from sqlmodel import SQLModel
module = importlib.import_module(sys.argv[1])
# SQLModel's shared metadata, and any MetaData of the module's own (plain SQLAlchemy tables, e.g. verifier.gate)
metadatas = [SQLModel.metadata, *(v for v in vars(module).values() if isinstance(v, MetaData))]
for metadata in metadatas:
    for table in metadata.sorted_tables:
        for key in table.foreign_keys:
            key.column  # raises NoReferencedTableError when the target table is not in the metadata
print(sum(len(metadata.tables) for metadata in metadatas))
"""


@pytest.mark.parametrize("module", model_modules())
def test_a_model_module_alone_resolves_its_foreign_keys(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHECK, module], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 0
