"""The deployment guide (docs/deployment.md) and the files it ships (deploy/) cannot drift from the program: every
`sealtrail …` command line in the guide's code blocks and in the systemd units is parsed by the real command tree
(subcommand, options, their values and the required ones), and every SEALTRAIL_* variable they name is a setting."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from sealtrail.cli import app
from sealtrail.settings import Settings

try:  # typer vendors click (typer._click) since 0.2x; its command tree raises that click's UsageError
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover - an older typer on the real click
    from click import UsageError  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "deployment.md"
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
SEPARATORS = {"&&", "||", ";", "|"}


def _is_sealtrail(word: str) -> bool:
    return word == "sealtrail" or word.endswith("/bin/sealtrail")


def sealtrail_commands(line: str) -> list[list[str]]:
    """The argument lists of every `sealtrail` run in one shell line: at a command's position (after any VAR=value
    prefixes), in each part of `&&`/`;`/`|` chains, and inside `sh -c '…'`."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:
        return []
    found: list[list[str]] = []
    segment: list[str] = []
    for word in [*words, ";"]:
        if word not in SEPARATORS:
            segment.append(word)
            continue
        rest = segment
        while rest and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", rest[0]):
            rest = rest[1:]
        if rest and rest[0] == "exec":
            rest = rest[1:]
        if rest and _is_sealtrail(rest[0]):
            found.append(rest[1:])
        elif len(rest) >= 3 and rest[0].endswith("sh") and rest[1] == "-c":
            found += sealtrail_commands(rest[2])
        segment = []
    return found


def code_blocks(markdown: str) -> list[str]:
    return re.findall(r"^\s*```(?:sh|bash|console)?\n(.*?)^\s*```", markdown, flags=re.M | re.S)


def guide_commands() -> list[list[str]]:
    commands: list[list[str]] = []
    for block in code_blocks(GUIDE.read_text(encoding="utf-8")):
        for line in block.splitlines():
            commands += sealtrail_commands(line.strip())
    return commands


def unit_commands(unit: Path) -> list[list[str]]:
    commands: list[list[str]] = []
    for value in re.findall(r"^ExecStart=(.*)$", unit.read_text(), flags=re.M):
        commands += sealtrail_commands(value.replace("%%", "%"))
    return commands


def check_command(args: list[str]) -> str:
    """Parse ``args`` as `sealtrail` would (nothing runs): the subcommand path, then every option and argument of the
    leaf command, with its type and the required ones. Returns the subcommand path; raises click's UsageError."""
    command = typer.main.get_command(app)
    path: list[str] = []
    while isinstance(getattr(command, "commands", None), dict):  # a group: descend to the named subcommand
        if args == ["--help"]:
            return " ".join(path)
        if not args:
            raise UsageError(f"`sealtrail {' '.join(path)}` needs a subcommand")
        sub = command.commands.get(args[0])  # type: ignore[attr-defined]
        if sub is None:
            raise UsageError(f"no command `sealtrail {' '.join([*path, args[0]])}`")
        path.append(args[0])
        command, args = sub, args[1:]
    if args == ["--help"]:
        return " ".join(path)
    ctx = command.make_context(" ".join(["sealtrail", *path]), list(args))
    ctx.close()
    return " ".join(path)


def test_the_guide_names_only_real_commands_and_options() -> None:
    commands = guide_commands()
    paths = set()
    for args in commands:
        try:
            paths.add(check_command(args))
        except UsageError as exc:
            pytest.fail(f"docs/deployment.md: `sealtrail {shlex.join(args)}`: {exc.format_message()}")
    # The guide covers what a Sở's IT person runs (and the extractor found them: it cannot pass on nothing).
    assert {"init", "trust list", "trust import", "hsm keygen", "hsm import-cert", "org create", "identity add",
            "identity list", "identity retire", "witness", "ledger checkpoint", "ledger audit", "backup",
            "restore"} <= paths, paths  # fmt: skip


def test_the_systemd_units_run_real_commands() -> None:
    by_unit = {unit.name: unit_commands(unit) for unit in UNITS}
    assert set(by_unit) == {
        "sealtrail.service", "sealtrail-worker.service", "sealtrail-backup.service", "sealtrail-archive.service"
    }  # fmt: skip
    ran = {}
    for name, commands in by_unit.items():
        assert len(commands) == 1, (name, commands)
        ran[name] = check_command(commands[0])
    assert ran == {
        "sealtrail.service": "serve",
        "sealtrail-worker.service": "worker",
        "sealtrail-backup.service": "backup",
        "sealtrail-archive.service": "archive",
    }
    guide = GUIDE.read_text(encoding="utf-8")
    for path in [*UNITS, *(DEPLOY / "systemd").glob("*.timer"), DEPLOY / "nginx" / "sealtrail.conf"]:
        assert path.name in guide or str(path.relative_to(ROOT)) in guide or "deploy/systemd/" in guide, path


