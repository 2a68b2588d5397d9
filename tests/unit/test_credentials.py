"""Secret lookup and validation with real keys generated here; no value may ever leak."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from publishing_operator.adapters.kube import SecretData, SecretReadError
from publishing_operator.api import Platform, PublishingBuildSpec, Reason
from publishing_operator.controller.credentials_step import recheck_delay
from publishing_operator.controller.secrets import CredentialResolver
from publishing_operator.credentials import (
    DEFAULT_IOS_TARGET_NAME,
    CredentialCheck,
)

NS = "team-a"
TOKEN = "expo_robot_TOKEN_0123456789abcdefghijklmnopqrstuv"
KEY_ID = "2X9R4HXF34"
ISSUER_ID = "69a6de70-03db-47e3-e053-5b8c7c11a4d1"
P12 = b"\x30\x82\x0a\x01" + b"certificate-body-bytes-0123456789" * 4
P12_PASSWORD = "p12-password-secret-value"
PROFILE = b"\x30\x80\x06\x09" + b"provisioning-profile-body-9876543210" * 4
KEYSTORE_JKS = b"\xfe\xed\xfe\xed" + b"java-keystore-body-bytes-abcdefgh" * 4
KEYSTORE_PASSWORD = "keystore-password-secret"
KEY_PASSWORD = "key-password-secret-value"


def pkcs8(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.fixture(scope="module")
def p256_pem() -> bytes:
    return pkcs8(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def play_json(rsa_key: rsa.RSAPrivateKey) -> str:
    return play_document(pkcs8(rsa_key).decode())


def play_document(private_key: Any, **overrides: Any) -> str:
    document = {
        "type": "service_account",
        "project_id": "my-project",
        "private_key_id": "0123456789abcdef",
        "private_key": private_key,
        "client_email": "publisher@my-project.iam.gserviceaccount.com",
        "client_id": "123456789",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    document.update(overrides)
    return json.dumps({k: v for k, v in document.items() if v is not None})


class FakeReader:
    """Secrets by (namespace, name); records every read."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, bytes]] | None = None) -> None:
        self.secrets = secrets or {}
        self.reads: list[tuple[str, str]] = []

    def put(self, name: str, data: dict[str, bytes | str], namespace: str = NS) -> None:
        self.secrets[(namespace, name)] = {
            k: v.encode() if isinstance(v, str) else v for k, v in data.items()
        }

    async def read_secret(self, namespace: str, name: str) -> SecretData | None:
        self.reads.append((namespace, name))
        data = self.secrets.get((namespace, name))
        return SecretData(dict(data), "") if data is not None else None  # no version: never cached


async def resolve_credentials(
    reader: FakeReader, namespace: str, spec: PublishingBuildSpec
) -> CredentialCheck:
    """What the controller does: read every referenced Secret, validate (off the event loop)."""
    return await CredentialResolver(reader).resolve(namespace, spec)


def spec(
    platform: str = "ios", *, signing: bool = False, submit: bool = False, token_key: str = "token"
) -> PublishingBuildSpec:
    source: dict[str, Any] = (
        {"archive": {"url": "https://artifacts.example.com/app.tar.gz"}}
        if signing
        else {"github": {"ref": "refs/tags/v1.0.0"}}
    )
    body: dict[str, Any] = {
        "app": {"projectId": "3f8c6c2e-1111-4222-8333-444455556666", "platform": platform},
        "source": source,
        "expo": {"tokenSecretRef": {"name": "expo-robot", "key": token_key}},
    }
    if signing:
        body["signing"] = {"secretRef": {"name": "mobile-signing"}}
    if submit and platform == "ios":
        body["submit"] = {"ios": {"ascAppId": "1234567890", "apiKeySecretRef": {"name": "asc-api-key"}}}
    if submit and platform == "android":
        body["submit"] = {
            "android": {
                "serviceAccountKeySecretRef": {"name": "play-publisher", "key": "service-account.json"}
            }
        }
    return PublishingBuildSpec.model_validate(body)


