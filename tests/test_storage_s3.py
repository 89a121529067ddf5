"""Issued files in an S3-compatible bucket: content-addressed, checked on read, spoken to over real HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sealtrail.deployment import Deployment, DeploymentError
from sealtrail.settings import Settings
from signer.storage import BlobStoreError, S3BlobStore
from tests.conftest import S3Server


@pytest.fixture
def store(s3_server: S3Server) -> S3BlobStore:
    return S3BlobStore(s3_server.client(), s3_server.new_bucket(), "province-79/documents")


def test_files_are_stored_under_their_hash_with_the_prefix_and_read_back(store: S3BlobStore) -> None:
    data = "Nguyễn Thị Thu Hằng — học bạ".encode()
    digest = store.put(data, "xml")
    assert digest == hashlib.sha256(data).hexdigest()
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=store.bucket)["Contents"]]
    assert keys == [f"province-79/documents/{digest[:2]}/{digest}.xml"]
    assert store.put(data, "xml") == digest  # the same bytes again: nothing new
    assert len(store.client.list_objects_v2(Bucket=store.bucket)["Contents"]) == 1
    assert store.get(digest, "xml") == data


def test_a_damaged_or_missing_object_is_reported(store: S3BlobStore) -> None:
    digest = store.put(b"%PDF-1.7 original", "pdf")
    store.client.put_object(Bucket=store.bucket, Key=store.key(digest, "pdf"), Body=b"%PDF-1.7 altered")
    with pytest.raises(OSError, match="damaged"):
        store.get(digest, "pdf")
    with pytest.raises(FileNotFoundError, match="missing"):
        store.get("ab" * 32, "pdf")
    with pytest.raises(ValueError):
        store.key("../../etc/passwd", "pdf")


def test_an_unreachable_bucket_is_a_clear_error(s3_server: S3Server) -> None:
    from tests.conftest import free_port

    store = S3BlobStore.from_url(
        "s3://nowhere/docs",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="a",
        secret_access_key="b",
    )
    store.client.meta.config.retries = {"max_attempts": 1}
    with pytest.raises(BlobStoreError, match="could not store"):
        store.put(b"data", "pdf")
    missing_bucket = S3BlobStore(s3_server.client(), "no-such-bucket")
    with pytest.raises(BlobStoreError, match="no-such-bucket"):
        missing_bucket.put(b"data", "pdf")


def test_the_setting_chooses_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    settings = Settings(
        data_dir=tmp_path,
        storage_url=f"s3://{bucket}/sealtrail",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,  # type: ignore[arg-type]
    )
    blobs = Deployment(settings).blobs
    assert isinstance(blobs, S3BlobStore) and blobs.bucket == bucket and blobs.prefix == "sealtrail"
    digest = blobs.put(b"%PDF-1.7", "pdf")
    assert not (tmp_path / "documents").exists()
    assert s3_server.client().get_object(Bucket=bucket, Key=f"sealtrail/{digest[:2]}/{digest}.pdf")["Body"].read()
    with pytest.raises(DeploymentError, match="s3://"):
        Deployment(settings.model_copy(update={"storage_url": "ftp://x"})).blobs  # noqa: B018
