"""Logging in to the Kubernetes API: the in-cluster service account, or a kubeconfig whose user has
a token, a client certificate, basic auth, or an `exec` credential plugin (EKS `aws eks get-token`,
GKE `gke-gcloud-auth-plugin`, AKS / OIDC `kubelogin`: the kubeconfigs users actually have).

Why not a library: kopf's `login_with_kubeconfig` passes static tokens and certificates only (an
`exec` user sends no credentials at all); the official client's ExecProvider (a dev-only
dependency here) has no client-certificate support, no expiry and ignores `interactiveMode`;
lightkube would bring a second client and its models for this one function. This module does what
client-go does for a non-interactive process (k8s.io/client-go/plugin/pkg/client/auth/exec), no
more. Credentials never appear in a message, a log line or an exception.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import kopf
import yaml

from publishing_operator.api import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 60.0  # seconds a plugin may take (it may call a cloud API); client-go has no limit
EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"  # per-cluster plugin config

Json = dict[str, Any]


class LoginError(Exception):
    """The operator cannot log in. One line, naming the kubeconfig, context or plugin; never a credential."""


@dataclass(frozen=True)
class _Entry:
    """A kubeconfig entry (cluster, user or context) and the file it came from (relative paths)."""

    body: Json
    file: Path


@dataclass(frozen=True)
class _Kubeconfig:
    files: tuple[Path, ...]
    context: str
    namespace: str | None
    cluster: _Entry
    user: _Entry
    user_name: str

    def describe(self) -> str:
        return f"kubeconfig {os.pathsep.join(map(str, self.files))} (context {self.context!r})"


def _now() -> datetime:
    return datetime.now(UTC)


class KubeLogin:
    """Where the operator's credentials come from, and the credentials themselves.

    `current()` is what every client uses; it runs an exec plugin again only when the credential
    it returned has expired. `fresh()` logs in anew: after a 401 (a rotated service-account token,
    a revoked plugin token), and when kopf asks again (it does when credentials expire or a
    request is refused).
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._explicit = kubeconfig
        self._environ = environ if environ is not None else os.environ
        self._clock = clock
        self._lock = threading.Lock()  # kopf and the operator's client may log in from two threads
        self._info: kopf.ConnectionInfo | None = None
        self._given_to_kopf = False
        self.source = "not logged in yet"

    def current(self) -> kopf.ConnectionInfo:
        with self._lock:
            if self._info is None or self._expired(self._info):
                self._info = self._login()
            return self._info

    def fresh(self) -> kopf.ConnectionInfo:
        with self._lock:
            self._info = self._login()
            return self._info

    def for_kopf(self) -> kopf.ConnectionInfo:
        """kopf logs in at start (the credentials the start-up check just used) and again only when
        its credentials expired or were refused: then a fresh login."""
        with self._lock:
            first, self._given_to_kopf = not self._given_to_kopf, True
        return self.current() if first else self.fresh()

    def _expired(self, info: kopf.ConnectionInfo) -> bool:
        return info.expiration is not None and self._clock() >= info.expiration

    def _login(self) -> kopf.ConnectionInfo:
        paths = self._kubeconfig_paths()
        if paths is None and SERVICE_ACCOUNT_TOKEN.exists():
            info = kopf.login_with_service_account(settings=kopf.OperatorSettings())
            if info is None:
                raise LoginError(f"cannot read the service-account token {SERVICE_ACCOUNT_TOKEN}")
            self.source = "the in-cluster service account"
            return info
        if paths is None:
            raise LoginError(
                "no Kubernetes credentials: not in a cluster (no service-account token) and no "
                "kubeconfig (--kubeconfig, $KUBECONFIG or ~/.kube/config)"
            )
        config = _read_kubeconfig(paths)
        self.source = config.describe()
        return _connection_info(config, self._clock)

    def _kubeconfig_paths(self) -> list[Path] | None:
        """The kubeconfig files to merge; None when there is none to use (in-cluster then)."""
        if self._explicit:
            return [Path(self._explicit).expanduser()]
        listed = [p for p in self._environ.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
        if listed:
            return [Path(p.strip()).expanduser() for p in listed]
        default = Path("~/.kube/config").expanduser()
        return [default] if default.exists() and not SERVICE_ACCOUNT_TOKEN.exists() else None


def _read_kubeconfig(paths: list[Path]) -> _Kubeconfig:
    """Merge the files as kubectl does (the first file that sets a value wins), resolve the context."""
    existing = [p for p in paths if p.is_file()]
    if not existing:
        missing = ", ".join(str(p) for p in paths)
        raise LoginError(f"kubeconfig {missing} does not exist")
    current: str | None = None
    contexts: dict[str, _Entry] = {}
    clusters: dict[str, _Entry] = {}
    users: dict[str, _Entry] = {}
    for path in existing:
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LoginError(f"cannot read kubeconfig {path}: {type(exc).__name__}") from None
        if not isinstance(config, dict):
            raise LoginError(f"kubeconfig {path} is not a kubeconfig (not a mapping)")
        current = current or config.get("current-context") or None
        for key, table in (("contexts", contexts), ("clusters", clusters), ("users", users)):
            for item in config.get(key) or []:
                if isinstance(item, dict) and "name" in item:
                    body = item.get(key[:-1]) or {}
                    table.setdefault(str(item["name"]), _Entry(body if isinstance(body, dict) else {}, path))
    where = os.pathsep.join(str(p) for p in existing)
    if current is None:
        raise LoginError(f"kubeconfig {where} sets no current-context")
    if current not in contexts:
        raise LoginError(f"kubeconfig {where}: context {current!r} is not defined")
    context = contexts[current].body
    cluster_name, user_name = str(context.get("cluster", "")), str(context.get("user", ""))
    if cluster_name not in clusters:
        raise LoginError(
            f"kubeconfig {where}: cluster {cluster_name!r} of context {current!r} is not defined"
        )
    if user_name and user_name not in users:
        raise LoginError(f"kubeconfig {where}: user {user_name!r} of context {current!r} is not defined")
    if not clusters[cluster_name].body.get("server"):
        raise LoginError(f"kubeconfig {where}: cluster {cluster_name!r} has no server")
    return _Kubeconfig(
        files=tuple(existing),
        context=current,
        namespace=context.get("namespace"),
        cluster=clusters[cluster_name],
        user=users.get(user_name) or _Entry({}, existing[0]),
        user_name=user_name,
    )


def _relative_to(entry: _Entry, value: Any) -> str | None:
    """A file path in a kubeconfig is relative to the kubeconfig that names it (as in client-go)."""
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else entry.file.parent / path)


