"""`sealtrail init`: set up a new installation (keys, database) and print what to publish."""

from __future__ import annotations

import typer

from sealtrail.cli.common import _deployment


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def init() -> None:
    """Set up a new installation: database, the public log's key and the QR-seal key (never overwritten).

    Prints each key's SHA-256 fingerprint (publish them with the log origin), then what `serve` still needs."""
    from sealtrail.install import init_installation, production_problems

    dep = _deployment()
    for key in init_installation(dep):
        state = "tạo mới / created" if key.created else "đã có, giữ nguyên / exists, kept"
        typer.echo(f"{key.name:16} {state:34} SHA-256 {key.fingerprint}  {key.path}")
    typer.echo(f"Log origin / tên sổ cái: {dep.settings.log_origin}")
    problems = production_problems(dep.settings)
    if problems:
        typer.echo("Trước khi chạy `sealtrail serve` / before `sealtrail serve`:")
        for problem in problems:
            typer.echo(f"  - {problem}")
