"""The production image's Dockerfile and the try-out compose file: validated without a container engine."""

from __future__ import annotations

import re
import shutil
import subprocess
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
