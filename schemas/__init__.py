"""The data model of SealTrail's documents: transcripts (học bạ), diplomas (văn bằng), certified copies,
signed English translations.

Validation here speaks to teachers: every problem names the pupil, the subject and the number. Also the wire
formats several packages share: the signed-XML envelope, the QR-seal codec, the status-list bitstring.

May import: nothing of SealTrail's (``errors`` once it exists).
"""

from schemas.common import Person, SchemaError, School, Signatory, ValidationProblem
from schemas.copy import CertifiedCopy
from schemas.diploma import Diploma
from schemas.parse import load_sample, parse_document
from schemas.transcript import Transcript
from schemas.translation import Translation

Document = Transcript | Diploma | CertifiedCopy | Translation

__all__ = [
    "CertifiedCopy",
    "Diploma",
    "Document",
    "Person",
    "SchemaError",
    "School",
    "Signatory",
    "Transcript",
    "Translation",
    "ValidationProblem",
    "load_sample",
    "parse_document",
]
