"""The `sealtrail` command line: one module per command group, assembled in ``sealtrail.cli.main``.

The console script is ``sealtrail = "sealtrail.cli:app"``.
"""

from sealtrail.cli.main import app

__all__ = ["app"]
