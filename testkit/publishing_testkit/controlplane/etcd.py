"""etcd for a throwaway control plane: one member on loopback ports, data in the work directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from publishing_testkit.controlplane.ports import HOST


@dataclass(frozen=True)
class EtcdConfig:
    data_dir: Path
    client_port: int
    peer_port: int
    name: str = "controlplane"

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    def arguments(self) -> list[str]:
        # The flags envtest passes, plus --unsafe-no-fsync: nothing here must survive a power cut,
        # and fsync on a loaded shared disk is what makes etcd (and so every write) slow.
        return [
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.name}={self.peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