def _connection_info(config: _Kubeconfig, clock: Callable[[], datetime]) -> kopf.ConnectionInfo:
    cluster, user = config.cluster.body, config.user.body
    fields: Json = {
        "server": str(cluster["server"]),
        "ca_path": _relative_to(config.cluster, cluster.get("certificate-authority")),
        "ca_data": cluster.get("certificate-authority-data"),
        "insecure": cluster.get("insecure-skip-tls-verify"),
        "proxy_url": cluster.get("proxy-url"),
        "default_namespace": config.namespace,
        "certificate_path": _relative_to(config.user, user.get("client-certificate")),
        "certificate_data": user.get("client-certificate-data"),
        "private_key_path": _relative_to(config.user, user.get("client-key")),
        "private_key_data": user.get("client-key-data"),
        "username": user.get("username"),
        "password": user.get("password"),
        "token": user.get("token"),
    }
    token_file = _relative_to(config.user, user.get("tokenFile"))
    if not fields["token"] and token_file:
        try:
            fields["token"] = Path(token_file).read_text().strip()
        except OSError as exc:
            raise LoginError(f"{config.describe()}: cannot read tokenFile: {type(exc).__name__}") from None
    if not fields["token"] and isinstance(user.get("auth-provider"), dict):
        # The legacy gcp/oidc auth-providers: only a cached access token can be used (as kopf does).
        fields["token"] = (user["auth-provider"].get("config") or {}).get("access-token")
    if isinstance(user.get("exec"), dict):
        fields |= _exec_credentials(config, user["exec"], clock)
    return kopf.ConnectionInfo(**fields)


