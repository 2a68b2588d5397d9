"""kube-apiserver's command line for a test control plane, modelled on controller-runtime's envtest
(pkg/internal/testing/controlplane/apiserver.go): secure port on loopback only, RBAC, the
ServiceAccount admission plugin off (no controller-manager creates default ServiceAccounts), token
signing on so that TokenRequest (`kubectl create token`) works. Unlike envtest, the admin logs in
with a static token as well as a client certificate: every Python client reads tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publishing_testkit.controlplane.ports import HOST

SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"  # the first address of SERVICE_CIDR: the `kubernetes` Service
# The names the API server's certificate is valid for, beside its addresses.
IN_CLUSTER_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")


@dataclass(frozen=True)
class ApiServerFiles:
    """The files kube-apiserver reads, all in the work directory."""

    cert_dir: Path
    tls_cert: Path
    tls_key: Path
    client_ca: Path
    token_file: Path
    signing_key: Path
    verification_key: Path


@dataclass(frozen=True)
class ApiServerConfig:
    port: int
    etcd_url: str
    files: ApiServerFiles
    extra_arguments: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def arguments(self) -> list[str]:
        files = self.files
        return [
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={HOST}",
            # Advertise loopback: nothing outside this machine reaches the server. The endpoint
            # reconciler refuses a loopback address for the `kubernetes` Service's endpoints, and
            # there is no cluster network to reach them anyway: "none" keeps them unmanaged.
            f"--advertise-address={HOST}",
            "--endpoint-reconciler-type=none",
            f"--secure-port={self.port}",
            f"--cert-dir={files.cert_dir}",
            f"--tls-cert-file={files.tls_cert}",
            f"--tls-private-key-file={files.tls_key}",
            f"--client-ca-file={files.client_ca}",
            f"--token-auth-file={files.token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={self.url}/",
            f"--service-account-key-file={files.verification_key}",
            f"--service-account-signing-key-file={files.signing_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            *self.extra_arguments,
        ]