def ios_reader(p256_pem: bytes, **asc_overrides: bytes | str) -> FakeReader:
    reader = FakeReader()
    reader.put("expo-robot", {"token": TOKEN + "\n"})
    reader.put(
        "mobile-signing",
        {"certificate.p12": P12, "certificate-password": P12_PASSWORD, "provisioning-profile": PROFILE},
    )
    reader.put(
        "asc-api-key", {"key-id": KEY_ID, "issuer-id": ISSUER_ID, "private-key": p256_pem, **asc_overrides}
    )
    return reader


def android_reader(play_json: str) -> FakeReader:
    reader = FakeReader()
    reader.put("expo-robot", {"token": TOKEN})
    reader.put(
        "mobile-signing",
        {
            "keystore.jks": KEYSTORE_JKS,
            "keystore-password": KEYSTORE_PASSWORD,
            "key-alias": "upload",
            "key-password": KEY_PASSWORD,
        },
    )
    reader.put("play-publisher", {"service-account.json": play_json})
    return reader


def assert_no_leak(check: CredentialCheck, secrets: Iterable[str | bytes], logs: str = "") -> None:
    """No value, nor any 20-character slice of one, in the message, repr, str, JSON dump or logs."""
    surfaces = [check.message, repr(check), str(check), check.model_dump_json(), logs]
    if check.credentials is not None:
        surfaces += [repr(check.credentials), str(check.credentials), check.credentials.model_dump_json()]
    for secret in secrets:
        text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
        text = text.strip()
        if not text:
            continue
        slices = {text[i : i + 20] for i in range(max(1, len(text) - 19))}
        for surface in surfaces:
            for part in slices:
                assert part not in surface, f"a part of a secret leaked: {part!r}"


def assert_problem(check: CredentialCheck, reason: Reason, secret: str, key: str | None) -> None:
    assert not check.ok
    assert check.credentials is None
    assert check.reason is reason
    assert check.secret_name == secret
    assert check.key == key
    assert f'Secret "{secret}"' in check.message
    if key is not None:
        assert f'"{key}"' in check.message


# -- success ---------------------------------------------------------------------------------------


