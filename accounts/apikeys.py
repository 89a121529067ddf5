"""API keys for a school's (or a verifier organisation's) software: one organisation per key, scoped. Only the
key's SHA-256 is kept (``DATA_DIR/api-keys.json``, with the organisation and scopes); the key itself is shown once
when it is made."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from accounts.permissions import API_SCOPES, DEFAULT_API_SCOPES, Actor

_KEYS_FILE = "api-keys.json"
_write_lock = threading.Lock()


class Installation(Protocol):
    settings: Any  # sealtrail.settings.Settings: resolved_data_dir


def _keys_path(dep: Installation) -> Path:
    return Path(dep.settings.resolved_data_dir) / _KEYS_FILE


def _load_keys(dep: Installation) -> dict[str, dict[str, Any]]:
    """sha256(key) → {"school": code, "scopes": [...]} (a bare school code, the older form, has the default scopes)."""
    path = _keys_path(dep)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        digest: value if isinstance(value, dict) else {"school": value, "scopes": list(DEFAULT_API_SCOPES)}
        for digest, value in raw.items()
    }


def _save_keys(dep: Installation, keys: dict[str, dict[str, Any]]) -> None:
    path = _keys_path(dep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600, exist_ok=True)
    tmp.write_text(json.dumps(keys, indent=1), encoding="utf-8")
    tmp.replace(path)


def create_api_key(
    dep: Installation, school_code: str, scopes: Sequence[str] = DEFAULT_API_SCOPES, label: str = ""
) -> str:
    """A new key for ``school_code`` limited to ``scopes``; only its hash is stored. Returns the key (show it once)."""
    unknown = sorted(set(scopes) - API_SCOPES)
    if unknown or not scopes:
        raise ValueError(f"Phạm vi không hợp lệ / unknown scopes {unknown}; choose from {sorted(API_SCOPES)}")
    key = "st_" + secrets.token_urlsafe(32)
    with _write_lock:
        keys = _load_keys(dep)
        keys[hashlib.sha256(key.encode()).hexdigest()] = {
            "school": school_code,
            "scopes": sorted(set(scopes)),
            "label": label[:120],
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _save_keys(dep, keys)
    return key


def key_id(digest: str) -> str:
    """How a key is named on pages, in the audit and in rate limits: the first 16 hex digits of its SHA-256."""
    return digest[:16]


def list_api_keys(dep: Installation, school_code: str, scope: str) -> list[dict[str, Any]]:
    """The organisation's keys holding ``scope`` (id, scopes, label, creation time); never the keys themselves."""
    return sorted(
        (
            {"id": key_id(digest), "scopes": v["scopes"], "label": v.get("label", ""), "created": v.get("created", "")}
            for digest, v in _load_keys(dep).items()
            if v["school"] == school_code and scope in v["scopes"]
        ),
        key=lambda k: (k["created"], k["id"]),
    )


def revoke_api_key(dep: Installation, school_code: str, ident: str, scope: str) -> bool:
    """Remove the organisation's key named ``ident`` (see key_id) if it holds ``scope``; False if there is none."""
    with _write_lock:
        keys = _load_keys(dep)
        found = [
            d for d, v in keys.items() if v["school"] == school_code and key_id(d) == ident and scope in v["scopes"]
        ]
        if len(found) != 1:
            return False
        del keys[found[0]]
        _save_keys(dep, keys)
    return True


def api_key_actor(dep: Installation, key: str) -> Actor | None:
    """The machine behind an API key (its school and scopes), or None for an unknown key."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    for known, value in _load_keys(dep).items():
        if hmac.compare_digest(known, digest):
            return Actor(
                name=f"api-key:{known[:8]}",
                kind="api_key",
                roles={value["school"]: set()},
                scopes=frozenset(value["scopes"]) & API_SCOPES,
                key_id=key_id(known),
            )
    return None
