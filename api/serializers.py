"""The token request: who asks, validated as the contract says; no credential store behind it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework_simplejwt import settings as simplejwt_settings

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
        token = SumAccessToken.for_subject(attrs["username"])
        lifetime = simplejwt_settings.api_settings.ACCESS_TOKEN_LIFETIME
        return {
            "access_token": str(token),
            "token_type": "Bearer",
            "expires_in": int(lifetime.total_seconds()),
        }
