"""What every command group shares: building the Deployment from the environment, quiet library logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from sealtrail.settings import Settings

if TYPE_CHECKING:
    from sealtrail.deployment import Deployment


def _quiet_libraries() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pyhanko", "pyhanko_certvalidator", "fontTools", "weasyprint", "werkzeug", "alembic"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def _deployment() -> Deployment:
    from sealtrail.deployment import Deployment

    _quiet_libraries()
    return Deployment(Settings())


@contextmanager
def _key_errors() -> Iterator[None]:
    """A key or deployment problem ends the command with its message and exit code 1."""
    from hsm_adapters.base import KeyBackendError
    from sealtrail.deployment import DeploymentError

    try:
        yield
    except (KeyBackendError, DeploymentError) as exc:
        typer.echo(f"Lỗi khoá ký / key error: {exc}", err=True)
        raise typer.Exit(1) from None
