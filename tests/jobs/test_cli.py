"""The batch commands on SQLite: queue a class folder, run it with `sealtrail worker`, follow it, refuse bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import schemas
from tests.jobs.conftest import JobEnv, transcripts
from tests.jobs.test_batches import issue_entries

ROOT = Path(__file__).resolve().parents[2]


def sealtrail(env: JobEnv, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sealtrail", *args],
        cwd=ROOT, env=os.environ | env.env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)  # five cold `sealtrail` processes; slow when the machine is shared
def test_a_class_folder_is_queued_run_by_the_worker_and_followed(
    job_env_factory: Callable[..., JobEnv], tmp_path: Path
) -> None:
    env = job_env_factory()
    folder = tmp_path / "lop-9a"
    folder.mkdir()
    for i, doc in enumerate(transcripts(2)):
        (folder / f"{i}.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    school = schemas.load_sample("transcript_thcs")["school"]["code"]

    wrong = sealtrail(env, "batch", "submit", str(folder), "--school", "79000999")
    assert wrong.returncode == 2 and "nothing was queued" in wrong.stderr and "another school" in wrong.stderr

    queued = sealtrail(env, "batch", "submit", str(folder), "--school", school)
    assert queued.returncode == 0, queued.stderr
    batch = queued.stdout.split()[1].rstrip(":")
    assert "2 documents queued" in queued.stdout

    ran = sealtrail(env, "worker")  # SQLite: runs the open items to the end, then exits
    assert ran.returncode == 0 and "2 batch documents processed" in ran.stdout, ran.stderr
    status = json.loads(sealtrail(env, "batch", "status", batch).stdout)
    assert status["state"] == "done" and status["counts"]["issued"] == 2
    assert issue_entries(env) == Counter(d["id"] for d in status["documents"])
