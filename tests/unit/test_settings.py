import subprocess
import sys
from datetime import timedelta

import pytest

from publishing_operator.egress import ArchivePolicy, parse_allow_list
from publishing_operator.settings import Settings, SettingsError, load_settings


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
