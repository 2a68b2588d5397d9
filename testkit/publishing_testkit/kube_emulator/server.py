"""Serving the emulator over HTTP on loopback, and the handle callers use to reach it.

`serve_emulator()` runs on the caller's event loop; `emulator_in_thread()` runs it on its own loop
in a background thread, for callers that also block (tests that run kubectl subprocesses).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import aiohttp.web
import yaml

from publishing_testkit.kube_emulator.emulator import SandboxKubernetesEmulator
from publishing_testkit.kube_emulator.errors import JsonObject
from publishing_testkit.kube_emulator.faults import ApiFault, FaultPlan
from publishing_testkit.kube_emulator.rbac import Identity
from publishing_testkit.kube_emulator.store import ClusterState
from publishing_testkit.kube_emulator.tls import ServingCertificate, issue

T = TypeVar("T")
CONTEXT = "publishing-sandbox"


class ApplyError(RuntimeError):
    """A manifest was refused; the message is the API server's Status message."""

    def __init__(self, manifest: Mapping[str, Any], code: int, status: JsonObject) -> None:
        what = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
        super().__init__(f"{what}: HTTP {code}: {status.get('message', status)}")
        self.code = code
        self.status = status


@dataclass
class EmulatorHandle:
    emulator: SandboxKubernetesEmulator
    host: str
    port: int
    certificate: ServingCertificate | None = None  # set when serving HTTPS
    _plurals: dict[tuple[str, str], tuple[str, bool]] = field(default_factory=dict, repr=False)

    @property
    def url(self) -> str:
        scheme = "https" if self.certificate is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def client_session(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An aiohttp session to the API that trusts its CA when it serves HTTPS, as a cluster admin
        (the admin token the written kubeconfigs carry: it works when anonymous requests do not)."""
        connector = None
        if self.certificate is not None:
            connector = aiohttp.TCPConnector(ssl=self.certificate.client_context())
        headers = {"Authorization": "Bearer sandbox-token", **(kwargs.pop("headers", None) or {})}
        return aiohttp.ClientSession(self.url, connector=connector, headers=headers, **kwargs)

    @property
    def state(self) -> ClusterState:
        return self.emulator.state

    @property
    def faults(self) -> FaultPlan:
        """Pending and injected faults, and the journal of every request (faults.py)."""
        return self.emulator.faults

    def add_fault(self, fault: ApiFault) -> None:
        """Inject a fault (on the emulator's loop; from another thread use `EmulatorThread.call`)."""
        self.emulator.add_fault(fault)

    def serviceaccount_token(self, namespace: str, name: str) -> str:
        """A bearer token for a ServiceAccount: requests with it are authorized by the applied RBAC."""
        token = secrets.token_urlsafe(24)
        self.emulator.tokens[token] = Identity.service_account(namespace, name)
        return token

    def serviceaccount_kubeconfig(self, path: str | Path, namespace: str, name: str) -> Path:
        """A kubeconfig that acts as the ServiceAccount (e.g. the chart's), to test its RBAC."""
        return self.write_kubeconfig(path, namespace, token=self.serviceaccount_token(namespace, name))

    def kubeconfig(self, namespace: str = "default", token: str = "sandbox-token") -> JsonObject:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": self._cluster()}],
            "users": [{"name": CONTEXT, "user": {"token": token}}],
            "contexts": [
                {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": namespace}}
            ],
            "current-context": CONTEXT,
            "preferences": {},
        }

    def _cluster(self) -> JsonObject:
        cluster: JsonObject = {"server": self.url}
        if self.certificate is not None:
            cluster["certificate-authority-data"] = self.certificate.ca_data
        return cluster

    def write_kubeconfig(
        self, path: str | Path, namespace: str = "default", token: str = "sandbox-token"
    ) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace, token), sort_keys=False))
        target.chmod(0o600)
        return target

    async def apply(self, manifests: Iterable[Mapping[str, Any]]) -> list[JsonObject]:
        """Create or update each manifest through the HTTP API, in order, like `kubectl apply`.

        An existing object gets a merge patch with the manifest (fields removed from the manifest
        are not removed from the object: there is no last-applied bookkeeping).
        """
        results: list[JsonObject] = []
        async with self.client_session(headers={"Content-Type": "application/json"}) as session:
            for manifest in manifests:
                results.append(await self._apply_one(session, manifest))
        return results

    async def _apply_one(self, session: aiohttp.ClientSession, manifest: Mapping[str, Any]) -> JsonObject:
        manifest = _with_last_applied(manifest)
        api_version, kind = str(manifest.get("apiVersion", "")), str(manifest.get("kind", ""))
        plural, namespaced = await self._resolve(session, api_version, kind)
        meta = manifest.get("metadata") or {}
        prefix = _api_path(api_version)
        if namespaced:
            prefix += f"/namespaces/{meta.get('namespace') or 'default'}"
        collection = f"{prefix}/{plural}"
        async with session.get(f"{collection}/{meta.get('name')}") as response:
            exists = response.status == 200
        if exists:
            request = session.patch(
                f"{collection}/{meta.get('name')}",
                data=json.dumps(manifest),
                headers={"Content-Type": "application/merge-patch+json"},
            )
        else:
            request = session.post(collection, data=json.dumps(manifest))
        async with request as response:
            body = await response.json()
            if response.status >= 300:
                raise ApplyError(manifest, response.status, body)
            return dict(body)

    async def _resolve(self, session: aiohttp.ClientSession, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._plurals:  # refresh: a CRD applied earlier may have added the kind
            async with session.get(_api_path(api_version)) as response:
                listing = await response.json() if response.status == 200 else {"resources": []}
            for resource in listing.get("resources", []):
                if "/" not in resource["name"]:
                    self._plurals[(api_version, resource["kind"])] = (
                        resource["name"],
                        resource["namespaced"],
                    )
        if key not in self._plurals:
            raise ApplyError(
                {"kind": kind, "metadata": {}},
                404,
                {"message": f"no resource for kind {kind!r} in {api_version!r}"},
            )
        return self._plurals[key]


def _api_path(api_version: str) -> str:
    """Where an apiVersion is served: /api/v1 for the core group, /apis/GROUP/VERSION for the others."""
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _with_last_applied(manifest: Mapping[str, Any]) -> JsonObject:
    """The manifest annotated as `kubectl apply` does, so a later `kubectl apply` diffs against it."""
    applied = json.loads(json.dumps(manifest))
    annotations = {k: v for k, v in (applied.get("metadata", {}).get("annotations") or {}).items()}
    annotations.pop(LAST_APPLIED, None)
    applied.setdefault("metadata", {})["annotations"] = annotations
    recorded = json.dumps(applied, separators=(",", ":"), sort_keys=True)
    applied["metadata"]["annotations"] = {**annotations, LAST_APPLIED: recorded + "\n"}
    return dict(applied)


def load_manifests(*paths: str | Path) -> list[JsonObject]:
    """Every YAML document in the given files, or in the *.yaml/*.yml files of given directories."""
    documents: list[JsonObject] = []
    for path in paths:
        target = Path(path)
        files = sorted([*target.glob("*.yaml"), *target.glob("*.yml")]) if target.is_dir() else [target]
        for file in files:
            for document in yaml.safe_load_all(file.read_text()):
                if isinstance(document, dict) and document.get("kind") == "List":
                    documents.extend(item for item in document.get("items", []) if isinstance(item, dict))
                elif isinstance(document, dict) and document:
                    documents.append(document)
    return documents


@contextlib.asynccontextmanager
async def serve_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    bookmark_interval: float = 10.0,
    event_log_size: int = 5000,
    tls: bool = False,
) -> AsyncIterator[EmulatorHandle]:
    """Serve a fresh emulated cluster until the context exits; watches are ended on exit.

    `tls=True` serves HTTPS with a throwaway CA that the written kubeconfigs carry (kubectl then
    sends bearer tokens, so ServiceAccount kubeconfigs are held to RBAC with kubectl too).
    """
    certificate = issue(host) if tls else None
    emulator = SandboxKubernetesEmulator(
        state=ClusterState(event_log_size=event_log_size), bookmark_interval=bookmark_interval
    )
    server = aiohttp.web.Server(emulator, handler_cancellation=True)
    runner = aiohttp.web.ServerRunner(server, shutdown_timeout=2.0)
    await runner.setup()
    ssl_context = certificate.server_context() if certificate is not None else None
    site = aiohttp.web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    bound_port = int(runner.addresses[0][1])
    emulator.address = f"{host}:{bound_port}"
    try:
        yield EmulatorHandle(emulator=emulator, host=host, port=bound_port, certificate=certificate)
    finally:
        emulator.closing.set()
        emulator.state.wake_watchers()
        await runner.cleanup()


class EmulatorThread:
    """An emulator on its own event loop in a daemon thread; `handle` is valid while it runs."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._handle: EmulatorHandle | None = None
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)

    @property
    def handle(self) -> EmulatorHandle:
        if self._handle is None:
            raise RuntimeError("the emulator is not running")
        return self._handle

    def start(self, timeout: float = 10.0) -> EmulatorHandle:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the emulator did not start in time")
        if self._error is not None:
            raise RuntimeError("the emulator failed to start") from self._error
        return self.handle

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for its result (from another thread)."""

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with serve_emulator(**self._kwargs) as handle:
                self._handle = handle
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        finally:
            self._handle = None


@contextlib.contextmanager
def emulator_in_thread(**kwargs: Any) -> Iterator[EmulatorThread]:
    thread = EmulatorThread(**kwargs)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()
