"""Where the operator's CPU goes: a summary of py-spy raw profiles (bench.side_by_side --profile DIR).

    python -m bench.profiles DIR/burst-1.txt [...] [--top 25]

py-spy's raw format is one collapsed stack per line ("frame;frame;... count"), each frame
"function (path/to/module.py:line)". Printed:
  by package, inclusive   share of samples with a frame of that package anywhere on the stack
                          (httpx, httpcore, anyio, h11, pydantic, kopf, aiohttp, publishing_operator ...)
  by package, self        share of samples whose innermost frame is in that package
  hottest functions, self and inclusive (top N)
Shares are of the working samples: py-spy records active threads only, and the idle waits it still
reports (the event loop's select, idle executor threads: IDLE_LEAVES) are left out and counted.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Innermost frames that are waiting, not working (py-spy's idle detection misses some of them): the
# event loop's select, idle executor threads. Their samples are counted apart, not in the shares.
IDLE_LEAVES = frozenset(
    {
        "selectors.EpollSelector.select",
        "selectors.PollSelector.select",
        "thread._worker",
        "threading.Condition.wait",
    }
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>[^():]+)(?::\d+)?\)$")


@dataclass
class Profile:
    samples: int  # working samples (idle ones excluded)
    inclusive_pkg: Counter[str]
    self_pkg: Counter[str]
    inclusive_fn: Counter[str]
    self_fn: Counter[str]
    idle: int  # samples whose innermost frame is an idle wait (IDLE_LEAVES)


def package(path: str) -> str:
    """The top-level package (or stdlib module) of a frame's file: py-spy shows paths relative to
    sys.path ("httpx/_client.py", "asyncio/events.py", "json/decoder.py", "typing.py")."""
    parts = Path(path).parts
    for marker in ("site-packages", "dist-packages"):  # an absolute path, when py-spy keeps one
        if marker in parts:
            parts = parts[parts.index(marker) + 1 :]
    if len(parts) > 1:
        return parts[0]
    return Path(path).stem if parts else "?"


def frames(stack: str) -> list[tuple[str, str]]:
    """(package, "module.function") per frame, outermost first."""
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        if match is None:
            out.append(("?", frame.strip()))
            continue
        path = match.group("path")
        out.append((package(path), f"{Path(path).stem}.{match.group('func')}"))
    return out


def read(paths: Iterable[Path]) -> Profile:
    prof = Profile(0, Counter(), Counter(), Counter(), Counter(), 0)
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            parsed = frames(stack)
            if not parsed:
                continue
            if parsed[-1][1] in IDLE_LEAVES:
                prof.idle += count
                continue
            prof.samples += count
            for pkg in {p for p, _ in parsed}:
                prof.inclusive_pkg[pkg] += count
            for fn in {f for _, f in parsed}:
                prof.inclusive_fn[fn] += count
            leaf_pkg, leaf_fn = parsed[-1]
            prof.self_pkg[leaf_pkg] += count
            prof.self_fn[leaf_fn] += count
    return prof


def report(prof: Profile, top: int = 25) -> str:
    total = max(1, prof.samples)

    def rows(counter: Counter[str], n: int) -> list[str]:
        return [f"  {100 * c / total:5.1f}%  {name}" for name, c in counter.most_common(n)]

    return "\n".join(
        [
            f"{prof.samples} working samples ({prof.idle} idle ones left out)",
            "by package, inclusive (on the stack):",
            *rows(prof.inclusive_pkg, 15),
            "by package, self (innermost frame):",
            *rows(prof.self_pkg, 15),
            f"hottest functions, self (top {top}):",
            *rows(prof.self_fn, top),
            f"hottest functions, inclusive (top {top}):",
            *rows(prof.inclusive_fn, top),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    print(report(read(args.files), args.top))


if __name__ == "__main__":
    main()
