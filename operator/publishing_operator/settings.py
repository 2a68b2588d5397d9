"""Operator settings (DESIGN.md section 5): environment variables `PUBLISHING_*` and matching flags.

Flags win over the environment, the environment wins over defaults. An invalid value raises
`SettingsError`, whose message is one line naming the setting and the value; the CLI prints it and
exits 2 instead of showing a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from publishing_operator.durations import format_duration, parse_duration
from publishing_operator.egress import ArchivePolicy, parse_allow_list

ENV_PREFIX = "PUBLISHING_"
EMPTY_LIST_SHOWN = {"namespaces": "all"}  # what an empty list setting means, in --help


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

    expo_api_url: str = Field("https://api.expo.dev/graphql", description="Expo GraphQL endpoint")
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
    health_port: int = Field(8080, ge=0, le=65535, description="liveness port, 0 = off")
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

    @field_validator(
        "poll_build", "poll_submission", "circuit_open_for", "expo_timeout", "start_confirm_timeout"
    )
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() <= 0:
            raise ValueError("must be longer than zero")
        return value

    @field_validator("namespaces", mode="before")
    @classmethod
    def _namespaces(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
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


def flags_from_args(args: argparse.Namespace) -> dict[str, str | None]:
    return {name: getattr(args, f"setting_{name}", None) for name in Settings.model_fields}
