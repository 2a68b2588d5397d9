"""KubeApi over HTTPS with a private CA, as in a real cluster: status writes and Secret reads both
verify the server with the CA from the login (kopf's ConnectionInfo)."""

import pytest
import yaml

from publishing_operator.adapters.kube import KubeApi
from tests.fixtures.kube import Kube

pytestmark = pytest.mark.integration


async def test_writes_and_secret_reads_verify_the_cluster_ca(kube_tls: Kube) -> None:
    import kopf

    config = yaml.safe_load(kube_tls.kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    assert cluster["server"].startswith("https://")
    info = kopf.ConnectionInfo(
        server=cluster["server"],
        ca_data=cluster["certificate-authority-data"],
        token=user["token"],
        scheme="Bearer",
    )
    kube_tls.apply_crds()
    kube_tls.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "default"},
                "stringData": {"k": "v"},
            }
        ]
    )
    api = KubeApi.from_connection_info(info)
    try:
        namespace = kube_tls.namespace
        secret = await api.read_secret(namespace, "s")
        assert secret is not None and secret.data == {"k": b"v"} and secret.resource_version
        assert await api.read_secret(namespace, "missing") is None
        assert await api.list_publishing_builds(namespace) == []
    finally:
        await api.aclose()
