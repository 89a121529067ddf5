"""`python -m sealtrail` runs the command line."""

from sealtrail.cli import app

app()
