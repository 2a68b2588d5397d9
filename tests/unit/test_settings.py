import subprocess
import sys
from datetime import timedelta

import pytest

from publishing_operator.egress import ArchivePolicy, parse_allow_list
from publishing_operator.settings import Settings, SettingsError, load_settings, unknown_settings


def test_defaults_match_the_design() -> None:
    s = load_settings({})
    assert s == Settings()
    assert s.expo_api_url == "https://api.expo.dev/graphql"
    assert (s.start_rate.count, s.start_rate.window) == (5, timedelta(seconds=60))
    assert s.max_in_flight == 0
    assert s.poll_build == timedelta(seconds=30)
    assert s.poll_submission == timedelta(seconds=15)
    assert (s.history_succeeded, s.history_failed) == (100, 500)
    assert s.namespaces == ()
    assert (s.metrics_port, s.health_port) == (9090, 8080)
    assert s.shutdown_grace == timedelta(seconds=25)
    assert s.log_format == "json"
    assert s.archive_allowed_hosts == ()
    assert (s.archive_require_https, s.archive_require_sha256) == (True, False)
    assert s.archive_policy == ArchivePolicy()  # the secure defaults


def test_environment_and_flags_with_flags_winning() -> None:
    env = {"PUBLISHING_START_RATE": "2/10s", "PUBLISHING_NAMESPACES": "a, b", "PUBLISHING_POLL_BUILD": "1m"}
    s = load_settings(env, {"poll_build": "45s"})
    assert (s.start_rate.count, s.start_rate.window) == (2, timedelta(seconds=10))
    assert s.namespaces == ("a", "b")
    assert s.poll_build == timedelta(seconds=45)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PUBLISHING_START_RATE": "five"}, "invalid setting PUBLISHING_START_RATE='five'"),
        ({"PUBLISHING_START_RATE": "5/0s"}, "invalid setting PUBLISHING_START_RATE='5/0s'"),
        ({"PUBLISHING_MAX_IN_FLIGHT": "-1"}, "invalid setting PUBLISHING_MAX_IN_FLIGHT='-1'"),
        ({"PUBLISHING_POLL_BUILD": "soon"}, "invalid setting PUBLISHING_POLL_BUILD='soon'"),
        ({"PUBLISHING_METRICS_PORT": "70000"}, "invalid setting PUBLISHING_METRICS_PORT='70000'"),
        ({"PUBLISHING_LOG_FORMAT": "xml"}, "invalid setting PUBLISHING_LOG_FORMAT='xml'"),
        ({"PUBLISHING_EXPO_API_URL": "ftp://x"}, "invalid setting PUBLISHING_EXPO_API_URL='ftp://x'"),
        (
            {"PUBLISHING_ARCHIVE_ALLOWED_HOSTS": "a.corp,127.1"},
            "invalid setting PUBLISHING_ARCHIVE_ALLOWED_HOSTS='a.corp,127.1': '127.1' is not a host name",
        ),
        (
            {"PUBLISHING_ARCHIVE_ALLOWED_HOSTS": "10.0.0.0/8:443"},
            "invalid setting PUBLISHING_ARCHIVE_ALLOWED_HOSTS='10.0.0.0/8:443': '10.0.0.0/8:443' is not a",
        ),
        (
            {"PUBLISHING_ARCHIVE_REQUIRE_HTTPS": "maybe"},
            "invalid setting PUBLISHING_ARCHIVE_REQUIRE_HTTPS='maybe'",
        ),
        ({"PUBLISHING_ARCHIVE_REQUIRE_SHA256": "2"}, "invalid setting PUBLISHING_ARCHIVE_REQUIRE_SHA256='2'"),
    ],
)
def test_invalid_values_name_the_setting_and_value(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_archive_policy_settings() -> None:
    env = {
        "PUBLISHING_ARCHIVE_ALLOWED_HOSTS": " Artifacts.Corp. , 127.0.0.1:8080,10.1.0.0/16 ",
        "PUBLISHING_ARCHIVE_REQUIRE_HTTPS": "false",
        "PUBLISHING_ARCHIVE_REQUIRE_SHA256": "true",
    }
    s = load_settings(env, {"archive_require_https": "yes"})
    assert s.archive_allowed_hosts == ("artifacts.corp", "127.0.0.1:8080", "10.1.0.0/16")
    policy = s.archive_policy
    assert policy.allowed == parse_allow_list("artifacts.corp,127.0.0.1:8080,10.1.0.0/16")
    assert (policy.require_https, policy.require_sha256) == (True, True)


def test_invalid_flag_is_named_as_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting --shutdown-grace='x'"):
        load_settings({}, {"shutdown_grace": "x"})


def test_cli_prints_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "publishing_operator", "run", "--start-rate", "lots"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--start-rate='lots'" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_version_and_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "publishing_operator", "version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("publishing-operator ")
    helped = subprocess.run(
        [sys.executable, "-m", "publishing_operator", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("run", "sandbox", "expo-simulator", "version"):
        assert command in helped.stdout


# -- floors and ceilings: settings that cannot work are refused at start --------------------------------

SIMULATOR_URL = "http://127.0.0.1:8787/graphql"


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("POLL_BUILD", "1ms", "at least 10s"),
        ("POLL_BUILD", "9s", "at least 10s"),
        ("POLL_BUILD", "2h", "at most 10m"),
        ("POLL_SUBMISSION", "1s", "at least 5s"),
        ("POLL_SUBMISSION", "11m", "at most 10m"),
        ("CIRCUIT_OPEN_FOR", "100ms", "at least 5s"),
        ("CIRCUIT_OPEN_FOR", "1h", "at most 5m"),
        ("SHUTDOWN_GRACE", "1h", "at most 10m"),
        ("START_RATE", "5/100ms", "at least 1s"),
        ("START_RATE", "5/48h", "at most 24h"),
        ("EXPO_TIMEOUT", "1s", "at least 5s"),
        ("EXPO_TIMEOUT", "10m", "at most 5m"),
        ("CLOCK_SKEW", "10m", "at most 5m"),
        ("START_CONFIRM_TIMEOUT", "30s", "at least 1m30s"),
        ("START_CONFIRM_TIMEOUT", "2h", "at most 1h"),
    ],
)
def test_intervals_below_their_floor_or_above_their_ceiling_are_refused(
    name: str, value: str, why: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({f"PUBLISHING_{name}": value})
    message = str(info.value)
    assert message.startswith(f"invalid setting PUBLISHING_{name}={value!r}: "), message
    assert why in message
    assert "\n" not in message


def test_floors_and_ceilings_themselves_are_accepted() -> None:
    s = load_settings(
        {
            "PUBLISHING_POLL_BUILD": "10s",
            "PUBLISHING_POLL_SUBMISSION": "10m",
            "PUBLISHING_CIRCUIT_OPEN_FOR": "5s",
            "PUBLISHING_SHUTDOWN_GRACE": "0s",
            "PUBLISHING_START_RATE": "1/1s",
        }
    )
    assert s.poll_build == timedelta(seconds=10)
    assert s.shutdown_grace == timedelta(0)


def test_the_simulator_setting_lifts_the_floors_against_a_loopback_simulator() -> None:
    for url in (SIMULATOR_URL, "http://localhost:9/graphql", "http://[::1]:9/graphql"):
        s = load_settings(
            {
                "PUBLISHING_EXPO_SIMULATOR": "true",
                "PUBLISHING_EXPO_API_URL": url,
                "PUBLISHING_POLL_BUILD": "500ms",
                "PUBLISHING_POLL_SUBMISSION": "75ms",
                "PUBLISHING_START_RATE": "5/300ms",
                "PUBLISHING_CIRCUIT_OPEN_FOR": "200ms",
            }
        )
        assert s.poll_build == timedelta(milliseconds=500)
    # Still a floor: a simulator polled in a busy loop measures nothing.
    with pytest.raises(SettingsError, match=r"^invalid setting PUBLISHING_POLL_BUILD='1ms': .*at least 10ms"):
        load_settings(
            {
                "PUBLISHING_EXPO_SIMULATOR": "true",
                "PUBLISHING_EXPO_API_URL": SIMULATOR_URL,
                "PUBLISHING_POLL_BUILD": "1ms",
            }
        )


@pytest.mark.parametrize(
    "url", ["https://api.expo.dev/graphql", "http://10.0.0.8/graphql", "http://localhost.evil.dev/graphql"]
)
def test_the_simulator_setting_is_refused_unless_expo_is_on_loopback(url: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"PUBLISHING_EXPO_SIMULATOR": "true", "PUBLISHING_EXPO_API_URL": url})
    assert str(info.value).startswith("invalid setting PUBLISHING_EXPO_SIMULATOR='true': ")
    assert "loopback" in str(info.value)


@pytest.mark.parametrize("value", ["Bad_NS", "a,-b", "ns.with.dots", "x" * 64, "UPPER"])
def test_namespaces_must_be_rfc1123_labels(value: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"PUBLISHING_NAMESPACES": value})
    assert str(info.value).startswith(f"invalid setting PUBLISHING_NAMESPACES={value!r}: ")
    assert "RFC 1123" in str(info.value)