async def test_ios_with_signing_and_testflight(p256_pem: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reader = ios_reader(p256_pem)
    check = await resolve_credentials(reader, NS, spec("ios", signing=True, submit=True))

    assert check.ok
    assert check.reason is Reason.VALIDATED
    creds = check.credentials
    assert creds is not None
    assert creds.expo_token.get_secret_value() == TOKEN  # surrounding whitespace stripped
    assert creds.asc is not None
    assert creds.asc.key_p8.get_secret_value() == p256_pem.decode().strip()
    assert (creds.asc.key_id, creds.asc.issuer_id) == (KEY_ID, ISSUER_ID)
    assert creds.play_service_account_json is None
    assert creds.signing is not None
    assert creds.signing.ios is not None
    job = creds.signing.job_secrets(Platform.IOS)
    entry = job["buildCredentials"][0]
    assert base64.b64decode(entry["distributionCertificate"]["dataBase64"]) == P12
    assert entry["distributionCertificate"]["password"] == P12_PASSWORD
    assert base64.b64decode(entry["provisioningProfileBase64"]) == PROFILE
    assert entry["targetName"] == DEFAULT_IOS_TARGET_NAME
    assert set(reader.reads) == {(NS, "expo-robot"), (NS, "mobile-signing"), (NS, "asc-api-key")}
    assert_no_leak(
        check, [TOKEN, p256_pem, P12_PASSWORD, base64.b64encode(P12), base64.b64encode(PROFILE)], caplog.text
    )
    assert repr(creds) == "ResolvedCredentials(expo_token=***, asc=***, play=absent, signing=ios)"
    assert set(creds.secret_values()) >= {TOKEN, P12_PASSWORD, p256_pem.decode().strip()}


async def test_android_with_signing_and_play(play_json: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    check = await resolve_credentials(
        android_reader(play_json), NS, spec("android", signing=True, submit=True)
    )

    assert check.ok, check.message
    creds = check.credentials
    assert creds is not None
    assert creds.play_service_account_json is not None
    assert creds.play_service_account_json.get_secret_value() == play_json
    assert creds.asc is None
    assert creds.signing is not None
    android = creds.signing.android
    assert android is not None
    assert base64.b64decode(android.keystore_base64.get_secret_value()) == KEYSTORE_JKS
    assert android.keystore_password.get_secret_value() == KEYSTORE_PASSWORD
    assert android.key_alias == "upload"
    assert android.key_password is not None
    assert android.key_password.get_secret_value() == KEY_PASSWORD
    private_key = json.loads(play_json)["private_key"]
    assert_no_leak(check, [TOKEN, play_json, private_key, KEYSTORE_PASSWORD, KEY_PASSWORD], caplog.text)


async def test_build_only_github_reads_only_the_token_secret() -> None:
    reader = FakeReader()
    reader.put("expo-robot", {"token": TOKEN})
    reader.put("other", {"token": "x"}, namespace="elsewhere")
    check = await resolve_credentials(reader, NS, spec("android"))
    assert check.ok
    assert check.credentials is not None
    assert (
        check.credentials.asc,
        check.credentials.signing,
        check.credentials.play_service_account_json,
    ) == (
        None,
        None,
        None,
    )
    assert reader.reads == [(NS, "expo-robot")]


async def test_secrets_are_read_from_the_resource_namespace_only(p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem)
    for (_, name), data in list(reader.secrets.items()):
        reader.secrets[("other-ns", name)] = data
    check = await resolve_credentials(reader, "other-ns", spec("ios", signing=True, submit=True))
    assert check.ok
    assert {ns for ns, _ in reader.reads} == {"other-ns"}

    missing = await resolve_credentials(reader, "third-ns", spec("ios"))
    assert_problem(missing, Reason.SECRET_NOT_FOUND, "expo-robot", "token")
    assert 'namespace "third-ns"' in missing.message


# -- the Expo token --------------------------------------------------------------------------------


async def test_missing_token_secret() -> None:
    check = await resolve_credentials(FakeReader(), NS, spec())
    assert_problem(check, Reason.SECRET_NOT_FOUND, "expo-robot", "token")
    assert check.message == f'Secret "expo-robot" (key "token") not found in namespace "{NS}"'


async def test_missing_token_key() -> None:
    reader = FakeReader()
    reader.put("expo-robot", {"tokne": TOKEN})
    check = await resolve_credentials(reader, NS, spec())
    assert_problem(check, Reason.KEY_NOT_FOUND, "expo-robot", "token")
    assert check.message == 'Secret "expo-robot" has no key "token"'
    assert_no_leak(check, [TOKEN])


async def test_custom_token_key() -> None:
    reader = FakeReader()
    reader.put("expo-robot", {"EXPO_TOKEN": TOKEN})
    check = await resolve_credentials(reader, NS, spec(token_key="EXPO_TOKEN"))
    assert check.ok


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (b"", "is empty"),
        (b"  \n\t ", "is empty"),
        (b"expo-token-first-half\nexpo-token-second-half", "single-line"),
        (b"expo-token with-a-space-inside", "single-line"),
        (b"expo-token-\x07-bell-character", "single-line"),
        ("expo-token-\u00e9-non-ascii".encode(), "single-line"),
        (b"\xff\xfe-not-utf8-token-bytes", "not UTF-8"),
    ],
)
async def test_malformed_token(value: bytes, what: str) -> None:
    reader = FakeReader()
    reader.put("expo-robot", {"token": value})
    check = await resolve_credentials(reader, NS, spec())
    assert_problem(check, Reason.INVALID_CREDENTIAL, "expo-robot", "token")
    assert what in check.message
    assert_no_leak(check, [value])


