"""Is this a usable private key? Parsing PEM and a sign/verify probe, with `cryptography`.

Costs milliseconds of CPU per key (RSA most): callers run it off the event loop.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_PROBE = b"publishing-operator credential check"


def load_private_key(pem: bytes) -> PrivateKeyTypes | None:
    """The unencrypted private key in `pem`; None when it is not one (never an exception text,
    which could quote the input)."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def can_sign(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bool:
    """Whether the key produces a signature its own public key verifies (ES256 / RS256)."""
    try:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            signature = key.sign(_PROBE, ec.ECDSA(hashes.SHA256()))
            key.public_key().verify(signature, _PROBE, ec.ECDSA(hashes.SHA256()))
        else:
            signature = key.sign(_PROBE, padding.PKCS1v15(), hashes.SHA256())
            key.public_key().verify(signature, _PROBE, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True
