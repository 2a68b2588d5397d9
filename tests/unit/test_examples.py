"""The example manifests: valid against the CRD (admission and plain jsonschema) and the models, and
their fake Secrets hold well-formed credentials of the kinds the operator validates."""

from __future__ import annotations

import base64
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from publishing_operator import api
from publishing_operator.api import PublishingBuild
from publishing_testkit.kube_emulator.admission import CRDValidator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BUILD_FILES = ["ios-testflight.yaml", "android-play-internal.yaml", "archive-build.yaml"]

Doc = dict[str, Any]


@functools.cache
def crd() -> Doc:
    loaded: Doc = yaml.safe_load((ROOT / "crds" / "publishingbuild.yaml").read_text())
    return loaded


@functools.cache
def validator() -> CRDValidator:
    return CRDValidator.from_crd(crd(), api.VERSION)


def load(name: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all((EXAMPLES / name).read_text()) if doc]


@functools.cache
def secrets() -> dict[str, dict[str, str]]:
    """Secret name -> decoded data (stringData and base64 data merged, as the API server does)."""
    out = {}
    for doc in load("secrets.yaml"):
        assert doc["kind"] == "Secret"
        data = {k: base64.b64decode(v).decode("latin-1") for k, v in doc.get("data", {}).items()}
        data.update(doc.get("stringData", {}))
        out[doc["metadata"]["name"]] = data
    return out


def builds() -> list[Doc]:
    return [doc for name in BUILD_FILES for doc in load(name)]


def contained(small: Any, big: Any) -> bool:
    """Every field of `small` is in `big` with the same value (big may add defaults)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contained(v, big[k]) for k, v in small.items())
    return bool(small == big)


@pytest.mark.parametrize("name", BUILD_FILES)
def test_example_passes_admission_without_losing_a_field(name: str) -> None:
    for doc in load(name):
        assert doc["kind"] == api.KIND
        assert doc["apiVersion"] == api.API_VERSION
        assert "namespace" not in doc["metadata"]
        admitted = validator().admit(doc, None)
        assert contained(doc, admitted), "a field was pruned: misspelt or undeclared"


@pytest.mark.parametrize("name", BUILD_FILES)
def test_example_validates_with_plain_jsonschema(name: str) -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    checker = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    for doc in load(name):
        assert list(checker.iter_errors(doc)) == []


@pytest.mark.parametrize("name", BUILD_FILES)
def test_example_matches_the_models_and_their_defaults(name: str) -> None:
    for doc in load(name):
        model = PublishingBuild.model_validate(doc)
        assert model.spec.to_json() == validator().admit(doc, None)["spec"]


def test_the_examples_cover_the_three_scenarios() -> None:
    specs = {doc["metadata"]["name"]: api.PublishingBuildSpec.model_validate(doc["spec"]) for doc in builds()}
    ios = specs["mobile-ios-1.4.2"]
    assert ios.app.platform is api.Platform.IOS
    assert ios.source.github is not None
    assert ios.submit is not None
    assert ios.submit.ios is not None
    android = specs["mobile-android-1.4.2"]
    assert android.submit is not None
    assert android.submit.android is not None
    assert android.submit.android.track == "internal"
    archived = specs["mobile-android-archive-1.4.3-rc1"]
    assert archived.source.archive is not None
    assert archived.source.archive.sha256 is not None
    assert archived.signing is not None


def test_every_referenced_secret_key_exists() -> None:
    available = secrets()
    for doc in builds():
        spec = api.PublishingBuildSpec.model_validate(doc["spec"])
        ref = spec.expo.token_secret_ref
        assert available[ref.name][ref.key].strip()
        if spec.signing is not None:
            keys = {"keystore.jks", "keystore-password", "key-alias", "key-password"}
            if spec.app.platform is api.Platform.IOS:
                keys = {"certificate.p12", "certificate-password", "provisioning-profile"}
            assert keys <= set(available[spec.signing.secret_ref.name])
        if spec.submit is not None and spec.submit.ios is not None:
            assert {"key-id", "issuer-id", "private-key"} <= set(
                available[spec.submit.ios.api_key_secret_ref.name]
            )
        if spec.submit is not None and spec.submit.android is not None:
            ref = spec.submit.android.service_account_key_secret_ref
            assert ref.key in available[ref.name]


def test_app_store_connect_key_is_a_p256_key_that_signs() -> None:
    asc = secrets()["asc-api-key"]
    assert re.fullmatch(r"[0-9A-Z]{10}", asc["key-id"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", asc["issuer-id"])
    assert asc["private-key"].startswith("-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(asc["private-key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    signature = key.sign(b"header.payload", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(signature, b"header.payload", ec.ECDSA(hashes.SHA256()))


def test_play_service_account_is_json_with_an_rsa_key() -> None:
    account = json.loads(secrets()["play-publisher"]["service-account.json"])
    assert account["type"] == "service_account"
    assert account["client_email"].endswith("@fake-project.iam.gserviceaccount.com")
    key = serialization.load_pem_private_key(account["private_key"].encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    key.sign(b"jwt", padding.PKCS1v15(), hashes.SHA256())


def test_android_keystore_opens_with_its_password() -> None:
    signing = secrets()["mobile-android-signing"]
    keystore = signing["keystore.jks"].encode("latin-1")
    key, cert, _ = pkcs12.load_key_and_certificates(keystore, signing["keystore-password"].encode())
    assert key is not None
    assert cert is not None
    assert signing["key-alias"] == "upload"


def test_secrets_are_labelled_fake_and_valid_for_kubernetes() -> None:
    text = (EXAMPLES / "secrets.yaml").read_text()
    assert text.count("FAKE") >= 5
    assert "never use" in text
    tool = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run(
        [str(tool), "-k", "1.32.0", "--strict", str(EXAMPLES / "secrets.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
