"""Content-addressed storage of issued files: each file lives under its SHA-256, written atomically.

Two places to keep them: a directory (``BlobStore``) or an S3-compatible bucket (``S3BlobStore``); both check
every file they read against its name.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from errors import SealTrailError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BlobStoreError(SealTrailError, OSError):
    """The store cannot be reached or refuses the request; the message says which.

    Transient when the store did not answer or answered with a server error; permanent when it refused (access
    denied, no such bucket).
    """

    transient = True


def _transient(exc: Exception) -> bool:
    """An S3 failure that may pass: no answer (botocore's connection errors) or a server error or throttling."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return True  # BotoCoreError: the endpoint did not answer
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    code = str(response.get("Error", {}).get("Code", ""))
    return status >= 500 or code in ("SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable")


class Blobs(Protocol):
    """What the issuer, the archive job, the audit and the public pages need from a store."""

    def put(self, data: bytes, ext: str) -> str: ...

    def get(self, sha256: str, ext: str) -> bytes: ...

    def discard(self, sha256: str, ext: str) -> None: ...


def _name(sha256: str, ext: str) -> str:
    if not _HEX64.match(sha256) or not ext.isalnum():
        raise ValueError("not a SHA-256 hex digest or a plain file extension")
    return f"{sha256[:2]}/{sha256}.{ext}"


def _checked(data: bytes, sha256: str, ext: str) -> bytes:
    if hashlib.sha256(data).hexdigest() != sha256:
        raise OSError(f"stored file {sha256}.{ext} is damaged: its content no longer matches its name")
    return data


class BlobStore:
    """Files named by their SHA-256 under ``root/ab/abcdef….ext``. Writing the same bytes twice is a no-op."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str, ext: str) -> Path:
        return self.root / _name(sha256, ext)

    def put(self, data: bytes, ext: str) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest, ext)
        if target.exists():
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str, ext: str) -> bytes:
        return _checked(self.path(sha256, ext).read_bytes(), sha256, ext)

    def discard(self, sha256: str, ext: str) -> None:
        """Delete a file no document needs (a prepared draft that was never signed); absent is fine."""
        self.path(sha256, ext).unlink(missing_ok=True)


class S3BlobStore:
    """Files named by their SHA-256 as ``prefix/ab/abcdef….ext`` in an S3-compatible bucket.

    A PUT is atomic in S3 (an object appears whole or not at all) and carries its SHA-256, which the server checks
    before storing it; an object already there under the same name holds the same bytes, so it is not sent again.
    Every read is checked against the name."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> S3BlobStore:
        """``s3://bucket/prefix``; credentials from the arguments or boto3's usual chain (environment, profile)."""
        import boto3
        from botocore.config import Config

        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket/prefix URL: {url}")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30),
        )
        return cls(client, parsed.netloc, parsed.path)

    def key(self, sha256: str, ext: str) -> str:
        name = _name(sha256, ext)
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, data: bytes, ext: str) -> str:
        import base64

        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256(data).hexdigest()
        key = self.key(digest, ext)
        try:
            if self._exists(key):
                return digest
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(digest)).decode(),
            )
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(
                f"could not store {digest}.{ext} in bucket {self.bucket}: {exc}", transient=_transient(exc)
            ) from exc
        return digest

    def discard(self, sha256: str, ext: str) -> None:
        """Delete a file no document needs (a prepared draft that was never signed); absent is fine."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256, ext))
        except (BotoCoreError, ClientError) as exc:
            raise BlobStoreError(
                f"could not delete {sha256}.{ext} from bucket {self.bucket}: {exc}", transient=_transient(exc)
            ) from exc

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def get(self, sha256: str, ext: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(sha256, ext)
        try:
            data = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(f"stored file {sha256}.{ext} is missing from bucket {self.bucket}") from exc
            raise BlobStoreError(
                f"could not read {sha256}.{ext} from bucket {self.bucket}: {exc}", transient=_transient(exc)
            ) from exc
        except BotoCoreError as exc:
            raise BlobStoreError(f"could not read {sha256}.{ext} from bucket {self.bucket}: {exc}") from exc
        return _checked(data, sha256, ext)
