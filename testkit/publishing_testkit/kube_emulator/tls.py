"""A throwaway CA and serving certificate, so the emulator can speak HTTPS like a real API server.

With TLS, kubectl sends bearer tokens (it sends none over plain HTTP) and clients exercise their
certificate verification (the kubeconfig carries the CA as `certificate-authority-data`).
"""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from publishing_testkit.pki import CertificateAuthority


@dataclass(frozen=True)
class ServingCertificate:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @property
    def ca_data(self) -> str:
        """The CA as kubeconfig's `certificate-authority-data` (base64 of the PEM)."""
        return base64.b64encode(self.ca_pem).decode()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as folder:  # load_cert_chain reads files only
            cert, key = Path(folder) / "tls.crt", Path(folder) / "tls.key"
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())


def issue(host: str) -> ServingCertificate:
    """A CA valid for two days and a certificate for `host`, 127.0.0.1 and localhost."""
    ca = CertificateAuthority("publishing-sandbox-ca")
    pair = ca.serving(host, "127.0.0.1", "localhost")
    return ServingCertificate(ca_pem=ca.cert_pem, cert_pem=pair.cert_pem, key_pem=pair.key_pem)