def test_lease_names_must_be_kubernetes_names() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting PUBLISHING_LEASE_NAMESPACE='Ops_NS': "):
        load_settings({"PUBLISHING_LEASE_NAMESPACE": "Ops_NS"})
    with pytest.raises(SettingsError, match=r"^invalid setting PUBLISHING_LEASE_NAME='my lease': "):
        load_settings({"PUBLISHING_LEASE_NAME": "my lease"})
    assert load_settings({"PUBLISHING_LEASE_NAME": "publishing-operator.canary"}).lease_name


def test_misspelled_settings_are_named_with_the_closest_known_one() -> None:
    env = {
        "PUBLISHING_STARTRATE": "5/60s",
        "PUBLISHING_POLL_BULD": "30s",
        "PUBLISHING_SOMETHING_ELSE": "x",
        "PUBLISHING_START_RATE": "5/60s",
        "OTHER": "1",
    }
    assert unknown_settings(env) == [
        "unknown setting PUBLISHING_POLL_BULD ignored; did you mean PUBLISHING_POLL_BUILD?",
        "unknown setting PUBLISHING_SOMETHING_ELSE ignored",
        "unknown setting PUBLISHING_STARTRATE ignored; did you mean PUBLISHING_START_RATE?",
    ]
    load_settings(env)  # a warning, not a refusal: other tools may use the prefix
