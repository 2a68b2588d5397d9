"""`ControlPlane`: etcd and kube-apiserver as child processes, ready to serve, with a kubeconfig.

    with ControlPlane() as plane:            # builds the binaries if missing (minutes, once)
        plane.kubectl("get", "namespaces")
        plane.write_kubeconfig(tmp / "kubeconfig", namespace="team-a")

What runs is a real API server (CRD validation with CEL and its cost budget, RBAC, admission,
strict decoding, watch cache) and no controllers: no garbage collection, namespaces never finish
terminating, no default ServiceAccounts, nothing schedules pods.
"""

from __future__ import annotations

import atexit
import secrets
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from publishing_testkit.controlplane import kubeconfig as kubeconfigs
from publishing_testkit.controlplane.apiserver import (
    IN_CLUSTER_NAMES,
    SERVICE_IP,
    ApiServerConfig,
    ApiServerFiles,
)
from publishing_testkit.controlplane.binaries import Binaries, find_binaries
from publishing_testkit.controlplane.client import AdminClient
from publishing_testkit.controlplane.etcd import EtcdConfig
from publishing_testkit.controlplane.ports import HOST, free_port
from publishing_testkit.controlplane.processes import Child
from publishing_testkit.controlplane.readiness import NotReady, wait_until_ready
from publishing_testkit.controlplane.workdir import make_workdir, remove_workdir
from publishing_testkit.pki import CertificateAuthority, signing_key

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters",)
START_ATTEMPTS = 3  # a port taken between choosing and binding it: start again on new ports


class ControlPlaneError(RuntimeError):
    pass


