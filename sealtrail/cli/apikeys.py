"""`sealtrail api-key create`: keys for a school's software (one school per key, scoped)."""

from __future__ import annotations

from typing import Annotated

import typer

from sealtrail.cli.common import _deployment

app = typer.Typer()


api_key_app = typer.Typer(help="API keys for school software (one school per key).", no_args_is_help=True)
app.add_typer(api_key_app, name="api-key")


@api_key_app.command("create")
def api_key_create(
    school: Annotated[str, typer.Option(help="The school's code (mã trường)")],
    scope: Annotated[
        list[str] | None, typer.Option(help="documents:issue (default), workflow:read, workflow:edit; repeatable")
    ] = None,
) -> None:
    """Create an API key for one school's software. It is shown once; only its hash is stored."""
    from accounts.permissions import DEFAULT_API_SCOPES
    from sealtrail.web.api import create_api_key
    from sealtrail.web.deps import AccountsContext

    dep = _deployment()
    scopes = scope or list(DEFAULT_API_SCOPES)
    try:
        key = create_api_key(dep, school, scopes)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    AccountsContext(dep).record(None, "cli", "apikey.create", org=school, detail={"scopes": sorted(scopes)})
    typer.echo(f"API key for school {school}, scopes {', '.join(sorted(scopes))} (shown once, keep it secret):\n{key}")
