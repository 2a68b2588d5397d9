"""Audit the operator's runtime lock (requirements.lock, hashed: what the image installs) for known
vulnerabilities with pip-audit, from PyPI, in a tool venv cached outside the repository.

    .venv/bin/python tests/tools/audit.py          # make audit

pip-audit needs a vulnerability database online: OSV (api.osv.dev) or PyPI's per-release JSON API
(pypi.org/pypi/NAME/VERSION/json, which carries PyPA advisories). No offline-capable database is
published as a package (safety-db on PyPI stopped in 2021; safety 3 needs an account), so this
first checks that one of the two answers, and exits 3 with the reason when neither does (the
machines this project is built on reach PyPI's package index but neither of those). Exit codes:
0 no known vulnerability, 1 vulnerabilities found (listed), 3 no vulnerability service reachable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import venv
from pathlib import Path

PIP_AUDIT = "pip-audit==2.10.1"
REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
UNREACHABLE = 3
PROBE_PACKAGE, PROBE_VERSION = "pip", "24.0"  # any published release: the per-release API must know it


def _answers(request: urllib.request.Request) -> str | None:
    """None when the service answered; else why not."""
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            response.read(1)
        return None
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def reachable_service() -> tuple[str | None, list[str]]:
    """The pip-audit vulnerability service that answers here ("osv" or "pypi"), and why the others do not."""
    why: list[str] = []
    osv = urllib.request.Request(
        "https://api.osv.dev/v1/query",
        data=json.dumps(
            {"package": {"name": PROBE_PACKAGE, "ecosystem": "PyPI"}, "version": PROBE_VERSION}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    problem = _answers(osv)
    if problem is None:
        return "osv", why
    why.append(f"OSV (api.osv.dev): {problem}")
    problem = _answers(urllib.request.Request(f"https://pypi.org/pypi/{PROBE_PACKAGE}/{PROBE_VERSION}/json"))
    if problem is None:
        return "pypi", why
    why.append(f"PyPI's per-release JSON API (pypi.org/pypi/NAME/VERSION/json): {problem}")
    return None, why


def tool_python() -> Path:
    root = Path(os.environ.get("PUBLISHING_TOOLS_CACHE") or Path.home() / ".cache" / "publishing-operator")
    target = root / PIP_AUDIT.replace("==", "-")
    python = target / "bin" / "python"
    if not (target / ".complete").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(target)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PIP_AUDIT], check=True)
        (target / ".complete").touch()
    return python


def main() -> int:
    if not LOCK.exists():
        print(f"audit: {LOCK.name} is missing (make lock writes it)", file=sys.stderr)
        return 2
    service, why = reachable_service()
    if service is None:
        print("audit: no vulnerability service is reachable from here, nothing audited: " + "; ".join(why))
        return UNREACHABLE
    command = [
        str(tool_python()),
        "-m",
        "pip_audit",
        "--requirement",
        str(LOCK),
        "--require-hashes",
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--progress-spinner",
        "off",
        "--desc",
        "on",
    ]
    print(f"audit: {LOCK.name} against {service} with {PIP_AUDIT}", flush=True)
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