# -- the App Store Connect key ---------------------------------------------------------------------


def _bad_asc_keys() -> list[tuple[str, bytes]]:
    p384 = pkcs8(ec.generate_private_key(ec.SECP384R1()))
    ed = pkcs8(ed25519.Ed25519PrivateKey.generate())
    rsa_pem = pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    p256 = ec.generate_private_key(ec.SECP256R1())
    encrypted = pkcs8(p256, password=b"correct horse battery")
    sec1 = p256.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    body = base64.b64encode(b"garbage-that-is-no-key-at-all-" * 4).decode()
    garbage = f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n".encode()
    der = p256.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return [
        ("p384", p384),
        ("ed25519", ed),
        ("rsa", rsa_pem),
        ("encrypted", encrypted),
        ("sec1", sec1),
        ("garbage-pem", garbage),
        ("der", der),
        ("empty", b""),
        ("escaped-newlines", pkcs8(p256).replace(b"\n", b"\\n")),
    ]


@pytest.mark.parametrize(("case", "pem"), _bad_asc_keys(), ids=[case for case, _ in _bad_asc_keys()])
async def test_bad_asc_private_key_is_refused(
    case: str, pem: bytes, p256_pem: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = ios_reader(p256_pem, **{"private-key": pem})
    check = await resolve_credentials(reader, NS, spec("ios", submit=True))
    assert_problem(check, Reason.INVALID_CREDENTIAL, "asc-api-key", "private-key")
    if case == "encrypted":
        assert "encrypted" in check.message
    elif case == "empty":
        assert "is empty" in check.message
    else:
        assert check.message == (
            'Secret "asc-api-key" key "private-key" is not a P-256 (ES256) private key in PEM form '
            "(the AuthKey_<KEYID>.p8 file)"
        )
    assert_no_leak(check, [pem, TOKEN], caplog.text)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("key-id", "2x9r4hxf34"),
        ("key-id", "2X9R-4HXF34"),
        ("key-id", "A" * 31),
        ("key-id", ""),
        ("issuer-id", "69a6de70-03db-47e3-e053"),
        ("issuer-id", "not-a-uuid-at-all-0000-000000000000"),
        ("issuer-id", "69a6de7003db47e3e0535b8c7c11a4d1"),
        ("issuer-id", " "),
    ],
)
async def test_bad_asc_ids_are_refused(key: str, value: str, p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem, **{key: value})
    check = await resolve_credentials(reader, NS, spec("ios", submit=True))
    assert_problem(check, Reason.INVALID_CREDENTIAL, "asc-api-key", key)


async def test_asc_ids_loose_forms_are_accepted(p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem, **{"key-id": f" {KEY_ID}\n", "issuer-id": ISSUER_ID.upper() + "\n"})
    check = await resolve_credentials(reader, NS, spec("ios", submit=True))
    assert check.ok, check.message
    assert check.credentials is not None
    assert check.credentials.asc is not None
    assert check.credentials.asc.key_id == KEY_ID


@pytest.mark.parametrize("key", ["key-id", "issuer-id", "private-key"])
async def test_asc_missing_key(key: str, p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem)
    del reader.secrets[(NS, "asc-api-key")][key]
    check = await resolve_credentials(reader, NS, spec("ios", submit=True))
    assert_problem(check, Reason.KEY_NOT_FOUND, "asc-api-key", key)
    assert_no_leak(check, [p256_pem])


async def test_asc_secret_missing_names_the_keys_it_needs(p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem)
    del reader.secrets[(NS, "asc-api-key")]
    check = await resolve_credentials(reader, NS, spec("ios", submit=True))
    assert_problem(check, Reason.SECRET_NOT_FOUND, "asc-api-key", None)
    assert check.message == (
        f'Secret "asc-api-key" (keys "key-id", "issuer-id", "private-key") not found in namespace "{NS}"'
    )


# -- the Play service account ----------------------------------------------------------------------


