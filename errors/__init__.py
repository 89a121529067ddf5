"""One root for SealTrail's errors: a message for a person and whether trying again later can help.

Every error SealTrail raises for a person to read derives from :class:`SealTrailError`. It carries the message in
Vietnamese (``message_vi``) and, beside it, in English (``message_en``); ``str()`` gives both, Vietnamese first.
Older messages that were written as one text (already bilingual, or not yet translated) are passed as one
argument and kept as they are.

``transient`` says whether the same request may succeed later without anyone changing anything: a timestamp
service or HSM that did not answer, a lost session, a token that was unplugged. Everything else is permanent: a
wrong or locked PIN, a missing key, a certificate that does not match, data or a file that cannot be read. Batch
jobs retry only transient errors (``jobs``); a permanent one fails the item at once with its message. The flag is
a class default that one raise may override (``KeyBackendError(..., transient=True)`` for a token that went away).

This is the bottom layer: it imports nothing of ours (standard library only), and every package may import it.
"""

from __future__ import annotations

__all__ = ["PermanentError", "SealTrailError", "TransientError", "is_transient"]


class SealTrailError(Exception):
    """The root of SealTrail's errors: a message for a person (Vietnamese, English beside it) and a transient flag."""

    transient: bool = False

    def __init__(self, message_vi: str = "", message_en: str = "", *, transient: bool | None = None) -> None:
        self.message_vi = message_vi
        self.message_en = message_en
        if transient is not None:
            self.transient = transient
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [m for m in (self.message_vi, self.message_en) if m]
        if len(parts) == 2 and parts[0] == parts[1]:
            parts = parts[:1]
        return " / ".join(parts)

    def __str__(self) -> str:
        return self._text() or type(self).__name__

    @property
    def message(self) -> str:
        """The whole text for a person: Vietnamese, then English."""
        return str(self)


class TransientError(SealTrailError):
    """A failure that may pass by itself (a service or device did not answer): worth trying again later."""

    transient = True


class PermanentError(SealTrailError):
    """A failure that stays until a person changes something (data, a file, a PIN, a setting): never retried."""

    transient = False


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says trying again later may help (only SealTrail errors can say so; others are permanent)."""
    return isinstance(exc, SealTrailError) and exc.transient
