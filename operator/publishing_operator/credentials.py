"""Validation of the Secrets a PublishingBuild references, before any money is spent on EAS.

Pure: the controller reads the Secrets (the resource's own namespace only, through the Kubernetes
adapter) and hands their data here; this module never talks to an API. `validate_credentials`
checks, in a fixed order, the Expo token, the signing Secret and the store key, and returns the
first problem as a `CredentialCheck` whose reason is a `CredentialsReady` reason and whose message
names the Secret and key but never any part of a value. On success it carries the values as
`SecretStr` / typed models, which do not show them in repr, str or logs. Key parsing and the
sign/verify probes cost milliseconds of CPU: the controller runs this off the event loop.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import BaseModel, ConfigDict, SecretStr

from publishing_operator.api import Platform, PublishingBuildSpec, Reason
from publishing_operator.expo.models import AndroidSigning, AscApiKey, IosSigning, SigningMaterial
from publishing_operator.private_keys import can_sign, load_private_key

# Keys of the App Store Connect API key Secret (spec.submit.ios.apiKeySecretRef).
ASC_KEY_ID = "key-id"
ASC_ISSUER_ID = "issuer-id"
ASC_PRIVATE_KEY = "private-key"
# Keys of the signing Secret (spec.signing.secretRef), per platform.
IOS_CERTIFICATE = "certificate.p12"
IOS_CERTIFICATE_PASSWORD = "certificate-password"
IOS_PROVISIONING_PROFILE = "provisioning-profile"
IOS_TARGET_NAME = "target-name"  # optional
ANDROID_KEYSTORE = "keystore.jks"
ANDROID_KEYSTORE_PASSWORD = "keystore-password"
ANDROID_KEY_ALIAS = "key-alias"
ANDROID_KEY_PASSWORD = "key-password"  # optional: EAS then uses the keystore password
ASC_KEYS = (ASC_KEY_ID, ASC_ISSUER_ID, ASC_PRIVATE_KEY)
IOS_SIGNING_KEYS = (IOS_CERTIFICATE, IOS_CERTIFICATE_PASSWORD, IOS_PROVISIONING_PROFILE)
ANDROID_SIGNING_KEYS = (ANDROID_KEYSTORE, ANDROID_KEYSTORE_PASSWORD, ANDROID_KEY_ALIAS)
# Used when the iOS signing Secret has no target-name: the Xcode target of the build credentials.
DEFAULT_IOS_TARGET_NAME = "app"

KEY_ID_RE = re.compile(r"^[0-9A-Z]{1,30}$")
ISSUER_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_PKCS8_HEADER = b"-----BEGIN PRIVATE KEY-----"
_ENCRYPTED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
# Binary files in the signing Secret are DER (a SEQUENCE, 0x30) or a JKS keystore (0xFEEDFEED).
_DER_SEQUENCE = b"\x30"
_JKS_MAGIC = b"\xfe\xed\xfe\xed"


# ---------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------


class ResolvedCredentials(BaseModel):
    """Validated credentials for one resource. Values stay wrapped until the EAS client sends them."""

    model_config = ConfigDict(frozen=True)

    expo_token: SecretStr
    asc: AscApiKey | None = None
    play_service_account_json: SecretStr | None = None
    signing: SigningMaterial | None = None

    def secret_values(self) -> list[str]:
        """Every secret string held here, for the log scrubber (redaction.py)."""
        values = [self.expo_token.get_secret_value()]
        if self.asc is not None:
            values.append(self.asc.key_p8.get_secret_value())
        if self.play_service_account_json is not None:
            values.append(self.play_service_account_json.get_secret_value())
        if self.signing is not None:
            for part in (self.signing.ios, self.signing.android):
                if part is not None:
                    values.extend(
                        value.get_secret_value()
                        for value in vars(part).values()
                        if isinstance(value, SecretStr)
                    )
        return values

    def __repr__(self) -> str:
        # Only which parts exist: not even identifiers (key id, alias) end up in logs.
        signing = "absent"
        if self.signing is not None:
            signing = "ios" if self.signing.ios is not None else "android"
        return (
            f"ResolvedCredentials(expo_token=***, asc={_presence(self.asc)}, "
            f"play={_presence(self.play_service_account_json)}, signing={signing})"
        )

    __str__ = __repr__


def _presence(value: object) -> str:
    return "absent" if value is None else "***"


class CredentialCheck(BaseModel):
    """The outcome of `resolve_credentials`. `reason` is a CredentialsReady reason; `message` names
    the Secret and key (never a value); `credentials` is set exactly when `ok`."""

    model_config = ConfigDict(frozen=True)

    ok: bool
    reason: Reason
    message: str
    secret_name: str | None = None
    key: str | None = None
    credentials: ResolvedCredentials | None = None


class _Problem(Exception):
    """Internal: the first thing wrong, raised from deep inside a check and turned into a result."""

    def __init__(self, reason: Reason, secret: str, key: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.secret, self.key, self.message = reason, secret, key, message


# ---------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------


def referenced_secrets(spec: PublishingBuildSpec) -> tuple[str, ...]:
    """Every Secret name the spec references, in the order they are checked (each once)."""
    names = [spec.expo.token_secret_ref.name]
    if spec.signing is not None:
        names.append(spec.signing.secret_ref.name)
    if spec.submit is not None and spec.submit.ios is not None:
        names.append(spec.submit.ios.api_key_secret_ref.name)
    if spec.submit is not None and spec.submit.android is not None:
        names.append(spec.submit.android.service_account_key_secret_ref.name)
    return tuple(dict.fromkeys(names))


SecretsByName = Mapping[str, Mapping[str, bytes] | None]


def validate_credentials(
    namespace: str, spec: PublishingBuildSpec, secrets: SecretsByName
) -> CredentialCheck:
    """Validate every Secret the spec references. `secrets` maps each name of
    `referenced_secrets(spec)` to its data, or to None when the Secret does not exist in
    `namespace` (the resource's own; named in messages).

    Order: Expo token, signing Secret, store key; the first problem wins.
    """
    found = _Secrets(secrets, namespace)
    try:
        token_ref = spec.expo.token_secret_ref
        token = _expo_token(token_ref.name, token_ref.key, found.value(token_ref.name, token_ref.key))

        signing = None
        if spec.signing is not None:
            name = spec.signing.secret_ref.name
            signing = _signing(name, spec.app.platform, found.data(name, _signing_keys(spec.app.platform)))

        asc = play = None
        if spec.submit is not None and spec.submit.ios is not None:
            name = spec.submit.ios.api_key_secret_ref.name
            asc = _asc_key(name, found.data(name, ASC_KEYS))
        if spec.submit is not None and spec.submit.android is not None:
            ref = spec.submit.android.service_account_key_secret_ref
            play = _play_key(ref.name, ref.key, found.value(ref.name, ref.key))
    except _Problem as problem:
        return CredentialCheck(
            ok=False,
            reason=problem.reason,
            message=problem.message,
            secret_name=problem.secret,
            key=problem.key,
        )

    return CredentialCheck(
        ok=True,
        reason=Reason.VALIDATED,
        message="the referenced Secrets exist and hold well-formed credentials",
        credentials=ResolvedCredentials(
            expo_token=SecretStr(token), asc=asc, play_service_account_json=play, signing=signing
        ),
    )


class _Secrets:
    """The Secrets' data by name; absences become problems that name the Secret and key."""

    def __init__(self, secrets: SecretsByName, namespace: str) -> None:
        self._secrets, self._namespace = secrets, namespace

    def data(self, name: str, keys: tuple[str, ...]) -> Mapping[str, bytes]:
        """The Secret's data; `keys` are the keys the caller needs (named when it is missing)."""
        data = self._secrets.get(name)
        if data is None:
            noun = "key" if len(keys) == 1 else "keys"
            what = f" ({noun} " + ", ".join(f'"{key}"' for key in keys) + ")"
            raise _Problem(
                Reason.SECRET_NOT_FOUND,
                name,
                keys[0] if len(keys) == 1 else None,
                f'Secret "{name}"{what} not found in namespace "{self._namespace}"',
            )
        return data

    def value(self, name: str, key: str) -> bytes:
        data = self.data(name, (key,))
        if key not in data:
            raise _missing(name, key)
        return data[key]


def _missing(secret: str, key: str) -> _Problem:
    return _Problem(Reason.KEY_NOT_FOUND, secret, key, f'Secret "{secret}" has no key "{key}"')


def _invalid(secret: str, key: str, what: str) -> _Problem:
    return _Problem(Reason.INVALID_CREDENTIAL, secret, key, f'Secret "{secret}" key "{key}" {what}')


def _text(secret: str, key: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid(secret, key, "is not UTF-8 text") from None


def _require_keys(secret: str, data: Mapping[str, bytes], keys: tuple[str, ...]) -> None:
    """Before any value is checked: the first of `keys` the Secret lacks is the problem."""
    for key in keys:
        if key not in data:
            raise _missing(secret, key)


def _required_text(secret: str, data: Mapping[str, bytes], key: str) -> str:
    if key not in data:
        raise _missing(secret, key)
    text = _text(secret, key, data[key]).strip()
    if not text:
        raise _invalid(secret, key, "is empty")
    return text


# ---------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------


def _expo_token(secret: str, key: str, raw: bytes) -> str:
    token = _text(secret, key, raw).strip()
    if not token:
        raise _invalid(secret, key, "is empty (expected an Expo access token)")
    if any(ch.isspace() for ch in token) or not token.isprintable() or not token.isascii():
        raise _invalid(
            secret,
            key,
            "is not a single-line Expo access token (it holds whitespace, control or non-ASCII characters)",
        )
    return token


def _asc_key(secret: str, data: Mapping[str, bytes]) -> AscApiKey:
    _require_keys(secret, data, ASC_KEYS)
    key_id = _required_text(secret, data, ASC_KEY_ID)
    if not KEY_ID_RE.match(key_id):
        raise _invalid(secret, ASC_KEY_ID, "is not an App Store Connect key id (1-30 of A-Z and 0-9)")
    issuer_id = _required_text(secret, data, ASC_ISSUER_ID)
    if not ISSUER_ID_RE.match(issuer_id):
        raise _invalid(secret, ASC_ISSUER_ID, "is not an App Store Connect issuer id (8-4-4-4-12 hex digits)")

    pem = data[ASC_PRIVATE_KEY].strip()
    not_p256 = "is not a P-256 (ES256) private key in PEM form (the AuthKey_<KEYID>.p8 file)"
    if not pem:
        raise _invalid(secret, ASC_PRIVATE_KEY, "is empty (expected the AuthKey_<KEYID>.p8 file)")
    if pem.startswith(_ENCRYPTED_HEADER):
        raise _invalid(secret, ASC_PRIVATE_KEY, "is an encrypted private key; App Store Connect keys are not")
    if not pem.startswith(_PKCS8_HEADER):
        raise _invalid(secret, ASC_PRIVATE_KEY, not_p256)
    private_key = load_private_key(pem)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
        raise _invalid(secret, ASC_PRIVATE_KEY, not_p256)
    if not can_sign(private_key):
        raise _invalid(secret, ASC_PRIVATE_KEY, "holds a P-256 key that cannot produce a valid signature")
    return AscApiKey(key_p8=SecretStr(pem.decode("ascii")), key_id=key_id, issuer_id=issuer_id)


def _play_key(secret: str, key: str, raw: bytes) -> SecretStr:
    text = _text(secret, key, raw)
    if not text.strip():
        raise _invalid(secret, key, "is empty (expected a Google service-account JSON key)")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        # Position only: the decoder's message never quotes the document, but be sure.
        raise _invalid(secret, key, f"is not JSON (line {exc.lineno} column {exc.colno})") from None
    if not isinstance(document, dict):
        raise _invalid(secret, key, "is not a JSON object (expected a Google service-account key)")
    if "project_info" in document and "client" in document:
        raise _invalid(secret, key, "looks like google-services.json, not a service-account key")
    if document.get("type") != "service_account":
        raise _invalid(
            secret, key, 'is not a Google service-account key (field "type" is not service_account)'
        )
    email = document.get("client_email")
    if not isinstance(email, str) or "@" not in email:
        raise _invalid(secret, key, 'has no service-account e-mail (field "client_email")')
    private_pem = document.get("private_key")
    if not isinstance(private_pem, str) or not private_pem.strip():
        raise _invalid(secret, key, 'has no RSA private key (field "private_key")')
    private_key = load_private_key(private_pem.strip().encode("utf-8"))
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise _invalid(secret, key, 'field "private_key" is not an RSA private key in PEM form')
    if not can_sign(private_key):
        raise _invalid(
            secret, key, 'field "private_key" holds an RSA key that cannot produce a valid signature'
        )
    return SecretStr(text)


def _signing(secret: str, platform: Platform, data: Mapping[str, bytes]) -> SigningMaterial:
    _require_keys(secret, data, _signing_keys(platform))
    if platform is Platform.IOS:
        certificate = _binary(secret, data, IOS_CERTIFICATE, (_DER_SEQUENCE,), "a .p12 certificate")
        profile = _binary(secret, data, IOS_PROVISIONING_PROFILE, (_DER_SEQUENCE,), "a .mobileprovision file")
        # An empty .p12 password is legitimate; a present key is what we require.
        password = _text(secret, IOS_CERTIFICATE_PASSWORD, data[IOS_CERTIFICATE_PASSWORD]).rstrip("\r\n")
        target = DEFAULT_IOS_TARGET_NAME
        if IOS_TARGET_NAME in data:
            target = _required_text(secret, data, IOS_TARGET_NAME)
        return SigningMaterial(
            ios=IosSigning(
                target_name=target,
                provisioning_profile_base64=SecretStr(profile),
                p12_base64=SecretStr(certificate),
                p12_password=SecretStr(password),
            )
        )

    keystore = _binary(
        secret, data, ANDROID_KEYSTORE, (_JKS_MAGIC, _DER_SEQUENCE), "a JKS or PKCS#12 keystore"
    )
    store_password = _text(secret, ANDROID_KEYSTORE_PASSWORD, data[ANDROID_KEYSTORE_PASSWORD]).rstrip("\r\n")
    if not store_password:
        raise _invalid(secret, ANDROID_KEYSTORE_PASSWORD, "is empty (keystores always have a password)")
    alias = _required_text(secret, data, ANDROID_KEY_ALIAS)
    key_password = None
    if ANDROID_KEY_PASSWORD in data:
        key_password = _text(secret, ANDROID_KEY_PASSWORD, data[ANDROID_KEY_PASSWORD]).rstrip("\r\n")
        if not key_password:
            raise _invalid(
                secret, ANDROID_KEY_PASSWORD, "is empty (omit the key to use the keystore password)"
            )
    return SigningMaterial(
        android=AndroidSigning(
            keystore_base64=SecretStr(keystore),
            keystore_password=SecretStr(store_password),
            key_alias=alias,
            key_password=SecretStr(key_password) if key_password is not None else None,
        )
    )


def _signing_keys(platform: Platform) -> tuple[str, ...]:
    """The keys a signing Secret must have (optional ones are not listed)."""
    return IOS_SIGNING_KEYS if platform is Platform.IOS else ANDROID_SIGNING_KEYS


def _binary(secret: str, data: Mapping[str, bytes], key: str, magics: tuple[bytes, ...], what: str) -> str:
    """The file's bytes as base64 for the job. The Secret must hold the binary file itself: a
    base64 text there (double-encoded) would fail late, on the build worker."""
    raw = data[key]
    if not raw:
        raise _invalid(secret, key, f"is empty (expected {what})")
    if not raw.startswith(magics):
        raise _invalid(
            secret, key, f"is not {what} (store the binary file, e.g. kubectl create secret --from-file)"
        )
    return base64.b64encode(raw).decode("ascii")