def _exec_credentials(config: _Kubeconfig, spec: Json, clock: Callable[[], datetime]) -> Json:
    """Run the user's credential plugin as kubectl would, non-interactively; its token or client
    certificate (which take precedence over static ones, as in client-go) and its expiry."""
    plugin = f"{config.describe()}: exec plugin {spec.get('command')!r}"
    api_version = spec.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise LoginError(
            f"{plugin}: apiVersion {api_version!r} is not supported "
            f"(use one of {', '.join(EXEC_API_VERSIONS)})"
        )
    if spec.get("interactiveMode") == "Always":
        raise LoginError(
            f"{plugin} asks for interactiveMode Always, but an operator has no terminal: configure the "
            "plugin for non-interactive use (a cached or service-principal login) and interactiveMode Never"
        )
    command = _resolve_command(config, spec, plugin)
    args = [str(a) for a in spec.get("args") or []]
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[str(item["name"])] = str(item.get("value", ""))
    exec_info: Json = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    if spec.get("provideClusterInfo"):
        exec_info["spec"]["cluster"] = _cluster_info(config.cluster)
    env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
    try:
        # The user's own kubeconfig names the command, as for kubectl.
        done = subprocess.run(
            [command, *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=EXEC_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LoginError(f"{plugin} did not answer within {EXEC_TIMEOUT:.0f}s") from None
    except OSError as exc:
        raise LoginError(f"{plugin} cannot be run: {exc.strerror or type(exc).__name__}") from None
    if done.returncode != 0:
        said = _last_line(done.stderr)
        raise LoginError(f"{plugin} exited with {done.returncode}" + (f": {said}" if said else ""))
    try:
        credential = json.loads(done.stdout)
    except ValueError:
        raise LoginError(f"{plugin} did not print an ExecCredential (not JSON)") from None
    if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
        raise LoginError(f"{plugin} did not print an ExecCredential")
    if credential.get("apiVersion") != api_version:
        raise LoginError(
            f"{plugin} answered {credential.get('apiVersion')!r}, not the {api_version!r} asked for"
        )
    status = credential.get("status") or {}
    token, cert, key = status.get("token"), status.get("clientCertificateData"), status.get("clientKeyData")
    if not token and not (cert and key):
        raise LoginError(f"{plugin} returned neither a token nor a client certificate and key")
    found: Json = {"token": token or None}
    if cert and key:
        found |= {
            "certificate_data": cert,
            "private_key_data": key,
            "certificate_path": None,
            "private_key_path": None,
        }
    expires = status.get("expirationTimestamp")
    if expires:
        try:
            found["expiration"] = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        except ValueError:
            raise LoginError(f"{plugin} returned an unreadable expirationTimestamp") from None
        if found["expiration"].tzinfo is None:
            found["expiration"] = found["expiration"].replace(tzinfo=UTC)
        if found["expiration"] <= clock():
            raise LoginError(f"{plugin} returned a credential that has already expired")
    log.info("logged in to Kubernetes with the credential plugin of %s", config.describe())
    return found


def _resolve_command(config: _Kubeconfig, spec: Json, plugin: str) -> str:
    """A bare name is looked up on $PATH; a relative path is relative to the kubeconfig (client-go)."""
    command = str(spec.get("command") or "")
    if not command:
        raise LoginError(
            f"{config.describe()}: the exec plugin of user {config.user_name!r} names no command"
        )
    if os.sep in command:
        return _relative_to(config.user, command) or command
    found = shutil.which(command)
    if found is None:
        hint = spec.get("installHint")
        raise LoginError(f"{plugin} is not on $PATH" + (f"; {' '.join(str(hint).split())}" if hint else ""))
    return found


def _cluster_info(entry: _Entry) -> Json:
    """ExecCredential's spec.cluster (provideClusterInfo): the cluster, its CA as base64 data."""
    cluster = entry.body
    info: Json = {"server": cluster["server"]}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if key in cluster:
            info[key] = cluster[key]
    if cluster.get("certificate-authority-data"):
        info["certificate-authority-data"] = cluster["certificate-authority-data"]
    elif cluster.get("certificate-authority"):
        ca = _relative_to(entry, cluster["certificate-authority"])
        if ca is not None:
            with contextlib.suppress(OSError):  # the TLS set-up reports it with its own message
                info["certificate-authority-data"] = base64.b64encode(Path(ca).read_bytes()).decode()
    for extension in cluster.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXEC_CLUSTER_EXTENSION:
            info["config"] = extension.get("extension")
    return info


def _last_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def same_tls_identity(a: kopf.ConnectionInfo, b: kopf.ConnectionInfo) -> bool:
    """Whether two logins present the same client certificate (else a new TLS context is needed)."""
    keys = ("certificate_path", "certificate_data", "private_key_path", "private_key_data")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


# -- the start-up check -----------------------------------------------------------------------------

STARTUP_RETRY_FOR = 60.0  # seconds of retrying an unreachable or not-yet-ready API before giving up
STARTUP_BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s


class _NotYet(Exception):
    """The API cannot be used yet, for a reason that may pass (unreachable, 5xx, RBAC or the CRD
    being applied at the same moment as the operator)."""


async def check_access(
    login: KubeLogin,
    namespaces: Sequence[str],
    *,
    retry_for: float = STARTUP_RETRY_FOR,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> kopf.ConnectionInfo:
    """Log in and list PublishingBuilds once, before kopf starts: credentials that cannot work
    raise LoginError at once (the process exits non-zero, saying why); an API that is not there
    yet is retried for `retry_for` seconds, each try logged, then LoginError."""
    deadline = clock() + retry_for
    tries = 0
    while True:
        info = await asyncio.to_thread(login.current)
        try:
            await _list_once(info, login.source, namespaces, transport)
            if tries:
                log.info("the Kubernetes API at %s answers now", info.server)
            return info
        except _NotYet as problem:
            delay = STARTUP_BACKOFF[min(tries, len(STARTUP_BACKOFF) - 1)]
            tries += 1
            left = deadline - clock()
            if left <= 0:
                raise LoginError(f"{problem}; gave up after {retry_for:.0f}s") from None
            delay = min(delay, left)
            log.warning("%s; retrying in %.0fs (giving up %.0fs from now)", problem, delay, left)
            await sleep(delay)


async def _list_once(
    info: kopf.ConnectionInfo,
    source: str,
    namespaces: Sequence[str],
    transport: httpx.AsyncBaseTransport | None,
) -> None:
    verify: ssl.SSLContext | bool = info.as_ssl_context() if info.server.startswith("https") else True
    paths = [f"{_PB}/namespaces/{ns}/{PLURAL}" for ns in namespaces] or [f"{_PB}/{PLURAL}"]
    headers = {"Accept": "application/json", "User-Agent": "publishing-operator", **info.as_http_headers()}
    async with httpx.AsyncClient(
        base_url=info.server.rstrip("/"), headers=headers, verify=verify, timeout=10.0, transport=transport
    ) as client:
        for path in paths:
            try:
                response = await client.get(path, params={"limit": "1"})
            except httpx.HTTPError as exc:
                raise _NotYet(
                    f"cannot reach the Kubernetes API at {info.server}: {type(exc).__name__}"
                ) from None
            _judge(response, info.server, source, path)


_PB = f"/apis/{GROUP}/{VERSION}"


def _judge(response: httpx.Response, server: str, source: str, path: str) -> None:
    code = response.status_code
    if code < 300:
        return
    reason = _status_message(response)
    if code == 401:
        raise LoginError(
            f"the Kubernetes API at {server} refused the credentials of {source} (401 Unauthorized)"
        )
    if code == 403:  # RBAC may be applied together with the operator: retried, then reported
        raise _NotYet(f"not allowed to list PublishingBuilds ({path}): {reason or '403 Forbidden'}")
    if code == 404:
        raise _NotYet(f"the PublishingBuild CRD is not installed at {server} (kubectl apply -f crds/)")
    if code >= 500 or code == 429:
        raise _NotYet(f"the Kubernetes API at {server} answered HTTP {code}{': ' + reason if reason else ''}")
    raise LoginError(f"the Kubernetes API at {server} answered HTTP {code} to {path}: {reason}")


def _status_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("message", ""))[:300] if isinstance(body, dict) else ""
