"""Project archives: download a tarball (streaming, size-capped, checked) and PUT it to a signed URL.

Expo's worker unpacks the project with `tar -zxf --strip-components 1` (API.md 2.4), so the archive
must be a gzip tarball with one top-level directory; that is checked here, before money is spent.
The Expo token is never sent to either host: the archive host is the user's, and the upload URL
is pre-signed. The archive host is the tenant's choice, so the download goes through the egress
policy (`egress.py`, `guarded_http.py`): it must not reach inside the cluster.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import tarfile
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from publishing_operator.api import SOURCE_NOT_ALLOWED_CODE
from publishing_operator.egress import ArchivePolicy, DestinationRefused
from publishing_operator.expo.errors import ErrorKind, ExpoError, make_error
from publishing_operator.expo.models import UploadSession

log = logging.getLogger("publishing_operator.expo.archive")

CHUNK = 1024 * 1024
DOWNLOAD = "downloadArchive"
UPLOAD = "uploadArchive"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class DownloadedArchive:
    """A downloaded archive in a temporary file (deleted by `close()`)."""

    path: Path
    size: int
    sha256: str
    md5_base64: str

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _user_error(message: str, operation: str = DOWNLOAD) -> ExpoError:
    return make_error(ErrorKind.USER, message, operation=operation)


async def download_archive(
    http: httpx.AsyncClient,
    url: str,
    *,
    policy: ArchivePolicy,
    sha256: str | None,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109
) -> DownloadedArchive:
    """Stream `url` to a temporary file, enforcing `policy`, `max_bytes` and `sha256` (hex) if given.

    `http` must be a `guarded_http.guarded_client(policy)`: it checks every connection's addresses;
    this function checks every hop's URL and follows redirects itself (at most MAX_REDIRECTS).
    """
    if policy.require_sha256 and not sha256:
        raise _refused(policy.sha256_required_message)
    expected = sha256.lower().removeprefix("sha256:") if sha256 else None
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    size = 0
    handle = tempfile.NamedTemporaryFile(prefix="publishing-archive-", suffix=".tar.gz", delete=False)  # noqa: SIM115
    path = Path(handle.name)
    try:
        try:
            target = httpx.URL(url)
            for _hop in range(MAX_REDIRECTS + 1):
                policy.check_url(target)
                async with http.stream(
                    "GET", target, timeout=timeout, headers={"accept-encoding": "identity"}
                ) as response:
                    if response.is_redirect:
                        target = _redirect_target(response)
                        continue
                    _check_status(response.status_code)
                    announced = response.headers.get("content-length")
                    if announced is not None and announced.isdigit() and int(announced) > max_bytes:
                        raise _user_error(_too_big(int(announced), max_bytes))
                    async for chunk in response.aiter_bytes(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise _user_error(_too_big(size, max_bytes, at_least=True))
                        sha.update(chunk)
                        md5.update(chunk)
                        await asyncio.to_thread(handle.write, chunk)
                    break
            else:
                raise _user_error(
                    f"the project archive URL redirects more than {MAX_REDIRECTS} times; "
                    "check spec.source.archive.url"
                )
        except DestinationRefused as exc:
            # The detail (host, address) is for the admin's log; the user gets one text per policy,
            # whatever the destination would have answered, so the status is no oracle.
            log.warning("archive download refused by the archive source policy: %s", exc.detail)
            raise _refused(policy.refusal_message) from None
        except httpx.TransportError as exc:
            raise make_error(
                ErrorKind.TRANSIENT,
                f"downloading the project archive failed: {type(exc).__name__}",
                operation=DOWNLOAD,
            ) from None
        except httpx.InvalidURL:
            # e.g. "0177.0.0.1" (octal), "256.1.1.1", a bad IPv6 literal: ambiguous, so refused like the
            # rest. httpx's text may quote the URL (and a password in it): it is not logged.
            log.warning("archive download refused by the archive source policy: the URL does not parse")
            raise _refused(policy.refusal_message) from None
        finally:
            handle.close()
        digest = sha.hexdigest()
        if expected is not None and digest != expected:
            raise _user_error(
                f"the project archive's sha256 is {digest} but spec.source.archive.sha256 says {expected}; "
                "fix the checksum or the URL"
            )
        await asyncio.to_thread(_check_tarball, path)
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 -- a local unlink, on the error path only
        raise
    return DownloadedArchive(
        path=path, size=size, sha256=digest, md5_base64=base64.b64encode(md5.digest()).decode()
    )


def _redirect_target(response: httpx.Response) -> httpx.URL:
    try:
        return response.url.join(response.headers["location"])
    except httpx.InvalidURL:
        raise _user_error(
            "the project archive's host answered with an invalid redirect; check spec.source.archive.url"
        ) from None


def _check_status(status: int) -> None:
    if status < 300:
        return
    # The user's host: 401/403/404 are the URL's fault, not the Expo token's.
    transient = status >= 500 or status in (408, 429)
    raise make_error(
        ErrorKind.TRANSIENT if transient else ErrorKind.USER,
        f"downloading the project archive failed with HTTP {status}; check spec.source.archive.url",
        operation=DOWNLOAD,
        http_status=status,
    )


def _refused(message: str) -> ExpoError:
    return make_error(ErrorKind.USER, message, operation=DOWNLOAD, error_code=SOURCE_NOT_ALLOWED_CODE)


def _too_big(size: int, max_bytes: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"the project archive is {more}{size} bytes, over the limit of {max_bytes} bytes; "
        "make the archive smaller (leave out node_modules and build outputs)"
    )


def _check_tarball(path: Path) -> None:
    """The worker needs a gzip tar with exactly one top-level directory."""
    with path.open("rb") as raw:
        if raw.read(2) != b"\x1f\x8b":
            raise _user_error("the project archive is not gzip-compressed; it must be a .tar.gz")
    tops: set[str] = set()
    try:
        with tarfile.open(path, mode="r|gz") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if name:
                    tops.add(name.split("/", 1)[0])
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _user_error(f"the project archive is not a valid .tar.gz ({exc})") from None
    if len(tops) != 1:
        raise _user_error(
            f"the project archive must contain exactly one top-level directory, found {len(tops)}: "
            f"{', '.join(sorted(tops)[:5]) or 'none'} (Expo unpacks it with --strip-components 1)"
        )


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while True:
            chunk = await asyncio.to_thread(_read, handle)
            if not chunk:
                return
            yield chunk


def _read(handle: IO[bytes]) -> bytes:
    return handle.read(CHUNK)


async def put_archive(
    http: httpx.AsyncClient,
    session: UploadSession,
    archive: DownloadedArchive,
    *,
    timeout: float,  # noqa: ASYNC109
) -> None:
    """PUT the archive to the signed URL with the session's headers plus Content-Length and Content-MD5."""
    headers = dict(session.headers)
    headers["Content-Length"] = str(archive.size)
    headers["Content-MD5"] = archive.md5_base64
    try:
        response = await http.put(
            session.url, content=_file_chunks(archive.path), headers=headers, timeout=timeout
        )
    except httpx.TransportError as exc:
        raise make_error(
            ErrorKind.TRANSIENT,
            f"uploading the project archive failed: {type(exc).__name__}",
            operation=UPLOAD,
        ) from None
    if response.status_code >= 300:
        status = response.status_code
        # GCS answers 408/429/5xx for temporary trouble (eas-cli retries those); 4xx means a bad request
        # or an expired signature, which a new upload session fixes -- also worth a retry.
        kind = ErrorKind.TRANSIENT if status in (403, 408, 429) or status >= 500 else ErrorKind.UNKNOWN
        raise make_error(
            kind,
            f"uploading the project archive failed with HTTP {status}",
            operation=UPLOAD,
            http_status=status,
        )