class ControlPlane:
    def __init__(
        self,
        binaries: Binaries | None = None,
        *,
        start_timeout: float = 120.0,
        workdir_root: Path | None = None,
        apiserver_arguments: Sequence[str] = (),
    ) -> None:
        self._binaries = binaries
        self.start_timeout = start_timeout
        self._workdir_root = workdir_root
        self._apiserver_arguments = tuple(apiserver_arguments)
        self._children: list[Child] = []
        self.workdir: Path | None = None
        self.url = ""
        self.ca_pem = b""
        self._admin_token = ""
        self._admin_cert: tuple[bytes, bytes] = (b"", b"")
        self._client: AdminClient | None = None
        self.kubeconfig: Path | None = None  # the admin's, in the work directory

    def __repr__(self) -> str:
        return f"ControlPlane({self.url or 'not started'})"

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    def start(self) -> ControlPlane:
        binaries = self.binaries  # build before the clock starts
        self.workdir = make_workdir(self._workdir_root)
        atexit.register(self.stop)
        try:
            self._prepare_files(self.workdir)
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self._start_processes(binaries, self.workdir, attempt)
                    break
                except NotReady as error:
                    logs = self._logs_tail()
                    self._stop_children()
                    if attempt == START_ATTEMPTS or "address already in use" not in logs:
                        raise ControlPlaneError(f"{error}\n{logs}") from None
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd, and remove the work directory. Idempotent."""
        atexit.unregister(self.stop)
        self._stop_children()
        if self.workdir is not None:
            remove_workdir(self.workdir)
            self.workdir = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._children) and all(child.alive for child in self._children)

    def _stop_children(self) -> None:
        for child in reversed(self._children):  # the API server first: it writes to etcd until the end
            child.stop()
        self._children.clear()

    def _logs_tail(self) -> str:
        return "\n".join(
            f"--- {child.name} ({child.log_path}) ---\n{child.log_tail()}" for child in self._children
        )

    def _prepare_files(self, workdir: Path) -> None:
        ca = CertificateAuthority()
        self.ca_pem = ca.cert_pem
        serving = ca.serving(HOST, SERVICE_IP, *IN_CLUSTER_NAMES)
        admin_cert = ca.client(ADMIN_USER, ADMIN_GROUPS)
        self._admin_cert = (admin_cert.cert_pem, admin_cert.key_pem)
        self._admin_token = secrets.token_urlsafe(32)
        pki = workdir / "pki"
        pki.mkdir(mode=0o700)
        groups = ",".join(ADMIN_GROUPS)
        sa_signer = signing_key()
        files = {
            "ca.crt": ca.cert_pem,
            "apiserver.crt": serving.cert_pem,
            "apiserver.key": serving.key_pem,
            "sa-signer.pub": sa_signer.cert_pem,
            "sa-signer.key": sa_signer.key_pem,
            # token,user,uid,"group1,group2": the static-token file format of kube-apiserver
            "tokens.csv": f'{self._admin_token},{ADMIN_USER},{ADMIN_USER},"{groups}"\n'.encode(),
        }
        for name, content in files.items():
            (pki / name).write_bytes(content)
            (pki / name).chmod(0o600)

    def _start_processes(self, binaries: Binaries, workdir: Path, attempt: int = 1) -> None:
        deadline = time.monotonic() + self.start_timeout
        # A data directory per attempt: etcd refuses to rejoin old data under new peer URLs.
        etcd = EtcdConfig(workdir / f"etcd-{attempt}", free_port(), free_port())
        self._children.append(
            Child.start("etcd", [str(binaries.etcd), *etcd.arguments()], workdir / "etcd.log", cwd=workdir)
        )
        pki = workdir / "pki"
        apiserver = ApiServerConfig(
            port=free_port(),
            etcd_url=etcd.client_url,
            files=ApiServerFiles(
                cert_dir=workdir / "apiserver-certs",
                tls_cert=pki / "apiserver.crt",
                tls_key=pki / "apiserver.key",
                client_ca=pki / "ca.crt",
                token_file=pki / "tokens.csv",
                signing_key=pki / "sa-signer.key",
                verification_key=pki / "sa-signer.pub",
            ),
            extra_arguments=self._apiserver_arguments,
        )
        self._children.append(
            Child.start(
                "kube-apiserver",
                [str(binaries.kube_apiserver), *apiserver.arguments()],
                workdir / "kube-apiserver.log",
                cwd=workdir,
            )
        )
        self.url = apiserver.url
        self._client = AdminClient(self.url, self.ca_pem, self._admin_token)

        def exited() -> str | None:
            return next((child.name for child in self._children if not child.alive), None)

        wait_until_ready(self._client, deadline, exited)
        self.kubeconfig = self.write_kubeconfig(workdir / "kubeconfig")

    # ---- using it -------------------------------------------------------------------------------

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            raise ControlPlaneError("the control plane is not started")
        return self._client

    @property
    def admin_token(self) -> str:
        return self._admin_token

    def admin_kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        """The admin by static token (current context) and by client certificate (context `admin-cert`)."""
        cert, key = self._admin_cert
        return kubeconfigs.kubeconfig(
            self.url,
            self.ca_pem,
            kubeconfigs.token_user(self._admin_token),
            namespace=namespace,
            extra_users={"admin-cert": kubeconfigs.certificate_user(cert, key)},
        )

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        return kubeconfigs.write(path, self.admin_kubeconfig(namespace))

    def create_namespace(self, name: str) -> None:
        response = self.client.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        if response.status not in (201, 409):
            raise ControlPlaneError(f"creating namespace {name}: HTTP {response.status} {response.body}")

    def serviceaccount_token(self, namespace: str, name: str, expiration_seconds: int = 3600) -> str:
        """A token for the ServiceAccount (created if missing) from the TokenRequest API, as
        `kubectl create token` gets it; requests with it are held to the applied RBAC."""
        sa = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        }
        created = self.client.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts", sa)
        if created.status not in (201, 409):
            raise ControlPlaneError(f"creating serviceaccount {namespace}/{name}: HTTP {created.status}")
        response = self.client.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        if response.status != 201:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name}: HTTP {response.status}")
        return str(response.body["status"]["token"])

    def serviceaccount_kubeconfig(self, path: str | Path, namespace: str, name: str) -> Path:
        """A kubeconfig that acts as the ServiceAccount (e.g. the chart's), to test its RBAC."""
        token = self.serviceaccount_token(namespace, name)
        document = kubeconfigs.kubeconfig(
            self.url, self.ca_pem, kubeconfigs.token_user(token), namespace=namespace
        )
        return kubeconfigs.write(path, document)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """The kubectl built with kube-apiserver (same release), as the admin."""
        if self.kubeconfig is None:
            raise ControlPlaneError("the control plane is not started")
        return subprocess.run(
            [str(self.binaries.kubectl), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )
