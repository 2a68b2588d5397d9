"""Small HTTP endpoints on the operator's event loop (aiohttp): `/metrics`, `/healthz`, `/readyz`.

On the loop itself, so handlers read the operator's single-threaded state safely, and a blocked loop
shows as a probe that does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

log = logging.getLogger("publishing_operator.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpServer:
    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self.host = host
        self.port = port  # the bound port (the OS's choice when asked for 0)

    def url(self, path: str) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}{path}"

    async def stop(self) -> None:
        await self._runner.cleanup()


async def start_http_server(routes: Mapping[str, Handler], *, host: str, port: int) -> HttpServer:
    """Serve GET `routes` on host:port; port 0 binds a free port (read it from `.port`)."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = runner.addresses  # the sockets actually bound: the real port when asked for 0
    bound = int(addresses[0][1]) if addresses else port
    return HttpServer(runner, host, bound)


@asynccontextmanager
async def serve_http(
    routes: Mapping[str, Handler], port: int, host: str, *, what: str
) -> AsyncIterator[HttpServer | None]:
    """Serve `routes` while the block runs; `port` 0 means off (yields None)."""
    if port == 0:
        yield None
        return
    server = await start_http_server(routes, host=host, port=port)
    # The address it listens on (0.0.0.0 in a Pod), not a loopback URL that is only true inside it.
    listening = f"[{host}]" if ":" in host else (host or "0.0.0.0")
    log.info("%s listening on %s:%d (%s)", what, listening, server.port, ", ".join(routes))
    try:
        yield server
    finally:
        await server.stop()
