"""Archive flow: download from a local HTTP server, check, upload with the right MD5, build from it."""

from __future__ import annotations

import base64
import hashlib
import random

import pytest

from publishing_operator.api import Platform, Workflow
from publishing_operator.expo.client import ExpoClient
from publishing_operator.expo.errors import ExpoTransientError, ExpoUserError
from publishing_testkit.expo_simulator.server import SimulatorHandle
from publishing_testkit.expo_simulator.state import CallFault, FaultsRequest
from tests.fixtures.expo import EXPO_TOKEN, ArchiveServer, RecordedSleeps, make_tarball

APP = "5f0e3c2a-1111-4a55-8f0e-2d7c1b6a4e90"
TARBALL = make_tarball(
    {"package.json": b'{"name": "app"}', "app.json": b"{}", "src/index.js": random.Random(4).randbytes(5000)}
)


async def test_archive_is_downloaded_checked_uploaded_and_built(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, archive_server: ArchiveServer
) -> None:
    url = archive_server.serve("releases/app.tar.gz", TARBALL)
    sha = hashlib.sha256(TARBALL).hexdigest()
    bucket_key = await expo_client.upload_archive(url=url, sha256=sha)

    upload = expo_simulator.state.uploads[bucket_key]
    assert upload.size == len(TARBALL)
    assert upload.md5_base64 == base64.b64encode(hashlib.md5(TARBALL).digest()).decode()
    assert upload.sha256 == sha
    # The Expo token never travels to the archive host.
    assert all("authorization" not in {k.lower() for k in headers} for headers in archive_server.requests)
    assert all(EXPO_TOKEN not in str(headers) for headers in archive_server.requests)

    build = await expo_client.create_archive_build(
        app_id=APP,
        platform=Platform.ANDROID,
        profile="production",
        bucket_key=bucket_key,
        project_root_directory=".",
        workflow=Workflow.GENERIC,
        build_version=None,
        signing=None,
        request_key="uid.1",
    )
    (seen,) = expo_simulator.state.describe_builds()
    assert seen["id"] == build.id
    assert seen["source"] == {
        "type": "GCS",
        "bucketKey": bucket_key,
        "size": len(TARBALL),
        "md5": upload.md5_base64,
        "sha256": sha,
    }


async def test_sha256_prefix_and_case_are_accepted(
    expo_client: ExpoClient, archive_server: ArchiveServer
) -> None:
    url = archive_server.serve("a.tgz", TARBALL)
    assert await expo_client.upload_archive(
        url=url, sha256="sha256:" + hashlib.sha256(TARBALL).hexdigest().upper()
    )


async def test_wrong_sha256_fails_clearly_before_uploading(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, archive_server: ArchiveServer
) -> None:
    url = archive_server.serve("app.tar.gz", TARBALL)
    with pytest.raises(ExpoUserError) as caught:
        await expo_client.upload_archive(url=url, sha256="0" * 64)
    message = str(caught.value)
    assert hashlib.sha256(TARBALL).hexdigest() in message
    assert "spec.source.archive.sha256" in message
    assert expo_simulator.state.calls_of("createUploadSession") == []


async def test_oversized_archive_fails_clearly(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, archive_server: ArchiveServer
) -> None:
    url = archive_server.serve("big.tar.gz", TARBALL)
    with pytest.raises(ExpoUserError) as caught:
        await expo_client.upload_archive(url=url, sha256=None, max_bytes=1000)
    assert "over the limit of 1000 bytes" in str(caught.value)
    assert expo_simulator.state.uploads == {}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"plain text, not a tarball", "not gzip-compressed"),
        (make_tarball({"a.txt": b"a", "b/c.txt": b"c"}, top=None), "exactly one top-level directory"),
    ],
)
async def test_malformed_archive_fails_clearly(
    expo_client: ExpoClient, archive_server: ArchiveServer, data: bytes, fragment: str
) -> None:
    url = archive_server.serve("x.tar.gz", data)
    with pytest.raises(ExpoUserError, match=fragment):
        await expo_client.upload_archive(url=url, sha256=None)


async def test_missing_archive_is_a_user_error(
    expo_client: ExpoClient, archive_server: ArchiveServer
) -> None:
    with pytest.raises(ExpoUserError) as caught:
        await expo_client.upload_archive(url=f"{archive_server.url}/nope.tar.gz", sha256=None)
    assert caught.value.http_status == 404
    assert "spec.source.archive.url" in str(caught.value)


async def test_failed_upload_put_is_retried_with_a_new_session(
    expo_client: ExpoClient,
    expo_simulator: SimulatorHandle,
    archive_server: ArchiveServer,
    expo_sleeps: RecordedSleeps,
) -> None:
    expo_simulator.state.add_faults(FaultsRequest(calls=[CallFault(operation="upload", http_status=503)]))
    url = archive_server.serve("app.tar.gz", TARBALL)
    bucket_key = await expo_client.upload_archive(url=url, sha256=None)
    assert len(expo_simulator.state.calls_of("createUploadSession")) == 2
    assert expo_simulator.state.uploads[bucket_key].size == len(TARBALL)
    assert len(expo_sleeps) == 1


async def test_upload_keeps_failing(
    expo_client: ExpoClient, expo_simulator: SimulatorHandle, archive_server: ArchiveServer
) -> None:
    expo_simulator.state.add_faults(
        FaultsRequest(calls=[CallFault(operation="upload", count=5, drop="before")])
    )
    url = archive_server.serve("app.tar.gz", TARBALL)
    with pytest.raises(ExpoTransientError, match="uploading the project archive failed"):
        await expo_client.upload_archive(url=url, sha256=None)
