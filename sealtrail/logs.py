"""Structured logs: one JSON object per line on stderr, every record passed through the redaction filter."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO
from urllib.parse import urlparse

from pythonjsonlogger.json import JsonFormatter

from sealtrail.settings import Settings
from signer.redact import redact, register_secret

# Chatty at INFO (httpx logs every request's URL); their warnings and errors still come through.
QUIET_LIBRARIES = (
    *("pyhanko", "pyhanko_certvalidator", "fontTools", "weasyprint", "werkzeug", "alembic"),
    *("httpx", "httpcore", "botocore", "boto3", "urllib3", "asyncio", "multipart"),
)

# Attributes every LogRecord has; anything else on a record came in through ``extra=`` and is redacted too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class RedactFilter(logging.Filter):
    """Masks personal data and secrets in the message, its arguments, the traceback and any extra fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string still must not leak its arguments
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value))
        return True


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    )
    handler.addFilter(RedactFilter())
    return handler


def register_settings_secrets(settings: Settings) -> None:
    """The PIN, the bucket's secret key and the database password are masked wherever they would appear."""
    if settings.pkcs11_pin_file is not None:
        with contextlib.suppress(OSError):  # the key backend reports an unreadable PIN file itself, without the PIN
            register_secret(settings.pkcs11_pin_file.read_text(encoding="utf-8").strip())
    if settings.s3_secret_access_key is not None:
        register_secret(settings.s3_secret_access_key.get_secret_value())
    if settings.database_url:
        register_secret(urlparse(settings.database_url).password)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger through one handler: JSON lines (or plain text) with personal data and secrets masked."""
    register_settings_secrets(settings)
    if settings.log_format == "json":
        handler = json_handler(stream)
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return handler
