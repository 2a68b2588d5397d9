"""A minimal synchronous HTTPS client for the control plane's own needs (readiness, TokenRequest,
namespaces): the standard library only, trusting exactly the control plane's CA."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # decoded JSON, or the text when it is not JSON


class AdminClient:
    def __init__(self, server: str, ca_pem: bytes, token: str, timeout: float = 10.0) -> None:
        self.server = server.rstrip("/")
        self._context = ssl.create_default_context(cadata=ca_pem.decode())
        self._token = token
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"AdminClient({self.server!r})"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._token}",
                "Accept": accept,
                "Content-Type": content_type,
            },
        )
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=self._timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        text = raw.decode(errors="replace")
        try:
            return Response(status, json.loads(text))
        except ValueError:
            return Response(status, text)
