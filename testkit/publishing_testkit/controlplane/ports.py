"""Free TCP ports on the loopback address, for servers that must be told their port up front."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port the kernel just handed out and released. Another process may take it before the
    server binds it (the same race envtest accepts); the launcher retries a failed start."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
