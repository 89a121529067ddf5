"""Validation of exported credentials against the published JSON Schemas shipped in schemas/vc/ (never fetched).

Every credential is checked against the W3C VC 2.0 JSON Schema; a diploma (AchievementCredential) also against the
1EdTech Open Badges 3.0 AchievementCredential schema, a transcript also against our own transcript schema. The
validator is the independent ``jsonschema`` package, with a local ``referencing`` registry so no ``$ref`` ever
reaches the network. schemas/vc/README.md names each file's source and licence.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator, Draft202012Validator, FormatChecker
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

VC_DIR = Path(__file__).parent / "vc"
VC_SCHEMA = "verifiable-credential-schema.json"
OB_SCHEMA = "ob_v3p0_achievementcredential_schema.json"
TRANSCRIPT_SCHEMA = "transcript-credential.schema.json"
CONTEXTS = {
    "https://www.w3.org/ns/credentials/v2": "credentials-v2.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": "ob-v3p0-context-3.0.3.json",
}
CONTEXT_SUFFIX = "/ns/credentials/v1"  # our own context, served by every installation
OWN_CONTEXT = "sealtrail-credentials-v1.jsonld"


def load(name: str) -> Any:
    return json.loads((VC_DIR / name).read_text(encoding="utf-8"))


def _offline(uri: str) -> Resource[Any]:
    raise NoSuchResource(uri)  # nothing is fetched: an unknown $ref is an error


@cache
def _registry() -> Registry[Any]:
    resources = []
    for name in (VC_SCHEMA, OB_SCHEMA, TRANSCRIPT_SCHEMA):
        schema = load(name)
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry(retrieve=_offline).with_resources(resources)  # type: ignore[call-arg]


OB_CONTEXT_PATTERN = r"^https://purl\.imsglobal\.org/spec/ob/v3p0/context(-3\.\d\.\d)*\.json$"


def ob_schema_for_vc2() -> dict[str, Any]:
    """The shipped OB 3.0 schema (the 1EdTech file as published for VC 1.1) with the top-level rules of its VC 2.0
    revision: ``validFrom``/``validUntil`` (date-time) replace ``issuanceDate``/``expirationDate``, the required
    properties are @context, id, type, credentialSubject, issuer and validFrom, @context starts with the VC 2.0
    context followed by an OB 3.0 context, and ``type`` holds VerifiableCredential and AchievementCredential (or
    OpenBadgeCredential). Every nested rule (AchievementSubject, Achievement, IdentityObject, Profile, Evidence,
    CredentialStatus …) is checked as published. schemas/vc/README.md says why the file itself is not newer."""
    schema: dict[str, Any] = copy.deepcopy(load(OB_SCHEMA))
    props = schema["properties"]
    props["validFrom"] = {**props.pop("issuanceDate"), "description": "Timestamp of when the credential becomes valid."}
    props["validUntil"] = {**props.pop("expirationDate"), "description": "When the credential stops being valid."}
    schema["required"] = ["@context", "id", "type", "credentialSubject", "issuer", "validFrom"]
    schema["allOf"] = [
        {
            "properties": {
                "@context": {
                    "type": "array",
                    "minItems": 2,
                    "items": [  # draft 2019-09 tuple form, as the published schema uses
                        {"const": "https://www.w3.org/ns/credentials/v2"},
                        {"type": "string", "pattern": OB_CONTEXT_PATTERN},
                    ],
                },
                "type": {
                    "type": "array",
                    "allOf": [
                        {"contains": {"const": "VerifiableCredential"}},
                        {"contains": {"enum": ["AchievementCredential", "OpenBadgeCredential"]}},
                    ],
                },
            }
        }
    ]
    return schema


@cache
def _validators() -> dict[str, Validator]:
    registry = _registry()
    checker = FormatChecker()
    return {
        "vc": Draft202012Validator(load(VC_SCHEMA), registry=registry, format_checker=checker),
        "ob": Draft201909Validator(ob_schema_for_vc2(), registry=registry, format_checker=checker),
        "transcript": Draft202012Validator(load(TRANSCRIPT_SCHEMA), registry=registry, format_checker=checker),
    }


def _errors(validator: Validator, instance: Any, label: str) -> list[str]:
    return [
        f"{label}: {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def credential_errors(credential: dict[str, Any]) -> list[str]:
    """Every schema violation of a credential (empty when it conforms)."""
    validators = _validators()
    errors = _errors(validators["vc"], credential, "VC 2.0")
    types = credential.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "AchievementCredential" in types or "OpenBadgeCredential" in types:
        errors += _errors(validators["ob"], credential, "Open Badges 3.0")
    if "SealTrailTranscriptCredential" in types:
        errors += _errors(validators["transcript"], credential, "SealTrail transcript")
    if "BitstringStatusListCredential" not in types and not (
        "AchievementCredential" in types or "OpenBadgeCredential" in types or "SealTrailTranscriptCredential" in types
    ):
        errors.append("the credential is of no type SealTrail issues")
    return errors


def context_document(url: str) -> Any:
    """The shipped JSON-LD context for ``url`` (ours is recognised by its path), or None."""
    if url in CONTEXTS:
        return load(CONTEXTS[url])
    if url.endswith(CONTEXT_SUFFIX):
        return load(OWN_CONTEXT)
    return None
