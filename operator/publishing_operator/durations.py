"""Go-style durations ("90s", "1h30m", "250ms") as used in the CRD and in settings.

Parsed the way Go's time.ParseDuration parses them (what the CRD's CEL `duration()` calls in
kube-apiserver): whole nanoseconds, fractions below a nanosecond dropped, and anything beyond
int64 nanoseconds (about 292 years) refused. So the models and the API server agree on every
value, and no duration can overflow a date computed from it.
"""

from __future__ import annotations

import re
from datetime import timedelta

# The same grammar the CRD enforces with a pattern (Flux-style): one or more <number><unit>.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ms|s|m|h)")
_UNIT_NANOSECONDS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_WHOLE = re.compile(DURATION_PATTERN)
MAX_NANOSECONDS = 2**63 - 1  # Go's time.Duration


def duration_nanoseconds(text: str) -> int:
    """The duration in whole nanoseconds, as Go's time.ParseDuration computes it.

    Raises ValueError (naming the text) when it is malformed or longer than Go can hold."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30s, 5m, 1h30m")
    too_long = ValueError(f"invalid duration {text[:40]!r}: longer than about 292 years")
    total = 0
    for whole, fraction, unit in _PART.findall(text):
        unit_ns = _UNIT_NANOSECONDS[unit]
        value = int(whole)
        if value > 2**63 // unit_ns:
            raise too_long
        value *= unit_ns
        if fraction:
            digits, scale = _leading_fraction(fraction)
            value += int(float(digits) * (float(unit_ns) / scale))  # Go computes this in float64
        total += value
        if total > MAX_NANOSECONDS:
            raise too_long
    return total


def _leading_fraction(fraction: str) -> tuple[int, float]:
    """Go's leadingFraction: the digits as an integer, and 10**(digits used), stopping before overflow."""
    value, scale = 0, 1.0
    for char in fraction:
        if value > MAX_NANOSECONDS // 10:
            break
        following = value * 10 + int(char)
        if following > 2**63:
            break
        value, scale = following, scale * 10
    return value, scale


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raise ValueError with the offending text when it is malformed or too long."""
    return timedelta(microseconds=duration_nanoseconds(text) / 1000)


def format_duration(value: timedelta) -> str:
    """Render a timedelta in the shortest Go-style form ("1h30m", "2s", "250ms")."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds:
        out += f"{seconds}s"
    if millis:
        out += f"{millis}ms"
    return out
