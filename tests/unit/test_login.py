"""Logging in (adapters/login.py): kubeconfigs as users have them, exec credential plugins run as
kubectl runs them (a real plugin script), and the start-up check that refuses what cannot work and
retries what may pass."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from publishing_operator.adapters.kube import KubeApi
from publishing_operator.adapters.login import KubeLogin, LoginError, check_access
from tests.fixtures.exec_plugin import exec_kubeconfig, plugin_runs, write_plugin

SERVER = "https://203.0.113.7:6443"
V1, V1BETA1 = "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    return write_plugin(tmp_path)


def config_with_plugin(tmp_path: Path, **kwargs: object) -> tuple[Path, Path]:
    log = tmp_path / "plugin.log"
    env = {"PLUGIN_LOG": str(log), **kwargs.pop("env", {})}  # type: ignore[dict-item]
    command = str(kwargs.pop("command", "./exec-plugin"))
    path = exec_kubeconfig(tmp_path / "config", SERVER, command=command, env=env, **kwargs)  # type: ignore[arg-type]
    return path, log


def test_an_exec_plugin_is_run_as_kubectl_runs_it(tmp_path: Path, plugin: Path) -> None:
    config, log = config_with_plugin(tmp_path, cluster={"certificate-authority-data": "Q0E="})
    info = KubeLogin(str(config)).current()
    assert info.token == "exec-token-1"
    assert info.server == SERVER
    assert info.default_namespace == "default"
    assert info.expiration is not None and info.expiration > datetime.now(UTC) + timedelta(minutes=50)
    (run,) = plugin_runs(log)
    # The command was found relative to the kubeconfig, with its args and env; told it is not
    # interactive (no terminal, no stdin), and given the cluster (provideClusterInfo).
    assert run["args"] == ["token", "--cluster", "emulated"]
    assert run["stdin_is_tty"] is False
    assert run["exec_info"]["apiVersion"] == V1 and run["exec_info"]["kind"] == "ExecCredential"
    assert run["exec_info"]["spec"]["interactive"] is False
    assert run["exec_info"]["spec"]["cluster"] == {"server": SERVER, "certificate-authority-data": "Q0E="}


def test_v1beta1_plugins_and_plugins_on_path(
    tmp_path: Path, plugin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    config, _ = config_with_plugin(
        tmp_path, command="exec-plugin", api_version=V1BETA1, env={"PLUGIN_API_VERSION": V1BETA1}
    )
    assert KubeLogin(str(config)).current().token == "exec-token-1"


def test_a_client_certificate_from_the_plugin(tmp_path: Path, plugin: Path) -> None:
    cert, key = (
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "-----BEGIN EC PRIVATE KEY-----\nk\n-----END EC PRIVATE KEY-----\n",
    )
    config, _ = config_with_plugin(
        tmp_path, env={"PLUGIN_MODE": "cert", "PLUGIN_CERT": cert, "PLUGIN_KEY": key}
    )
    info = KubeLogin(str(config)).current()
    assert (info.token, info.certificate_data, info.private_key_data) == (None, cert, key)


def test_the_credential_is_reused_until_it_expires_then_the_plugin_runs_again(
    tmp_path: Path, plugin: Path
) -> None:
    config, log = config_with_plugin(tmp_path, env={"PLUGIN_LIFETIME": "600"})
    now = [datetime.now(UTC)]
    login = KubeLogin(str(config), clock=lambda: now[0])
    assert login.current().token == "exec-token-1"
    assert login.current().token == "exec-token-1"
    assert len(plugin_runs(log)) == 1
    now[0] += timedelta(minutes=11)  # past expirationTimestamp
    assert login.current().token == "exec-token-2"
    # A refused credential (401) is replaced at once, whatever its expiry says.
    assert login.fresh().token == "exec-token-3"
    assert len(plugin_runs(log)) == 3


def test_kopf_gets_the_checked_credential_first_and_a_fresh_one_when_it_asks_again(
    tmp_path: Path, plugin: Path
) -> None:
    config, _ = config_with_plugin(tmp_path)
    login = KubeLogin(str(config))
    assert login.current().token == "exec-token-1"  # the start-up check
    assert login.for_kopf().token == "exec-token-1"  # kopf's initial login: no second plugin run
    assert login.for_kopf().token == "exec-token-2"  # kopf asks again: expired or refused


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"env": {"PLUGIN_MODE": "fail"}}, "exited with 1: error: token request failed (exit 1)"),
        ({"env": {"PLUGIN_MODE": "garbage"}}, "did not print an ExecCredential (not JSON)"),
        ({"env": {"PLUGIN_MODE": "expired"}}, "returned a credential that has already expired"),
        ({"env": {"PLUGIN_API_VERSION": V1BETA1}}, "answered 'client.authentication.k8s.io/v1beta1', not"),
        ({"api_version": "client.authentication.k8s.io/v1alpha1"}, "is not supported"),
        ({"extra": {"interactiveMode": "Always"}}, "an operator has no terminal"),
        (
            {
                "command": "no-such-plugin",
                "extra": {"installHint": "Install it with\n  brew install no-such-plugin"},
            },
            "'no-such-plugin' is not on $PATH; Install it with brew install no-such-plugin",
        ),
    ],
)
def test_a_plugin_that_cannot_log_in_is_named_in_one_line(
    tmp_path: Path, plugin: Path, kwargs: dict[str, object], expected: str
) -> None:
    config, _ = config_with_plugin(tmp_path, **kwargs)
    with pytest.raises(LoginError) as info:
        KubeLogin(str(config)).current()
    message = str(info.value)
    assert expected in message, message
    assert str(config) in message and "\n" not in message and "exec-token" not in message


def test_kubeconfigs_that_cannot_work_are_named(tmp_path: Path) -> None:
    with pytest.raises(LoginError, match=r"^kubeconfig /nonexistent/config does not exist$"):
        KubeLogin("/nonexistent/config").current()
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": []}))
    with pytest.raises(LoginError, match="sets no current-context"):
        KubeLogin(str(config)).current()
    config.write_text(yaml.safe_dump({"current-context": "gone", "contexts": []}))
    with pytest.raises(LoginError, match="context 'gone' is not defined"):
        KubeLogin(str(config)).current()


def test_static_kubeconfigs_still_work_and_file_paths_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("static-token\n")
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": SERVER, "certificate-authority": "ca.crt"}}],
                "users": [{"name": "u", "user": {"tokenFile": "token"}}],
            }
        )
    )
    info = KubeLogin(str(config)).current()
    assert info.token == "static-token"
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert info.expiration is None


# -- the start-up check -----------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def static_login(tmp_path: Path) -> KubeLogin:
    config = tmp_path / "config"
    config.write_text(
        yaml.safe_dump(
            {
                "current-context": "c",
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
                "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "static-token"}}],
            }
        )
    )
    return KubeLogin(str(config))


async def test_refused_credentials_fail_at_once(tmp_path: Path) -> None:
    time = FakeTime()
    transport = httpx.MockTransport(lambda _: httpx.Response(401, json={"kind": "Status", "code": 401}))
    with pytest.raises(LoginError) as info:
        await check_access(
            static_login(tmp_path), (), transport=transport, sleep=time.sleep, clock=time.clock
        )
    assert "refused the credentials of kubeconfig" in str(info.value) and "401" in str(info.value)
    assert "static-token" not in str(info.value)
    assert time.slept == []


async def test_an_api_not_there_yet_is_retried_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    time = FakeTime()
    answers = iter([httpx.ConnectError("refused"), 503, 404, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer static-token"
        assert request.url.path == "/apis/publishing.dev/v1alpha1/namespaces/apps/publishingbuilds"
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer, json={"kind": "PublishingBuildList", "items": []})

    caplog.set_level(logging.INFO)
    await check_access(
        static_login(tmp_path),
        ("apps",),
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        clock=time.clock,
    )
    assert time.slept == [1.0, 2.0, 4.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "cannot reach the Kubernetes API at http://127.0.0.1:1: ConnectError; retrying in 1s" in warnings[0]
    )
    assert "answered HTTP 503" in warnings[1]
    assert "the PublishingBuild CRD is not installed" in warnings[2]
    assert any("answers now" in r.getMessage() for r in caplog.records)


async def test_the_retry_is_bounded(tmp_path: Path) -> None:
    time = FakeTime()
    transport = httpx.MockTransport(lambda _: httpx.Response(404))
    with pytest.raises(LoginError, match=r"CRD is not installed .*; gave up after 60s$"):
        await check_access(
            static_login(tmp_path), (), transport=transport, sleep=time.sleep, clock=time.clock
        )
    assert sum(time.slept) == pytest.approx(60.0)


# -- the operator's own client logs in again through the same login ---------------------------------


async def test_the_operators_client_logs_in_again_when_its_credential_expires(
    tmp_path: Path, plugin: Path
) -> None:
    config, log = config_with_plugin(tmp_path, env={"PLUGIN_LIFETIME": "600"})
    now = [datetime.now(UTC)]
    login = KubeLogin(str(config), clock=lambda: now[0])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"kind": "PublishingBuildList", "items": []})

    kube = KubeApi.from_connection_info(
        login.current(), relogin=login.fresh, transport=httpx.MockTransport(handler)
    )
    await kube.list_publishing_builds()
    expired = login.current().expiration
    assert expired is not None
    # The plugin's credential is past its expirationTimestamp: no request goes out with it.
    kube._info = dataclasses.replace(login.current(), expiration=datetime.now(UTC) - timedelta(seconds=1))
    await kube.list_publishing_builds()
    await kube.aclose()
    assert seen == ["Bearer exec-token-1", "Bearer exec-token-2"]
    assert len(plugin_runs(log)) == 2
