"""The sandbox's live view of PublishingBuilds: a table redrawn in place on a TTY, change lines otherwise."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict

from publishing_testkit.kube_emulator.table import age_of

COLUMNS = ("NAME", "PLATFORM", "PHASE", "REASON", "ATTEMPT", "BUILD", "AGE")
_CLEAR = "\x1b[H\x1b[J"  # cursor home, clear to the end of the screen


class BuildRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    platform: str
    phase: str
    reason: str
    attempt: str
    build: str
    created: str

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> BuildRow:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        succeeded = next(
            (
                c
                for c in status.get("conditions") or []
                if isinstance(c, dict) and c.get("type") == "Succeeded"
            ),
            {},
        )
        attempt = status.get("attempt")
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            platform=str((spec.get("app") or {}).get("platform", "")),
            phase=str(status.get("phase") or "Pending"),
            reason=str(succeeded.get("reason") or ""),
            attempt="" if attempt is None else str(attempt),
            build=str((status.get("build") or {}).get("id") or ""),
            created=str(meta.get("creationTimestamp", "")),
        )

    def change_key(self) -> tuple[str, ...]:
        """What a change line reports (age moves every second and is not a change)."""
        return (self.phase, self.reason, self.attempt, self.build)

    def cells(self, now: datetime.datetime, with_namespace: bool) -> list[str]:
        name = f"{self.namespace}/{self.name}" if with_namespace else self.name
        age = age_of(self.created, now) or ""
        return [
            name,
            self.platform,
            self.phase,
            self.reason or "-",
            self.attempt or "-",
            self.build or "-",
            age,
        ]


def render_table(rows: Sequence[BuildRow], now: datetime.datetime) -> str:
    with_namespace = len({row.namespace for row in rows}) > 1
    lines = [list(COLUMNS)] + [row.cells(now, with_namespace) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = [
        "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    if not rows:
        text.append("(no PublishingBuilds yet: kubectl apply -f examples/)")
    return "\n".join(text)


class LiveTable:
    """Redraws the whole table on a TTY; on other outputs prints one line per change."""

    def __init__(self, out: TextIO, header: str, *, interactive: bool) -> None:
        self._out = out
        self._header = header
        self._interactive = interactive
        self._seen: dict[tuple[str, str], tuple[str, ...]] = {}

    def notice(self, text: str) -> None:
        """A message that stays visible: under the header on a TTY, one line otherwise."""
        if self._interactive:
            self._header += f"\n  ! {text}"
        else:
            self._out.write(f"{text}\n")
            self._out.flush()

    def update(self, objects: Sequence[Mapping[str, Any]], now: datetime.datetime | None = None) -> None:
        now = now or datetime.datetime.now(datetime.UTC)
        rows = sorted((BuildRow.from_object(obj) for obj in objects), key=lambda r: (r.namespace, r.name))
        if self._interactive:
            self._out.write(f"{_CLEAR}{self._header}\n\n{render_table(rows, now)}\n")
            self._out.flush()
            return
        current = {(row.namespace, row.name): row for row in rows}
        stamp = now.strftime("%H:%M:%S")
        for key, row in current.items():
            if self._seen.get(key) != row.change_key():
                self._seen[key] = row.change_key()
                fields = [f"phase={row.phase}"]
                fields += [f"reason={row.reason}"] if row.reason else []
                fields += [f"attempt={row.attempt}"] if row.attempt else []
                fields += [f"build={row.build}"] if row.build else []
                self._out.write(f"{stamp} {row.namespace}/{row.name} ({row.platform}) {' '.join(fields)}\n")
        for key in [key for key in self._seen if key not in current]:
            del self._seen[key]
            self._out.write(f"{stamp} {key[0]}/{key[1]} deleted\n")
        self._out.flush()
