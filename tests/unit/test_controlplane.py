"""The control plane launcher's pure parts: certificates, command lines, kubeconfigs, work dirs."""

from __future__ import annotations

import base64
import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from publishing_testkit.controlplane import kubeconfig as kubeconfigs
from publishing_testkit.controlplane.apiserver import (
    IN_CLUSTER_NAMES,
    SERVICE_IP,
    ApiServerConfig,
    ApiServerFiles,
)
from publishing_testkit.controlplane.etcd import EtcdConfig
from publishing_testkit.controlplane.workdir import PREFIX, make_workdir, sweep_stale
from publishing_testkit.pki import CertificateAuthority, signing_key
from tests.fixtures.real_api import namespace_for_test


def test_the_ca_issues_a_serving_certificate_for_loopback_and_the_in_cluster_names() -> None:
    ca = CertificateAuthority()
    serving = x509.load_pem_x509_certificate(ca.serving("127.0.0.1", SERVICE_IP, *IN_CLUSTER_NAMES).cert_pem)
    ca_public_key = ca.cert.public_key()
    assert isinstance(ca_public_key, ec.EllipticCurvePublicKey)
    serving.verify_directly_issued_by(ca.cert)
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address(SERVICE_IP),
    }
    assert "kubernetes.default.svc" in names.get_values_for_type(x509.DNSName)
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_a_client_certificate_carries_the_user_and_groups_as_kube_apiserver_reads_them() -> None:
    ca = CertificateAuthority()
    cert = x509.load_pem_x509_certificate(ca.client("admin", ("system:masters",)).cert_pem)
    cert.verify_directly_issued_by(ca.cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters"
    ]


def test_the_signing_key_file_and_the_verification_key_file_hold_one_key_pair() -> None:
    pair = signing_key()
    assert pair.cert_pem.startswith(b"-----BEGIN PUBLIC KEY-----")  # what --service-account-key-file reads
    assert pair.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_the_api_server_command_line_is_envtests_plus_tokens_on_loopback(tmp_path: Path) -> None:
    files = ApiServerFiles(
        *(tmp_path / name for name in ("certs", "crt", "key", "ca", "tokens", "sa", "sa.pub"))
    )
    args = ApiServerConfig(port=6443, etcd_url="http://127.0.0.1:2379", files=files).arguments()
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in args)
    assert flags["bind-address"] == flags["advertise-address"] == "127.0.0.1"
    assert flags["authorization-mode"] == "RBAC"
    assert flags["disable-admission-plugins"] == "ServiceAccount"
    assert flags["service-account-issuer"] == "https://127.0.0.1:6443/"
    assert flags["service-account-key-file"] == str(tmp_path / "sa.pub")
    assert flags["service-account-signing-key-file"] == str(tmp_path / "sa")
    assert flags["endpoint-reconciler-type"] == "none"
    assert flags["token-auth-file"] == str(tmp_path / "tokens")


def test_etcd_is_one_throwaway_member_on_loopback(tmp_path: Path) -> None:
    args = EtcdConfig(tmp_path / "etcd", 2379, 2380).arguments()
    assert "--unsafe-no-fsync" in args
    assert "--initial-cluster=controlplane=http://127.0.0.1:2380" in args
    assert all("0.0.0.0" not in arg for arg in args)


def test_the_kubeconfig_has_the_token_admin_and_the_certificate_admin() -> None:
    ca = CertificateAuthority()
    cert = ca.client("admin", ("system:masters",))
    document = kubeconfigs.kubeconfig(
        "https://127.0.0.1:6443",
        ca.cert_pem,
        kubeconfigs.token_user("t0ken"),
        namespace="team-a",
        extra_users={"admin-cert": kubeconfigs.certificate_user(cert.cert_pem, cert.key_pem)},
    )
    assert document["current-context"] == kubeconfigs.CLUSTER
    contexts = {c["name"]: c["context"] for c in document["contexts"]}
    assert contexts["admin-cert"] == {
        "cluster": kubeconfigs.CLUSTER,
        "user": "admin-cert",
        "namespace": "team-a",
    }
    cluster = document["clusters"][0]["cluster"]
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.cert_pem
    assert yaml.safe_load(yaml.safe_dump(document)) == document


def test_a_dead_launchers_work_directory_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f"{PREFIX}{int(dead.stdout)}-abc"
    stale.mkdir()
    alive = tmp_path / f"{PREFIX}{os.getppid()}-def"
    alive.mkdir()
    mine = make_workdir(tmp_path)
    assert not stale.exists() and alive.exists() and mine.exists()
    assert mine.name.startswith(f"{PREFIX}{os.getpid()}-") and (mine.stat().st_mode & 0o777) == 0o700
    assert sweep_stale(tmp_path) == []


def test_test_namespaces_are_dns_labels() -> None:
    name = namespace_for_test("test_a_very_long_name[with-params and CAPS]" * 3)
    assert len(name) <= 63 and name == name.lower() and name[0].isalpha() and name[-1].isalnum()
    assert namespace_for_test("x") != namespace_for_test("x")
