"""A local artifact host for the sandbox: archive-source examples point at URLs the sandbox cannot
reach (no internet), so it serves a small sample project tarball for each and rewrites the
example's `url` and `sha256` to match, before applying it."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web


def sample_tarball(project_root: str) -> bytes:
    """A gzip tarball with one top-level folder, as EAS expects, holding a minimal Expo app."""
    root = posixpath.normpath(posixpath.join("project", project_root or "."))
    files = {
        f"{root}/package.json": json.dumps({"name": "sample-app", "version": "1.0.0"}).encode(),
        f"{root}/app.json": json.dumps({"expo": {"name": "sample-app", "slug": "sample-app"}}).encode(),
        f"{root}/eas.json": json.dumps({"build": {"production": {}, "preview": {}}}).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0  # reproducible bytes, so the sha256 is stable
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class ArtifactHost:
    def __init__(self) -> None:
        self.url = ""
        self.files: dict[str, bytes] = {}

    def localize(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest, with an archive source re-pointed at a sample tarball served here."""
        doc = copy.deepcopy(dict(manifest))
        archive = ((doc.get("spec") or {}).get("source") or {}).get("archive")
        if doc.get("kind") != "PublishingBuild" or not isinstance(archive, dict) or not self.url:
            return doc
        name = posixpath.basename(urlsplit(str(archive.get("url", ""))).path) or "project.tar.gz"
        data = sample_tarball(str(archive.get("projectRootDirectory", ".")))
        self.files[name] = data
        archive["url"] = f"{self.url}/{name}"
        archive["sha256"] = hashlib.sha256(data).hexdigest()
        return doc

    async def _get(self, request: web.Request) -> web.StreamResponse:
        data = self.files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="not found")
        return web.Response(body=data, content_type="application/gzip")


@contextlib.asynccontextmanager
async def serve_artifacts(host: str = "127.0.0.1") -> AsyncIterator[ArtifactHost]:
    artifacts = ArtifactHost()
    app = web.Application()
    app.router.add_get("/{name}", artifacts._get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    artifacts.url = f"http://{bound_host}:{bound_port}"
    try:
        yield artifacts
    finally:
        await runner.cleanup()
