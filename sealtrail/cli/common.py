"""What every command group shares: building the Deployment from the environment, quiet library logs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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
