"""The old design's side: its own measuring harness (a BullMQ worker on Redis), run as it is.

The harness is not part of this repository (it is the old design's code, with no licence to copy
it here): pass its directory with `--peer DIR` or `PUBLISHING_BENCH_PEER=DIR`. It must hold
`run.sh`, `bench.js`, `worker.js`, `stub.js`, `report.js`, `package.json` and `package-lock.json`.

The directory is copied (without node_modules, runs/ and results) to a cache outside the checkout
(`$XDG_CACHE_HOME/publishing-operator/bench-peer/<hash of the files>`, the source may be
read-only), and `./run.sh <scenario> [--quick] [--runs R] [--concurrency C]` runs there: as its
README says, it installs redis-server with apt if missing and runs `npm ci` from its lock if
node_modules is missing; it starts a fresh Redis and stub per run and stops them by PID. Its
summary (median, min, max of every metric over the runs) is read back from `results-<tag>.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scenarios import Scenario

ENV = "PUBLISHING_BENCH_PEER"
NEEDED = ("run.sh", "bench.js", "worker.js", "stub.js", "report.js", "package.json", "package-lock.json")
HOW_TO_GET = (
    "the old design's side needs its harness (the BullMQ worker's measuring scripts, not in this "
    f"repository): pass --peer DIR or set {ENV}=DIR; it needs Node 20+, npm and apt (redis-server)"
)


class PeerError(RuntimeError):
    pass


@dataclass
class PeerSummary:
    tag: str
    concurrency: int
    metrics: dict[str, dict[str, float]]  # name -> {"median", "min", "max"}
    versions: dict[str, str]
    runs: int

    def median(self, name: str) -> float | None:
        entry = self.metrics.get(name)
        return None if entry is None else entry.get("median")


def locate(given: str | None) -> Path | None:
    """The harness directory from the flag, else the environment; None when neither is set."""
    raw = given or os.environ.get(ENV)
    if not raw:
        return None
    path = Path(raw).expanduser().resolve()
    missing = [name for name in NEEDED if not (path / name).is_file()]
    if missing:
        raise PeerError(f"{path} is not the old design's harness: missing {', '.join(missing)}")
    return path


def workdir(source: Path) -> Path:
    """A writable copy of the harness in the user's cache, keyed by the files' contents."""
    digest = hashlib.sha256()
    for name in sorted(p.name for p in source.iterdir() if p.is_file()):
        digest.update(name.encode() + b"\0" + (source / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "publishing-operator" / "bench-peer" / digest.hexdigest()[:16]
    if not (target / "run.sh").is_file():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for item in source.iterdir():
            if item.is_file() and not item.name.startswith("results-"):
                shutil.copy2(item, tmp / item.name)
                (tmp / item.name).chmod(0o755 if item.name.endswith(".sh") else 0o644)
        tmp.rename(target)
    return target


def run(
    source: Path, sc: Scenario, *, runs: int, concurrency: int | None = None, log: Path | None = None
) -> PeerSummary:
    """`run.sh` for `sc` in a copy of the harness; the concurrency defaults to the scenario's."""
    where = workdir(source)
    args = ["bash", "./run.sh", sc.name, "--runs", str(runs)]
    if sc.quick:
        args.append("--quick")
    tag = sc.name
    chosen = concurrency if concurrency is not None else sc.peer_concurrency
    if chosen is not None and chosen != sc.peer_concurrency:
        args += ["--concurrency", str(chosen)]
        tag += f"-c{chosen}"
    if sc.quick:
        tag += "-quick"
    output = subprocess.run(args, cwd=where, capture_output=True, text=True, check=False)
    if log is not None:
        log.write_text(output.stdout + output.stderr)
    if output.returncode != 0:
        tail = (output.stdout + output.stderr)[-3000:]
        raise PeerError(f"the old design's harness failed ({' '.join(args)} in {where}):\n{tail}")
    result: dict[str, Any] = json.loads((where / f"results-{tag}.json").read_text())
    config = result.get("config", {})
    return PeerSummary(
        tag=tag,
        concurrency=int(config.get("concurrency", chosen or sc.n)),
        metrics=result["summary"],
        versions=result.get("versions", {}),
        runs=len(result.get("runs", [])),
    )
