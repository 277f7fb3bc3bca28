"""Tokens made by hand, as an attacker (or a careless issuer) would: what /sum must refuse.

Shared by the in-process tests (api/tests) and the end-to-end ones (tests/e2e), so that both
hold the service to the same list. Each token is built by `Forger`, from the service's real
signing key where the attack needs a valid signature (wrong issuer, expired, ...), or from
nothing at all where it must not have one (`alg: none`, a stranger's key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from api.keys import Key, generate_private_key

DROP = object()  # a claim value meaning "leave this claim out"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def unverified_part(token: str, index: int) -> dict[str, Any]:
    """The header (0) or the payload (1) of a compact JWT, read without any check."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def public_pem(key: Key) -> bytes:
    """The key's public half as PEM (SubjectPublicKeyInfo), as `openssl pkey -pubout` writes it."""
    return key.verifier.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass(frozen=True)
class Forger:
    """Makes tokens that look like the service's: its key, issuer and audience, unless told."""

    key: Key  # the service's signing key (with its private part)
    issuer: str
    audience: str

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "token_type": "access",
            "iss": self.issuer,
            "aud": self.audience,
            "sub": "mallory",
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            **changes,
        }
        return {name: value for name, value in claims.items() if value is not DROP}

    def sign(self, claims: dict[str, Any], signer: Any = None, **header: Any) -> str:
        """Signed with the service's algorithm; the service's key and kid unless given."""
        header = {"kid": self.key.kid, **header}
        header = {name: value for name, value in header.items() if value is not DROP}
        return jwt.encode(
            claims, signer or self.key.signer, algorithm=self.key.algorithm, headers=header
        )

    def token(self, **changes: Any) -> str:
        return self.sign(self.claims(**changes))

    def sign_raw_payload(self, payload: bytes) -> str:
        """A payload of exactly these bytes (JSON that json.dumps cannot write), signed."""
        return jwt.api_jws.encode(
            payload, self.key.signer, algorithm=self.key.algorithm, headers={"kid": self.key.kid}
        )

    def raw_claim(self, name: str, literal: str) -> str:
        """The usual claims, with `name` given as this literal JSON text."""
        claims = json.dumps(self.claims(**{name: 0}))
        return self.sign_raw_payload(
            claims.replace(f'"{name}": 0', f'"{name}": {literal}').encode()
        )

    def stranger_key(self) -> Any:
        """A private key of the right type that the service has never seen."""
        pem = generate_private_key(self.key.algorithm)
        return serialization.load_pem_private_key(pem, password=None)

    def unsigned(self) -> str:
        """`alg: none` (RFC 7519 section 6): no signature at all."""
        header = {"alg": "none", "typ": "JWT", "kid": self.key.kid}
        return f"{segment(header)}.{segment(self.claims())}."

    def hs256_with_public_key(self) -> str:
        """Algorithm confusion: HS256 "signed" with the public key's PEM as the HMAC secret, for
        a verifier that would take the key it holds as a secret. PyJWT refuses to make it."""
        header = {"alg": "HS256", "typ": "JWT", "kid": self.key.kid}
        signing_input = f"{segment(header)}.{segment(self.claims())}"
        mac = hmac.new(public_pem(self.key), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    def bad_signature(self) -> str:
        """A valid token with one byte of its signature changed."""
        header, payload, signature = self.token().split(".")
        raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
        raw[0] ^= 0xFF
        return f"{header}.{payload}.{b64url(bytes(raw))}"

    def tampered(self) -> str:
        """A valid token whose payload was then changed (another subject), signature kept."""
        header, _, signature = self.token().split(".")
        return f"{header}.{segment(self.claims(sub='admin'))}.{signature}"


def _future(seconds: int) -> int:
    return int(time.time()) + seconds


# Every token here must get 401 with `WWW-Authenticate: Bearer ...` from /sum.
ATTACKS: dict[str, Callable[[Forger], str]] = {
    "alg none": Forger.unsigned,
    "HS256 signed with the public key": Forger.hs256_with_public_key,
    "unknown key, known kid": lambda f: f.sign(f.claims(), signer=f.stranger_key()),
    # Signed with the real key: only the kid is wrong, and the service must not try every key.
    "kid not published": lambda f: f.sign(f.claims(), kid="not-a-published-key"),
    "unknown key, unknown kid": lambda f: f.sign(f.claims(), signer=f.stranger_key(), kid="x"),
    "no kid": lambda f: f.sign(f.claims(), kid=DROP),
    "wrong issuer": lambda f: f.token(iss="https://evil.example"),
    "wrong audience": lambda f: f.token(aud="another-service"),
    "expired": lambda f: f.token(iat=_future(-7200), exp=_future(-3600)),
    "issued in the future": lambda f: f.token(iat=_future(300), exp=_future(900)),
    "not yet valid": lambda f: f.token(nbf=_future(300)),
    "bad signature": Forger.bad_signature,
    "tampered payload": Forger.tampered,
    "no iss": lambda f: f.token(iss=DROP),
    "no aud": lambda f: f.token(aud=DROP),
    "no sub": lambda f: f.token(sub=DROP),
    "no exp": lambda f: f.token(exp=DROP),
    "no iat": lambda f: f.token(iat=DROP),
    "a refresh token": lambda f: f.token(token_type="refresh"),
    # Signed with the real key, with claims of odd types: refused (never a 500).
    "exp not a number": lambda f: f.token(exp="tomorrow"),
    "exp a numeric string": lambda f: f.token(exp=str(_future(600))),
    "exp a boolean": lambda f: f.token(exp=True),
    "exp a list": lambda f: f.token(exp=[_future(600)]),
    "exp an object": lambda f: f.token(exp={"at": _future(600)}),
    "exp beyond year 9999": lambda f: f.token(exp=10**20),
    "exp beyond any float": lambda f: f.raw_claim("exp", "1e400"),
    "exp a huge integer": lambda f: f.raw_claim("exp", "9" * 400),
    "exp NaN": lambda f: f.raw_claim("exp", "NaN"),
    "exp Infinity": lambda f: f.raw_claim("exp", "Infinity"),
    "exp negative": lambda f: f.token(exp=-(10**20)),
    "iat not a number": lambda f: f.token(iat="now"),
    "iat huge": lambda f: f.token(iat=10**20),
    "iat beyond any float": lambda f: f.raw_claim("iat", "1e400"),
    "nbf not a number": lambda f: f.token(nbf="later"),
    "nbf huge negative": lambda f: f.token(nbf=-(10**30)),
    "nbf beyond any float": lambda f: f.raw_claim("nbf", "-1e400"),
    "sub a number": lambda f: f.token(sub=123),
    "sub a list": lambda f: f.token(sub=["alice"]),
    "sub an object": lambda f: f.token(sub={"name": "alice"}),
    "jti a number": lambda f: f.token(jti=42),
    "token_type a list": lambda f: f.token(token_type=["access"]),
    "aud an object": lambda f: f.token(aud={"aud": f.audience}),
    "iss a list": lambda f: f.raw_claim("iss", json.dumps([f.issuer])),
    "payload not an object": lambda f: f.sign_raw_payload(b"[1, 2]"),
    "payload a string": lambda f: f.sign_raw_payload(b'"claims"'),
    "not a JWT": lambda f: "not-a-jwt",
    "three junk segments": lambda f: "a.b.c",
}