def _bad_play_documents() -> list[tuple[str, str, str]]:
    rsa_pem = pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=1024)).decode()
    ec_pem = pkcs8(ec.generate_private_key(ec.SECP256R1())).decode()
    encrypted = pkcs8(rsa.generate_private_key(public_exponent=65537, key_size=1024), b"pass-phrase").decode()
    garbage = "-----BEGIN PRIVATE KEY-----\nAAAAnotakeyAAAA\n-----END PRIVATE KEY-----\n"
    google_services = json.dumps({"project_info": {"project_id": "x"}, "client": [{"api_key": "AIzaSecret"}]})
    return [
        ("not-json", rsa_pem, "is not JSON (line 1 column 1)"),
        ("empty", "", "is empty"),
        ("list", json.dumps([rsa_pem]), "is not a JSON object"),
        ("google-services", google_services, "looks like google-services.json"),
        ("wrong-type", play_document(rsa_pem, type="authorized_user"), '"type" is not service_account'),
        ("no-email", play_document(rsa_pem, client_email=None), '"client_email"'),
        ("email-without-at", play_document(rsa_pem, client_email="publisher"), '"client_email"'),
        ("no-private-key", play_document(None), 'no RSA private key (field "private_key")'),
        ("ec-private-key", play_document(ec_pem), '"private_key" is not an RSA private key'),
        ("garbage-private-key", play_document(garbage), '"private_key" is not an RSA private key'),
        ("encrypted-private-key", play_document(encrypted), '"private_key" is not an RSA private key'),
        ("number-private-key", play_document(12345), 'no RSA private key (field "private_key")'),
    ]


