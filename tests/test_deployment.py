"""How an installation starts its development PKI services."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_dev_pki_port_taken_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from sealtrail.deployment import Deployment, DeploymentError
    from sealtrail.settings import Settings
    from tests.conftest import free_port

    port = free_port()
    first = Deployment(Settings(data_dir=tmp_path / "a", dev_pki_url=f"http://127.0.0.1:{port}"))
    services = first.start_dev_pki_services()
    assert services is not None
    try:
        again = Deployment(Settings(data_dir=tmp_path / "a", dev_pki_url=f"http://127.0.0.1:{port}"))
        assert again.start_dev_pki_services() is None  # the same PKI is already served: reuse it
        other = Deployment(Settings(data_dir=tmp_path / "b", dev_pki_url=f"http://127.0.0.1:{port}"))
        with pytest.raises(DeploymentError, match="used by another program"):
            other.start_dev_pki_services()  # another data directory's PKI on that port is not ours
    finally:
        services.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        with pytest.raises(DeploymentError, match="SEALTRAIL_DEV_PKI_URL"):
            Deployment(
                Settings(data_dir=tmp_path / "a", dev_pki_url=f"http://127.0.0.1:{port}")
            ).start_dev_pki_services()
