"""Operator settings (DESIGN.md section 5): environment variables `PUBLISHING_*` and matching flags.

Flags win over the environment, the environment wins over defaults. An invalid value raises
`SettingsError`, whose message is one line naming the setting and the value; the CLI prints it and
exits 2 instead of showing a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from publishing_operator.durations import format_duration, parse_duration
from publishing_operator.egress import ArchivePolicy, parse_allow_list

ENV_PREFIX = "PUBLISHING_"
EMPTY_LIST_SHOWN = {"namespaces": "all"}  # what an empty list setting means, in --help


@dataclass(frozen=True)
class Bounds:
    """The range a duration setting must lie in, and why (the why is part of the error line)."""

    floor: timedelta
    ceiling: timedelta | None
    why: str


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


# Floors a platform team can defend in front of Expo: never poll api.expo.dev faster than Expo's own
# CLI does for one build (eas-cli `waitForBuildEndAsync`, src/build/build.ts: a fixed 10 s; its
# submission wait, src/submit/utils/wait.ts: CHECK_INTERVAL_MS = 5 s), and the operator polls every
# build in flight, so these are per build. Ceilings where a longer value defeats the setting: a
# status more than 10 minutes old is no status (`kubectl wait`, timeouts and Events lag behind it).
BOUNDS: dict[str, Bounds] = {
    "poll_build": Bounds(_s(10), _s(600), "eas-cli itself polls a build every 10 s"),
    "poll_submission": Bounds(_s(5), _s(600), "eas-cli itself polls a submission every 5 s"),
    # eas-cli's own retries back off up to 4 s: a probe sooner than 5 s meets the same outage. The
    # open time doubles after a failed probe up to 5 minutes (circuit.py), so more cannot work.
    "circuit_open_for": Bounds(_s(5), _s(300), "the open circuit doubles its wait up to 5m"),
    # 0 is fine (steps are cancelled at once: as safe as SIGKILL, the status has everything). One
    # step is at most a few Expo calls of 30 s; a pod's terminationGracePeriodSeconds (30 s by
    # default) must cover the grace, and 10 minutes of draining is a stuck rollout.
    "shutdown_grace": Bounds(_s(0), _s(600), "longer is a stuck rollout"),
    # A sliding window under a second is a burst, not a rate; over a day it is a quota (Expo's plan
    # limits and MAX_IN_FLIGHT are the tools for that).
    "start_rate": Bounds(_s(1), _s(86400), "the start-rate window is a rate, not a burst or a quota"),
    # A shorter timeout turns a slow answer into an ambiguous one, which a create resolves with
    # look-ups (more calls, not fewer); a request that may hang for more than 5 minutes holds its
    # step, and the start claim it bounds (controller/claims.py), that long.
    "expo_timeout": Bounds(_s(5), _s(300), "it bounds how long a build request may take"),
    # Replica clocks further apart than 5 minutes break TLS and the API server's tokens already.
    "clock_skew": Bounds(_s(0), _s(300), "clocks further apart break TLS already"),
    # eas-cli waits up to 90 s (1 s x 90) for a build's background-job receipt: a shorter wait ends
    # attempts Unconfirmed that were about to appear; a build missing for an hour is not coming.
    "start_confirm_timeout": Bounds(_s(90), _s(3600), "eas-cli waits up to 90 s for a receipt"),
}
# Against a local, time-scaled Expo simulator (EXPO_SIMULATOR) every interval may be scaled down,
# yet a simulator polled in a busy loop measures nothing: 10 ms stays the floor.
SIMULATOR_FLOOR = timedelta(milliseconds=10)
# RFC 1123 DNS label: what Kubernetes accepts as a namespace name.
NAMESPACE_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SUBDOMAIN_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class StartRate(BaseModel):
    """At most `count` build starts per sliding `window`."""

    model_config = ConfigDict(frozen=True)

    count: int = Field(ge=1)
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> StartRate:
        count, sep, window = text.partition("/")
        if not sep or not count.strip().isdigit():
            raise ValueError("expected <count>/<duration>, e.g. 5/60s")
        parsed = parse_duration(window.strip())
        if parsed.total_seconds() <= 0:
            raise ValueError("the window must be longer than zero")
        return cls(count=int(count), window=parsed)

    def __str__(self) -> str:
        seconds = self.window.total_seconds()
        window = f"{int(seconds)}s" if seconds.is_integer() else format_duration(self.window)
        return f"{self.count}/{window}"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Field order matters: the bounds of the durations below read these two (ValidationInfo.data).
    expo_api_url: str = Field("https://api.expo.dev/graphql", description="Expo GraphQL endpoint")
    expo_simulator: bool = Field(
        False,
        description="EXPO_API_URL is a local, time-scaled Expo simulator: intervals may go below "
        "their floors (down to 10ms); refused unless the URL's host is a loopback address",
    )
    start_rate: StartRate = Field(
        default_factory=lambda: StartRate(count=5, window=timedelta(seconds=60)),
        description="global build-start rate limit, <count>/<window>",
    )
    max_in_flight: int = Field(0, ge=0, description="builds in flight at once, 0 = unlimited")
    poll_build: timedelta = Field(timedelta(seconds=30), description="poll interval while building")
    poll_submission: timedelta = Field(timedelta(seconds=15), description="poll interval while submitting")
    max_concurrent_steps: int = Field(
        64, ge=1, le=10_000, description="reconcile steps running at once (API calls in flight)"
    )
    history_succeeded: int = Field(100, ge=0, description="Succeeded resources kept per namespace")
    history_failed: int = Field(500, ge=0, description="Failed/Cancelled resources kept per namespace")
    namespaces: tuple[str, ...] = Field((), description="namespaces to watch, comma-separated; empty = all")
    metrics_port: int = Field(9090, ge=0, le=65535, description="Prometheus port, 0 = off")
    health_port: int = Field(8080, ge=0, le=65535, description="probes port (/healthz, /readyz), 0 = off")
    circuit_threshold: int = Field(5, ge=1, description="consecutive Expo API failures that open the circuit")
    circuit_open_for: timedelta = Field(
        timedelta(seconds=30), description="how long the open circuit waits before a probe"
    )
    expo_timeout: timedelta = Field(
        timedelta(seconds=30), description="timeout of each request to Expo's API"
    )
    clock_skew: timedelta = Field(
        timedelta(seconds=20),
        description="the largest clock difference between operator replicas that exactly-once start allows",
    )
    start_confirm_timeout: timedelta = Field(
        timedelta(minutes=10),
        description="how long a GitHub build whose create answer was lost may take to appear",
    )
    leader_election: bool = Field(
        True, description="one active replica: lead through a coordination.k8s.io Lease (false: always act)"
    )
    lease_namespace: str = Field("", description="namespace of the leader-election Lease; empty = the pod's")
    lease_name: str = Field("publishing-operator", description="name of the leader-election Lease")
    shutdown_grace: timedelta = Field(
        timedelta(seconds=25), description="grace for in-flight steps on SIGTERM"
    )
    log_format: Literal["json", "plain"] = Field("json", description="log line format")
    archive_allowed_hosts: tuple[str, ...] = Field(
        (),
        description="archive-URL hosts that may be internal: names, host:port, IPs or CIDRs, comma-separated",
    )
    archive_require_https: bool = Field(
        True, description="archive URLs must be https, except to hosts in ARCHIVE_ALLOWED_HOSTS"
    )
    archive_require_sha256: bool = Field(False, description="every archive source must give its sha256")

    @field_validator("expo_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("expected an http(s) URL")
        return value

    @field_validator("expo_simulator")
    @classmethod
    def _simulator_on_loopback(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("expo_api_url")
        if value and not (isinstance(url, str) and is_loopback_url(url)):
            raise ValueError(
                f"only for a local Expo simulator; PUBLISHING_EXPO_API_URL={url!r} is not on a loopback "
                "address (127.0.0.0/8, ::1, localhost)"
            )
        return value

    @field_validator("start_rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return StartRate.parse(value) if isinstance(value, str) else value

    @field_validator(
        "poll_build",
        "poll_submission",
        "shutdown_grace",
        "circuit_open_for",
        "expo_timeout",
        "clock_skew",
        "start_confirm_timeout",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator(*BOUNDS)
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        duration = value.window if isinstance(value, StartRate) else value
        check_bounds(info.field_name, duration, simulator=bool(info.data.get("expo_simulator")))
        return value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for name in value:
            if not isinstance(name, str) or not NAMESPACE_PATTERN.match(name):
                raise ValueError(
                    f"{name!r} is not a namespace name (an RFC 1123 label: at most 63 lower-case "
                    "letters, digits and '-', starting and ending with a letter or digit)"
                )
        return value

    @field_validator("lease_namespace")
    @classmethod
    def _lease_namespace(cls, value: str) -> str:
        if value and not NAMESPACE_PATTERN.match(value):
            raise ValueError(f"{value!r} is not a namespace name (an RFC 1123 label)")
        return value

    @field_validator("lease_name")
    @classmethod
    def _lease_name(cls, value: str) -> str:
        if not SUBDOMAIN_PATTERN.match(value) or len(value) > 253:
            raise ValueError(f"{value!r} is not an object name (an RFC 1123 subdomain)")
        return value

    @field_validator("archive_allowed_hosts", mode="before")
    @classmethod
    def _allowed_hosts(cls, value: Any) -> Any:
        if isinstance(value, str | list | tuple):
            return tuple(str(entry) for entry in parse_allow_list(value))  # canonical spelling
        return value

    @property
    def archive_policy(self) -> ArchivePolicy:
        return ArchivePolicy(
            allowed=parse_allow_list(self.archive_allowed_hosts),
            require_https=self.archive_require_https,
            require_sha256=self.archive_require_sha256,
        )


def check_bounds(field: str, value: timedelta, *, simulator: bool) -> None:
    """Raise ValueError (one line, with the reason) when `value` is outside the setting's bounds."""
    bounds = BOUNDS[field]
    what = "the window" if field == "start_rate" else "it"
    if simulator:
        if value < SIMULATOR_FLOOR and bounds.floor > timedelta(0):
            raise ValueError(
                f"{what} must be at least {format_duration(SIMULATOR_FLOOR)}, even against a simulator"
            )
        return
    if value < bounds.floor:
        raise ValueError(
            f"{what} must be at least {format_duration(bounds.floor)} ({bounds.why}); a local simulator "
            "may go lower with PUBLISHING_EXPO_SIMULATOR=true"
        )
    if bounds.ceiling is not None and value > bounds.ceiling:
        raise ValueError(f"{what} must be at most {format_duration(bounds.ceiling)} ({bounds.why})")


