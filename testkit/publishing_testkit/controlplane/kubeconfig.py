"""Kubeconfig documents for a control plane: the admin (static token, or client certificate) and
ServiceAccounts (a TokenRequest token)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

CLUSTER = "publishing-controlplane"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(
    server: str,
    ca_pem: bytes,
    user: dict[str, str],
    *,
    namespace: str = "default",
    name: str = CLUSTER,
    extra_users: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A kubeconfig whose current context is `name` acting as `user`; each of `extra_users` gets a
    context of its own, named after it (e.g. the admin by client certificate)."""
    users = {name: user, **(extra_users or {})}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CLUSTER, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user_name, "user": entry} for user_name, entry in users.items()],
        "contexts": [
            {"name": user_name, "context": {"cluster": CLUSTER, "user": user_name, "namespace": namespace}}
            for user_name in users
        ],
        "current-context": name,
        "preferences": {},
    }


def token_user(token: str) -> dict[str, str]:
    return {"token": token}


def certificate_user(cert_pem: bytes, key_pem: bytes) -> dict[str, str]:
    return {"client-certificate-data": _b64(cert_pem), "client-key-data": _b64(key_pem)}


def write(path: str | Path, document: dict[str, Any]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(document, sort_keys=False))
    target.chmod(0o600)  # it holds the admin's credentials
    return target
