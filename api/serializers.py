"""The token request: who asks, validated as the contract says; no credential store behind it."""

from __future__ import annotations

import unicodedata
from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework_simplejwt import settings as simplejwt_settings

from api import metrics
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


# Characters that would let a subject rewrite the logs and screens that show it: control
# characters (Unicode Cc: newlines, escapes), line and paragraph separators (Zl, Zp), and the
# bidirectional embeddings, overrides and isolates that reorder the text around them.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_BIDI_FORMATTING = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))


def printable_text(value: str) -> None:
    for char in value:
        if unicodedata.category(char) in _UNSAFE_CATEGORIES or char in _BIDI_FORMATTING:
            raise serializers.ValidationError(
                "Must not contain control characters, line or paragraph separators or"
                f" bidirectional formatting characters (found U+{ord(char):04X}).",
                code="unsafe_character",
            )


class TokenObtainSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[printable_text])
    # Taken as sent: spaces in a password are part of it.
    password = StrictCharField(max_length=1024, trim_whitespace=False, write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        token = SumAccessToken.for_subject(attrs["username"])
        metrics.TOKENS_ISSUED.inc()
        lifetime = simplejwt_settings.api_settings.ACCESS_TOKEN_LIFETIME
        return {
            "access_token": str(token),
            "token_type": "Bearer",
            "expires_in": int(lifetime.total_seconds()),
        }