def is_loopback_url(url: str) -> bool:
    """The URL's host is a loopback address or `localhost` (by name: no DNS look-up)."""
    host = urlparse(url).hostname
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SettingsError(ValueError):
    """One line, naming the setting (as its environment variable or flag) and the bad value."""


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting; values stay strings and are validated by `load_settings`."""
    group = parser.add_argument_group("settings (flags override PUBLISHING_* environment variables)")
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, timedelta):
            shown = format_duration(default)
        elif isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, tuple):
            shown = ",".join(default) or EMPTY_LIST_SHOWN.get(name, "none")
        else:
            shown = str(default)
        group.add_argument(
            flag_name(name),
            dest=f"setting_{name}",
            metavar="VALUE",
            default=None,
            help=f"{field.description} (env {env_name(name)}, default {shown})",
        )


def load_settings(env: Mapping[str, str], flags: Mapping[str, str | None] | None = None) -> Settings:
    """Build settings from the environment and flags; raise SettingsError on the first bad value."""
    raw: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name in Settings.model_fields:
        key = env_name(name)
        if key in env and env[key] != "":
            raw[name], origin[name] = env[key], key
        flag_value = (flags or {}).get(name)
        if flag_value is not None:
            raw[name], origin[name] = flag_value, flag_name(name)
    try:
        return Settings(**raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "?"
        where = origin.get(name, env_name(name))
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {where}={raw.get(name)!r}: {reason}") from None


def unknown_settings(env: Mapping[str, str]) -> list[str]:
    """One warning per `PUBLISHING_*` variable that is no setting (a typo, most likely), naming the
    closest setting. Warned about, not refused: other tools may share the prefix."""
    known = [env_name(name) for name in Settings.model_fields]
    warnings = []
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX) or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"unknown setting {key} ignored{hint}")
    return warnings


def flags_from_args(args: argparse.Namespace) -> dict[str, str | None]:
    return {name: getattr(args, f"setting_{name}", None) for name in Settings.model_fields}