@pytest.mark.parametrize(
    ("case", "document", "what"), _bad_play_documents(), ids=[c for c, _, _ in _bad_play_documents()]
)
async def test_bad_play_key_is_refused(
    case: str, document: str, what: str, play_json: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = android_reader(play_json)
    reader.put("play-publisher", {"service-account.json": document})
    check = await resolve_credentials(reader, NS, spec("android", submit=True))
    assert_problem(check, Reason.INVALID_CREDENTIAL, "play-publisher", "service-account.json")
    assert what in check.message
    secrets = [document]
    if document.startswith("{"):
        secrets += [str(v) for v in json.loads(document).values() if isinstance(v, str) and len(v) > 20]
    assert_no_leak(check, secrets, caplog.text)


async def test_play_key_missing(play_json: str) -> None:
    reader = android_reader(play_json)
    reader.put("play-publisher", {"key.json": play_json})
    check = await resolve_credentials(reader, NS, spec("android", submit=True))
    assert_problem(check, Reason.KEY_NOT_FOUND, "play-publisher", "service-account.json")
    assert_no_leak(check, [play_json])


async def test_play_email_outside_gserviceaccount_is_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    reader = android_reader(play_document(pkcs8(rsa_key).decode(), client_email="ci@example.com"))
    check = await resolve_credentials(reader, NS, spec("android", submit=True))
    assert check.ok, check.message


# -- the signing Secret ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["certificate.p12", "certificate-password", "provisioning-profile"])
async def test_ios_signing_missing_key(key: str, p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem)
    del reader.secrets[(NS, "mobile-signing")][key]
    check = await resolve_credentials(reader, NS, spec("ios", signing=True))
    assert_problem(check, Reason.KEY_NOT_FOUND, "mobile-signing", key)


@pytest.mark.parametrize("key", ["keystore.jks", "keystore-password", "key-alias"])
async def test_android_signing_missing_key(key: str, play_json: str) -> None:
    reader = android_reader(play_json)
    del reader.secrets[(NS, "mobile-signing")][key]
    check = await resolve_credentials(reader, NS, spec("android", signing=True))
    assert_problem(check, Reason.KEY_NOT_FOUND, "mobile-signing", key)


@pytest.mark.parametrize(
    ("platform", "key", "value", "what"),
    [
        ("ios", "certificate.p12", b"", "is empty"),
        ("ios", "certificate.p12", base64.b64encode(P12), "is not a .p12 certificate"),
        ("ios", "provisioning-profile", b"", "is empty"),
        ("ios", "provisioning-profile", b"<?xml version='1.0'?><plist/>", "is not a .mobileprovision file"),
        ("ios", "target-name", b" ", "is empty"),
        ("android", "keystore.jks", b"", "is empty"),
        ("android", "keystore.jks", base64.b64encode(KEYSTORE_JKS), "is not a JKS or PKCS#12 keystore"),
        ("android", "keystore-password", b"\n", "is empty"),
        ("android", "key-alias", b"", "is empty"),
        ("android", "key-password", b"", "is empty"),
        ("android", "key-password", b"\xff\xfe\xfd-not-utf8", "is not UTF-8"),
    ],
)
async def test_bad_signing_material(
    platform: str, key: str, value: bytes, what: str, p256_pem: bytes, play_json: str
) -> None:
    reader = ios_reader(p256_pem) if platform == "ios" else android_reader(play_json)
    reader.secrets[(NS, "mobile-signing")][key] = value
    check = await resolve_credentials(reader, NS, spec(platform, signing=True))
    assert_problem(check, Reason.INVALID_CREDENTIAL, "mobile-signing", key)
    assert what in check.message
    assert_no_leak(check, [value, P12_PASSWORD, KEYSTORE_PASSWORD, KEY_PASSWORD])


async def test_signing_optional_keys(p256_pem: bytes, play_json: str) -> None:
    reader = ios_reader(p256_pem)
    reader.secrets[(NS, "mobile-signing")].update({"certificate-password": b"", "target-name": b"MyApp\n"})
    check = await resolve_credentials(reader, NS, spec("ios", signing=True))
    assert check.ok, check.message
    assert check.credentials is not None
    assert check.credentials.signing is not None
    assert check.credentials.signing.ios is not None
    assert check.credentials.signing.ios.target_name == "MyApp"
    assert check.credentials.signing.ios.p12_password.get_secret_value() == ""

    reader = android_reader(play_json)
    del reader.secrets[(NS, "mobile-signing")]["key-password"]
    reader.secrets[(NS, "mobile-signing")]["keystore.jks"] = P12  # a PKCS#12 keystore (keytool's default)
    check = await resolve_credentials(reader, NS, spec("android", signing=True))
    assert check.ok, check.message
    assert check.credentials is not None
    assert check.credentials.signing is not None
    assert check.credentials.signing.android is not None
    assert check.credentials.signing.android.key_password is None


async def test_signing_secret_missing(p256_pem: bytes) -> None:
    reader = ios_reader(p256_pem)
    del reader.secrets[(NS, "mobile-signing")]
    check = await resolve_credentials(reader, NS, spec("ios", signing=True))
    assert_problem(check, Reason.SECRET_NOT_FOUND, "mobile-signing", None)
    assert '"certificate.p12", "certificate-password", "provisioning-profile"' in check.message


# -- order, recovery, errors -----------------------------------------------------------------------


async def test_checks_run_in_a_fixed_order_and_the_first_problem_wins(p256_pem: bytes) -> None:
    reader = FakeReader()
    full = spec("ios", signing=True, submit=True)

    check = await resolve_credentials(reader, NS, full)
    assert_problem(check, Reason.SECRET_NOT_FOUND, "expo-robot", "token")
    # Every referenced Secret is read once (their versions key the verdict cache); the first wins.
    assert reader.reads == [(NS, "expo-robot"), (NS, "mobile-signing"), (NS, "asc-api-key")]

    reader.put("expo-robot", {"token": TOKEN})
    check = await resolve_credentials(reader, NS, full)
    assert_problem(check, Reason.SECRET_NOT_FOUND, "mobile-signing", None)

    reader.put("mobile-signing", {"certificate.p12": P12, "provisioning-profile": PROFILE})
    check = await resolve_credentials(reader, NS, full)
    assert_problem(check, Reason.KEY_NOT_FOUND, "mobile-signing", "certificate-password")

    reader.put(
        "mobile-signing",
        {"certificate.p12": P12, "certificate-password": P12_PASSWORD, "provisioning-profile": PROFILE},
    )
    check = await resolve_credentials(reader, NS, full)
    assert_problem(check, Reason.SECRET_NOT_FOUND, "asc-api-key", None)

    reader.put("asc-api-key", {"key-id": KEY_ID, "issuer-id": ISSUER_ID, "private-key": b"nope"})
    check = await resolve_credentials(reader, NS, full)
    assert_problem(check, Reason.INVALID_CREDENTIAL, "asc-api-key", "private-key")

    reader.put("asc-api-key", {"key-id": KEY_ID, "issuer-id": ISSUER_ID, "private-key": p256_pem})
    reader.reads.clear()
    check = await resolve_credentials(reader, NS, full)
    assert check.ok
    assert reader.reads == [(NS, "expo-robot"), (NS, "mobile-signing"), (NS, "asc-api-key")]


async def test_a_secret_referenced_twice_is_read_once(play_json: str) -> None:
    reader = FakeReader()
    reader.put(
        "all-in-one",
        {
            "token": TOKEN,
            "service-account.json": play_json,
            "keystore.jks": KEYSTORE_JKS,
            "keystore-password": KEYSTORE_PASSWORD,
            "key-alias": "upload",
        },
    )
    body = spec("android", signing=True, submit=True).model_dump(by_alias=True)
    body["expo"]["tokenSecretRef"]["name"] = "all-in-one"
    body["signing"]["secretRef"]["name"] = "all-in-one"
    body["submit"]["android"]["serviceAccountKeySecretRef"]["name"] = "all-in-one"
    check = await resolve_credentials(reader, NS, PublishingBuildSpec.model_validate(body))
    assert check.ok, check.message
    assert reader.reads == [(NS, "all-in-one")]


async def test_read_errors_propagate_without_becoming_a_verdict() -> None:
    class Failing:
        async def read_secret(self, namespace: str, name: str) -> SecretData | None:
            raise SecretReadError(namespace, name, "HTTP 503", 503)

    with pytest.raises(
        SecretReadError, match='cannot read Secret "expo-robot" in namespace "team-a": HTTP 503'
    ):
        await CredentialResolver(Failing()).resolve(NS, spec())


async def test_a_verdict_is_cached_per_secret_version(p256_pem: bytes) -> None:
    """Key parsing and sign/verify run once per version of the Secrets, not once per step."""
    reader = ios_reader(p256_pem)
    versions = {name: "1" for _, name in reader.secrets}

    class Versioned:
        async def read_secret(self, namespace: str, name: str) -> SecretData | None:
            secret = await reader.read_secret(namespace, name)
            return SecretData(secret.data, versions[name]) if secret is not None else None

    resolver = CredentialResolver(Versioned())
    first = await resolver.resolve(NS, spec("ios", submit=True))
    assert first.ok
    assert await resolver.resolve(NS, spec("ios", submit=True)) is first  # same versions: cached
    reader.put("asc-api-key", {"key-id": "bad id", "issuer-id": ISSUER_ID, "private-key": p256_pem})
    versions["asc-api-key"] = "2"  # the Secret changed
    second = await resolver.resolve(NS, spec("ios", submit=True))
    assert not second.ok and second.key == "key-id"


def test_the_leak_check_itself_catches_a_slice() -> None:
    leaky = CredentialCheck(ok=False, reason=Reason.INVALID_CREDENTIAL, message=f"bad value {TOKEN[5:25]}")
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_leak(leaky, [TOKEN])


def test_recheck_delay_doubles_from_5s_to_a_5min_cap() -> None:
    delays = [recheck_delay(n).total_seconds() for n in range(0, 10)]
    assert delays == [5, 5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert recheck_delay(10_000) == timedelta(minutes=5)
