"""Signing keys: the current key that signs tokens and the previous keys that still verify them.

Keys come from configuration (PEM text or a file, e.g. a mounted secret) or, when none is
configured, from the state folder, where the first process to need one creates it atomically, so
that every worker, every restart and every instance sharing the folder signs with the same key.

Each key is named by its RFC 7638 JWK thumbprint (the `kid` of the tokens it signs), so a kid is
the same wherever the key is loaded, with nothing to keep in step by hand.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASYMMETRIC_ALGORITHMS = ("ES256", "RS256")
SYMMETRIC_ALGORITHMS = ("HS256",)

# RFC 7638 section 3.2: the members a thumbprint hashes, per key type.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


class KeyOfAnotherType(ImproperlyConfigured):
    """A key that the configured algorithm cannot sign or verify with (an RSA key for ES256)."""


@dataclass(frozen=True)
class Key:
    """One key: `signer` signs (None for a key kept only to verify), `verifier` verifies."""

    kid: str
    algorithm: str
    signer: Any
    verifier: Any
    public_jwk: dict[str, str] | None  # None for a shared secret, which is never published


@dataclass(frozen=True)
class KeyRing:
    current: Key
    previous: tuple[Key, ...] = ()

    def find(self, kid: object) -> Key | None:
        for key in (self.current, *self.previous):
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set of every public key, current first (RFC 7517)."""
        keys = (self.current, *self.previous)
        return {"keys": [key.public_jwk for key in keys if key.public_jwk is not None]}


def load_keyring(config: dict[str, Any], algorithm: str) -> KeyRing:
    """Build the key ring from the SUMSERVICE settings, making the state key when it must."""
    if algorithm in SYMMETRIC_ALGORITHMS:
        return KeyRing(current=_hmac_key(config["HMAC_SECRET"], algorithm))
    if algorithm not in ASYMMETRIC_ALGORITHMS:
        supported = ", ".join(ASYMMETRIC_ALGORITHMS + SYMMETRIC_ALGORITHMS)
        raise ImproperlyConfigured(
            f"SUMSERVICE_JWT_ALGORITHM is {algorithm!r}; supported: {supported}."
        )

    previous_pem, previous_variable = _text_or_file(
        config["PREVIOUS_KEYS"], config["PREVIOUS_KEYS_FILE"], "SUMSERVICE_JWT_PREVIOUS_KEYS"
    )
    previous = [
        _verify_only_key(block, algorithm, "a previous key")
        for block in _pem_blocks(previous_pem, previous_variable)
    ]
    if signing_key_configured(config):
        # A configured but empty key file is an error below, not a silent switch to the state
        # folder: the rotation commands decide where keys live by the same test.
        signing_pem, _ = _text_or_file(
            config["SIGNING_KEY"], config["SIGNING_KEY_FILE"], "SUMSERVICE_JWT_PRIVATE_KEY"
        )
        current = _asymmetric_key(signing_pem, algorithm, "the signing key")
    else:
        key_dir = state_key_dir(config)
        signing_key = ensure_state_key(key_dir, algorithm)
        check_state_folder(key_dir)
        with _if_made_for_another_algorithm(key_dir, algorithm):
            current = load_key_file(signing_key, algorithm)
            previous += [
                _verify_only_key(path.read_bytes(), algorithm, str(path))
                for path in sorted(retired_key_files(key_dir), reverse=True)
            ]
    if current.signer is None:
        raise ImproperlyConfigured("The signing key must be a private key, not a public one.")
    unique = {key.kid: key for key in previous if key.kid != current.kid}
    return KeyRing(current=current, previous=tuple(unique.values()))


@contextlib.contextmanager
def _if_made_for_another_algorithm(key_dir: Path, algorithm: str) -> Iterator[None]:
    """Say, of a state folder key of another type, that SUMSERVICE_JWT_ALGORITHM has changed
    since the service made it, and the ways out."""
    try:
        yield
    except KeyOfAnotherType as error:
        raise KeyOfAnotherType(
            f"{error} The keys in {key_dir} were made for another SUMSERVICE_JWT_ALGORITHM:"
            f" set it back, or move that folder away (mv {key_dir} {key_dir}.old) and the"
            f" service makes a new {algorithm} key at start; tokens the old keys signed are"
            " then refused."
        ) from None


def signing_key_configured(config: dict[str, Any]) -> bool:
    """Whether the signing key comes from configuration (the environment) rather than from the
    state folder; only a state folder key can be rotated by the management commands."""
    return bool(config["SIGNING_KEY"].strip() or config["SIGNING_KEY_FILE"])