@pytest.mark.parametrize(
    "line",
    [
        "sealtrail backup --outt /tmp/x",  # a misspelt option
        "sealtrail identity add --org 1 --role seal --cert c.pem",  # --key is required
        "sudo true && sealtrail trust importt x.pem --sha256 AB",  # no such subcommand, after &&
        "sealtrail worker --concurrency many",  # not a number
        "X=1 sealtrail hsm",  # a group without its subcommand
    ],
)
def test_a_wrong_command_in_the_guide_would_be_caught(line: str) -> None:
    commands = sealtrail_commands(line)
    assert len(commands) == 1
    with pytest.raises(UsageError):
        check_command(commands[0])


def test_commands_are_found_where_a_shell_runs_them_only() -> None:
    assert sealtrail_commands("systemctl stop sealtrail sealtrail-worker") == []
    assert sealtrail_commands("cd /opt/sealtrail && make install") == []
    assert sealtrail_commands("A=b sealtrail init; sealtrail trust list") == [["init"], ["trust", "list"]]
    assert sealtrail_commands("/bin/sh -c 'exec /opt/x/bin/sealtrail backup --out \"/b/$(date)\"'") == [
        ["backup", "--out", "/b/$(date)"]
    ]


def _variables(text: str) -> set[str]:
    return set(re.findall(r"\bSEALTRAIL_[A-Z0-9_]*[A-Z0-9]\b", text))


def test_every_setting_the_guide_and_the_deploy_files_name_exists() -> None:
    settings = {f"SEALTRAIL_{name.upper()}" for name in Settings.model_fields}
    texts = [GUIDE.read_text(encoding="utf-8")] + [p.read_text() for p in DEPLOY.rglob("*") if p.is_file()]
    named = set().union(*(_variables(t) for t in texts))
    assert {"SEALTRAIL_TRUST_DIR", "SEALTRAIL_LOG_ORIGIN", "SEALTRAIL_WITNESSES"} <= named
    assert named <= settings, sorted(named - settings)


def test_the_sample_environment_file_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/sealtrail.env.example read as systemd reads it (a value in single quotes is taken literally)."""
    for line in (DEPLOY / "sealtrail.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            if value.startswith("'") and value.endswith("'"):
                value = value[1:-1]
            else:
                assert '"' not in value, f"{key}: systemd would strip its double quotes; put it in single quotes"
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.mode == "production"
    assert settings.pkcs11_keys == {"homeroom_teacher": "homeroom_teacher", "principal": "principal", "seal": "seal"}
    assert settings.timestamp_urls and all(u.startswith("https://") for u in settings.timestamp_urls)
    assert settings.database_url and settings.database_url.startswith("postgresql+psycopg://")
    assert settings.log_origin == settings.public_base_url.removeprefix("https://") + "/log"
    assert settings.trusted_proxies == ["127.0.0.1/32", "::1/128"]  # nginx on the same machine (deploy/nginx)


def test_the_systemd_units_pass_systemd_analyze(tmp_path: Path) -> None:
    """`systemd-analyze verify` (Debian's systemd, a test package in the Makefile) on the shipped units, with the
    program path pointed at this checkout's: no unknown keys, bad values or missing programs (any message fails)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: `make test` installs Debian's systemd (TEST_APT_PACKAGES)")
    program = str(Path(sys.executable).with_name("sealtrail"))
    assert Path(program).exists()
    units = []
    for unit in [*UNITS, *(DEPLOY / "systemd").glob("*.timer")]:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/sealtrail/.venv/bin/sealtrail", program))
        units.append(str(copy))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    broken = tmp_path / "sealtrail.service"
    broken.write_text(broken.read_text().replace("Type=exec", "Typo=exec"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)], capture_output=True, text=True)
    assert "Typo" in result.stderr


def test_the_admin_wrapper_gives_commands_the_services_settings(tmp_path: Path) -> None:
    """deploy/sealtrail-admin.sh (installed as /usr/local/bin/sealtrail) read by a real POSIX shell: the sample
    environment file's values reach SealTrail's Settings intact (JSON in single quotes included), and a variable set
    on the command line wins over the file."""
    import json
    import os
    import subprocess
    import sys

    probe = tmp_path / "probe"
    probe.write_text(
        f"#!{sys.executable}\n"
        "import json\nfrom sealtrail.settings import Settings\ns = Settings()\n"
        "print(json.dumps({'keys': s.pkcs11_keys, 'tsa': s.timestamp_urls, 'db': s.database_url,"
        " 'token': s.pkcs11_token_label, 'mode': s.mode}))\n"
    )
    probe.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALTRAIL_")}
    env.update(
        ENV_FILE=str(DEPLOY / "sealtrail.env.example"), PROGRAM=str(probe), RUN_AS="root",
        SEALTRAIL_PKCS11_TOKEN_LABEL="truong-79000101", PYTHONPATH=str(ROOT),
    )  # fmt: skip
    result = subprocess.run(
        ["sh", str(DEPLOY / "sealtrail-admin.sh")], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["keys"] == {"homeroom_teacher": "homeroom_teacher", "principal": "principal", "seal": "seal"}
    assert seen["tsa"] == ["https://tsa.ca-cua-ban.example.vn"]
    assert seen["db"] == "postgresql+psycopg://sealtrail@/sealtrail?host=/var/run/postgresql"
    assert seen["token"] == "truong-79000101"  # the command line's, not the file's "sogd"
    assert seen["mode"] == "production"
