"""The production image's Dockerfile and the try-out compose file: validated without a container engine."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sealtrail.cli import app

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE = DOCKER / "compose.yaml"


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose config` where the plugin exists, else Debian's docker-compose (v1), which checks the same file
    against its schema. No engine is contacted."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        command = ["docker", "compose"]
    elif shutil.which("docker-compose"):
        command = ["docker-compose"]
    else:
        pytest.fail("no compose client: `make test` installs Debian's docker-compose (TEST_APT_PACKAGES)")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(path.parent)}
    return subprocess.run(
        [*command, "-f", str(path), "config"], capture_output=True, text=True, timeout=120, env=env, cwd=path.parent
    )


def test_compose_file_validates_with_service_worker_database_and_token() -> None:
    result = _compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "hsm-init", "sealtrail", "worker"}
    assert services["worker"]["command"] == ["sealtrail", "worker"]
    for name in ("sealtrail", "worker"):
        env = services[name]["environment"]
        assert env["SEALTRAIL_DATABASE_URL"].startswith("postgresql+psycopg://sealtrail:")
        assert env["SEALTRAIL_DATABASE_URL"].endswith("@postgres:5432/sealtrail")
        assert env["SEALTRAIL_KEY_BACKEND"] == "pkcs11"
        assert env["SEALTRAIL_PKCS11_PIN_FILE"].startswith("/var/lib/softhsm-sealtrail/")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["hsm-init"]["condition"] == "service_completed_successfully"
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert mounts == {"/var/lib/sealtrail", "/var/lib/softhsm-sealtrail"}  # the same token and data
    assert services["sealtrail"]["ports"] in (["8000:8000"], [{"published": 8000, "target": 8000}])
    assert "softhsm2-util --init-token" in services["hsm-init"]["command"][0]


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    text = COMPOSE.read_text().replace("    depends_on:\n      postgres:", "    depends_onn:\n      postgres:", 1)
    assert text != COMPOSE.read_text()
    broken.write_text(text)
    result = _compose_config(broken)
    assert result.returncode != 0
    assert "depends_onn" in result.stderr


def test_commands_in_the_compose_file_exist() -> None:
    """Every `sealtrail …` the compose file runs is a real command (the worker comes with the batch-jobs work)."""
    text = COMPOSE.read_text()
    found = set(re.findall(r"\bsealtrail (dev-pki|hsm load-dev-keys)\b", text))
    found |= {"serve"} if '["sealtrail", "serve"' in text else set()
    assert found == {"dev-pki", "hsm load-dev-keys", "serve"}
    runner = CliRunner()
    for command in found:
        result = runner.invoke(app, [*command.split(), "--help"])
        assert result.exit_code == 0, (command, result.output)


def _final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[-1]


def test_the_image_is_slim_non_root_with_fonts_and_libraries() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    final = _final_stage(dockerfile)
    assert final.startswith("python:3.11-slim-bookworm")
    users = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    for package in ("fonts-liberation2", "fonts-dejavu-core", "libpango-1.0-0", "libpangoft2-1.0-0", "softhsm2"):
        assert package in final, package
    assert "--no-install-recommends" in final and "rm -rf /var/lib/apt/lists/*" in final
    assert "uv" not in re.findall(r"pip install[^\n]*", final)  # the installer stays in the build stage
    assert "HEALTHCHECK" in final and "/healthz" in final
    # Every runtime package the Makefile installs for the service (not the test tools) is in the image.
    makefile = (DOCKER.parent / "Makefile").read_text()
    apt = re.search(r"^APT_PACKAGES := ((?:.*\\\n)*.*)$", makefile, flags=re.M)
    assert apt is not None
    runtime = set(apt.group(1).replace("\\", " ").split()) - {"xmlsec1", "zbar-tools", "python3-venv"}
    assert runtime <= set(final.replace("\\", " ").split())


# --- runtime dependencies only for the image and `make demo`; the test tools only for `make test` -------------------

ROOT = DOCKER.parent
GROUP_FLAGS = ("--no-dev", "--no-default-groups", "--only-dev", "--all-groups", "--group", "--only-group", "--dev")


def _dev_tools() -> set[str]:
    """The names of the packages in pyproject's `dev` dependency group (pytest, ruff, mypy, playwright, …)."""
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    names = {re.split(r"[^A-Za-z0-9_.-]", spec, maxsplit=1)[0].lower() for spec in group}
    assert {"pytest", "ruff", "mypy", "playwright"} <= names
    return names


def _group_flags(command: list[str]) -> list[str]:
    """The dependency-group options of a `uv sync` command line (what decides which groups are installed)."""
    flags: list[str] = []
    for i, word in enumerate(command):
        if word in ("--group", "--only-group"):
            flags += [word, command[i + 1]]
        elif word.split("=")[0] in GROUP_FLAGS:
            flags.append(word)
    return flags


def _exported(uv: str, flags: list[str]) -> set[str]:
    """The packages `uv sync <flags>` installs from uv.lock (read with `uv export`, offline; nothing installed)."""
    result = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-annotate", "--no-header", *flags],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "UV_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    return {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.-]+)==", result.stdout, flags=re.M)}


def _make_dry_run(target: str) -> list[list[str]]:
    """The commands `make -n TARGET` would run (nothing is run), split into words."""
    result = subprocess.run(["make", "-n", target], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if re.search(r"(^|/)uv (sync|run)\b", line)]


def _uv_commands(commands: list[list[str]], sub: str) -> list[list[str]]:
    return [c for c in commands if len(c) > 1 and c[0].endswith("uv") and c[1] == sub]


def test_the_image_installs_the_runtime_dependencies_only() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    syncs = [line.split() for line in re.findall(r"uv sync[^\n]*", dockerfile)]
    assert len(syncs) == 2  # the locked dependencies, then SealTrail itself
    for sync in syncs:
        flags = _group_flags(sync)
        assert flags and set(flags) <= {"--no-dev", "--no-default-groups"}, sync
    assert "pytest" not in dockerfile and "ruff" not in dockerfile


def test_make_demo_installs_no_test_tools_and_make_test_installs_them() -> None:
    """`make -n demo` (nothing run): its one `uv sync` leaves out the dev group, and with those very options uv.lock
    yields no test tool; every `uv run` runs what is installed (`--no-sync`: a plain `uv run` would add the default
    dev group back). `make -n test` syncs with the dev group."""
    dev_tools = _dev_tools()
    demo = _make_dry_run("demo")
    syncs = _uv_commands(demo, "sync")
    assert len(syncs) == 1, demo
    runtime = _exported(syncs[0][0], _group_flags(syncs[0]))
    assert "fastapi" in runtime and "pyhanko" in runtime
    assert not runtime & dev_tools, sorted(runtime & dev_tools)
    runs = _uv_commands(demo, "run")
    assert any("demo" in c for c in runs) and any("serve" in c for c in runs)
    for run in runs:
        assert "--no-sync" in run, run

    test = _make_dry_run("test")
    syncs = _uv_commands(test, "sync")
    assert len(syncs) == 1, test  # one sync: runtime and test tools together (no remove-and-reinstall)
    assert dev_tools <= _exported(syncs[0][0], _group_flags(syncs[0]))
    assert any("pytest" in c for c in _uv_commands(test, "run"))