def state_key_dir(config: dict[str, Any]) -> Path:
    return Path(config["STATE_DIR"]) / "keys"


def load_key_file(path: Path, algorithm: str) -> Key:
    return _asymmetric_key(path.read_bytes(), algorithm, str(path))


def ensure_state_key(key_dir: Path, algorithm: str) -> Path:
    """Return the state folder's signing key file, creating it once if it is missing.

    The key is written to a temporary file and linked into place: when several processes start
    at once, exactly one link succeeds and all of them then read the same key.
    """
    path = key_dir / "signing-key.pem"
    if not path.exists():
        # Only the service's user may enter: the state folder and the key folder in it.
        key_dir.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key_dir.mkdir(exist_ok=True, mode=0o700)
        _write_new_file(path, generate_private_key(algorithm))
    return path


def check_state_folder(key_dir: Path) -> None:
    """Refuse keys that other users could read (and sign with) or replace: the state folder
    must not be writable by others, and its key folder and key files not open to them at all."""
    state_dir = key_dir.parent
    _check_private(state_dir, 0o022, "the state folder (SUMSERVICE_STATE_DIR)", "chmod 700")
    _check_private(key_dir, 0o077, "the key folder", "chmod 700")
    retired_dir = key_dir / "retired"
    if retired_dir.exists():
        _check_private(retired_dir, 0o077, "the retired key folder", "chmod 700")
    for path in [key_dir / "signing-key.pem", *retired_key_files(key_dir)]:
        _check_private(path, 0o077, "a key file", "chmod 600")


