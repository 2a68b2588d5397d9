"""Waiting for a control plane to serve: the conditions envtest waits for, with a deadline."""

from __future__ import annotations

import time
import urllib.error
from collections.abc import Callable

from publishing_testkit.controlplane.client import AdminClient


class NotReady(RuntimeError):
    pass


def wait_until_ready(
    client: AdminClient, deadline: float, alive: Callable[[], str | None], poll: float = 0.2
) -> None:
    """Until /readyz answers ok and the `default` Namespace exists (the bootstrap controller creates
    it a moment after /readyz), or `deadline` (time.monotonic()). `alive()` returns the name of a
    process that has exited, if any: then there is no point in waiting."""
    last = "no answer yet"
    while True:
        dead = alive()
        if dead:
            raise NotReady(f"{dead} exited while waiting for the API server")
        try:
            readyz = client.request("GET", "/readyz")
            if readyz.status != 200:
                last = f"/readyz: HTTP {readyz.status} {str(readyz.body)[-500:]}"
            else:
                default = client.request("GET", "/api/v1/namespaces/default")
                if default.status == 200:
                    return
                last = f"namespace default: HTTP {default.status}"
        except (urllib.error.URLError, OSError) as error:
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            raise NotReady(f"the API server was not ready in time; last: {last}")
        time.sleep(poll)  # a poll step bounded by the deadline
