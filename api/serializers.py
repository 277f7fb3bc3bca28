"""The token request: who asks, validated as the contract says; no credential store behind it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework_simplejwt.settings import api_settings

from api.tokens import SumAccessToken


class StrictCharField(serializers.CharField):
    """A CharField that takes JSON strings only (DRF's turns numbers into text) and refuses
    whitespace-only values even when it keeps the value untrimmed."""

    default_error_messages = {"invalid": "Must be a string."}

    def run_validation(self, data: Any = empty) -> Any:
        if data is not empty and data is not None:
            if not isinstance(data, str):
                self.fail("invalid")
            if not data.strip():
                self.fail("blank")
        return super().run_validation(data)


class TokenObtainSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    # Taken as sent: spaces in a password are part of it.
    password = StrictCharField(max_length=1024, trim_whitespace=False, write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return token_answer(attrs["username"])


def token_answer(subject: str) -> dict[str, Any]:
    """The body of a successful token request (RFC 6749 section 5.1)."""
    token = SumAccessToken.for_subject(subject)
    return {
        "access_token": str(token),
        "token_type": "Bearer",
        "expires_in": int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
    }


_USERNAME_MAX = TokenObtainSerializer._declared_fields["username"].max_length
_PASSWORD_MAX = TokenObtainSerializer._declared_fields["password"].max_length


def plainly_valid_subject(data: Any) -> str | None:
    """The trimmed username when the request is plainly one the serializer accepts, else None.

    Plainly: a JSON object whose username and password are ASCII strings (so no surrogate) with
    no NUL, not blank, within the length limits: the serializer would accept them and return the
    username trimmed. Anything else, every error included, goes to the serializer, which decides
    and words the answer; this only spares a valid request the building of a serializer and its
    fields (about half of /auth's own time; api/tests/test_fast_paths.py holds the two together).
    """
    if type(data) is not dict:
        return None
    username, password = data.get("username"), data.get("password")
    if type(username) is not str or type(password) is not str:
        return None
    if not (username.isascii() and password.isascii()) or "\x00" in username + password:
        return None
    subject = username.strip()
    if not subject or len(subject) > _USERNAME_MAX:
        return None
    if not password.strip() or len(password) > _PASSWORD_MAX:
        return None
    return subject