def _check_private(path: Path, forbidden: int, what: str, fix: str) -> None:
    what = what[0].upper() + what[1:]
    status = path.stat()
    if status.st_uid != os.geteuid():
        raise ImproperlyConfigured(
            f"{what} {path} belongs to uid {status.st_uid}, not to the service's"
            f" user (uid {os.geteuid()}): chown it to that user, or point to a folder of its own."
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & forbidden:
        raise ImproperlyConfigured(
            f"{what} {path} can be {_access(mode & forbidden)} by other users"
            f" (mode {mode:04o}); it guards the signing keys. Fix: {fix} {path}"
        )


def _access(bits: int) -> str:
    readable, writable = bits & 0o044, bits & 0o022
    return " and ".join(w for w, on in (("read", readable), ("written", writable)) if on)


def _check_configured_key_file(path: Path, holds_private_key: bool, variable: str) -> None:
    """A mounted key file: nobody but its owner may change it (a key added there would be
    trusted), and a private key is for the service's user or group only (a Kubernetes Secret
    with fsGroup, mode 0440), never for every user of the machine."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o022:
        raise ImproperlyConfigured(
            f"{variable} {path} can be written by other users (mode {mode:04o}), who could"
            f" put in a key of their own. Fix: chmod go-w {path}"
        )
    if holds_private_key and mode & 0o004:
        raise ImproperlyConfigured(
            f"{variable} {path} holds a private key and every user can read it"
            f" (mode {mode:04o}). Fix: chmod o-r {path}, keeping it readable by the service's"
            " user or group (deploy/make-keys.sh, or a Secret's defaultMode 0440 with fsGroup)."
        )


def retired_key_files(key_dir: Path) -> list[Path]:
    return list((key_dir / "retired").glob("*.pem"))


def rotate_state_key(key_dir: Path, algorithm: str) -> tuple[Path, Path]:
    """Retire the state folder's signing key (kept to verify) and create a new one.

    Returns (retired file, new key file). Retired files are named `<unix time>-<kid>.pem`, so
    `prune_retired_keys` can tell when their tokens have all expired.
    """
    current = ensure_state_key(key_dir, algorithm)
    with _if_made_for_another_algorithm(key_dir, algorithm):
        key = load_key_file(current, algorithm)
    retired_dir = key_dir / "retired"
    retired_dir.mkdir(exist_ok=True, mode=0o700)
    retired = retired_dir / f"{int(time.time())}-{key.kid}.pem"
    # A retired key only verifies: its public half is all that is kept.
    _write_new_file(retired, public_key_pem(key))
    _replace_file(current, generate_private_key(algorithm))
    keep_retired_keys_public(key_dir, algorithm)
    return retired, current


def keep_retired_keys_public(key_dir: Path, algorithm: str) -> None:
    """Rewrite any retired key file that still holds a private key as its public key alone."""
    for path in retired_key_files(key_dir):
        if b"PRIVATE KEY" in path.read_bytes():
            _replace_file(path, public_key_pem(load_key_file(path, algorithm)))


def public_key_pem(key: Key) -> bytes:
    return key.verifier.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def retired_at(path: Path) -> int | None:
    """When a retired key file was retired (unix time, from its name); None if it has none."""
    stamp = path.name.split("-", 1)[0]
    return int(stamp) if stamp.isdigit() else None


def prune_retired_keys(key_dir: Path, older_than: float) -> list[Path]:
    """Delete keys retired `older_than` seconds ago or longer; return what was removed.

    A file without a retirement time in its name is never deleted: it was put there by hand.
    """
    removed = []
    now = time.time()
    for path in retired_key_files(key_dir):
        retired = retired_at(path)
        if retired is not None and now - retired >= older_than:
            path.unlink()
            removed.append(path)
    return removed


def generate_private_key(algorithm: str) -> bytes:
    if algorithm == "ES256":
        private_key: Any = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ImproperlyConfigured(f"Cannot generate a key for {algorithm!r}.")
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url without padding."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _hmac_key(secret: str, algorithm: str) -> Key:
    # RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
    if len(secret.encode()) < 32:
        raise ImproperlyConfigured(
            f"{algorithm} needs SUMSERVICE_JWT_SECRET of at least 32 bytes, shared by every"
            " instance; or choose ES256 or RS256."
        )
    raw = secret.encode()
    kid = thumbprint({"kty": "oct", "k": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()})
    return Key(kid=kid, algorithm=algorithm, signer=raw, verifier=raw, public_jwk=None)


def _asymmetric_key(pem: bytes, algorithm: str, what: str) -> Key:
    try:
        if b"PRIVATE KEY" in pem:
            signer = serialization.load_pem_private_key(pem, password=None)
            public = signer.public_key()
        else:
            signer = None
            public = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(f"Cannot load {what} as a PEM key: {error}") from None
    if algorithm == "ES256":
        if not (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"):
            raise KeyOfAnotherType(f"ES256 needs a P-256 elliptic-curve key; {what} is not.")
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        if not (isinstance(public, rsa.RSAPublicKey) and public.key_size >= 2048):
            raise KeyOfAnotherType(f"RS256 needs an RSA key of 2048 bits or more; {what} is not.")
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    kid = thumbprint(jwk)
    # PyJWT adds key_ops to an RSA key's JWK; RFC 7517 section 4.3: not beside "use".
    jwk.pop("key_ops", None)
    public_jwk = {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}
    return Key(kid=kid, algorithm=algorithm, signer=signer, verifier=public, public_jwk=public_jwk)


def _verify_only_key(pem: bytes, algorithm: str, what: str) -> Key:
    """A key kept only to verify: its private part, if the PEM has one, is not kept."""
    return replace(_asymmetric_key(pem, algorithm, what), signer=None)


def _text_or_file(text: str, path: str, variable: str) -> tuple[bytes, str]:
    """Keys given as text in `variable`, or else in the file `variable`_FILE names; and which of
    the two variables gave them."""
    if text.strip():
        return text.encode(), variable
    file_variable = f"{variable}_FILE"
    if path:
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ImproperlyConfigured(f"Cannot read key file {path}: {error.strerror}") from None
        _check_configured_key_file(Path(path), b"PRIVATE KEY" in content, file_variable)
        return content, file_variable
    return b"", variable


def _pem_blocks(bundle: bytes, variable: str) -> list[bytes]:
    """A bundle's PEM blocks, text around them allowed (RFC 7468). One with none, or with a
    block not closed, is refused: the keys it was meant to hold would be dropped unsaid."""
    blocks = [match.group(0) for match in _PEM_BLOCK.finditer(bundle)]
    if bundle.count(b"-----BEGIN ") != len(blocks):
        raise ImproperlyConfigured(
            f"{variable} has a PEM block that is not closed: each -----BEGIN ...----- line"
            " needs its -----END ...----- line."
        )
    if bundle.strip() and not blocks:
        raise ImproperlyConfigured(
            f"{variable} holds no PEM key: give -----BEGIN ... KEY----- blocks, or nothing."
        )
    return blocks


def _write_new_file(path: Path, content: bytes) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-key-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        # FileExistsError: another process made the key first, so use theirs.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)


def _replace_file(path: Path, content: bytes) -> None:
    """Write `path` anew in one step: readers see the old content or the new, never a part."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-key-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
