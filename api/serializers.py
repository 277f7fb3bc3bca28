"""The token request: who asks, validated as the contract says; no credential store behind it."""

from __future__ import annotations

import copy
import re
from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator
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

    def __copy__(self) -> StrictCharField:
        # What copy.copy would make through the generic reduce protocol, for a fraction of its
        # cost: TokenObtainSerializer copies its fields for every token request.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone


class PasswordField(StrictCharField):
    """A password, taken as sent (the contract): checked against no store and kept nowhere, so
    no character is refused, not even the NUL and lone surrogates DRF's CharField refuses."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        refused_by_drf = (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator)
        self.validators = [v for v in self.validators if not isinstance(v, refused_by_drf)]


# Characters that would let a subject rewrite the logs and screens that show it: control
# characters (Unicode Cc, exactly U+0000-U+001F and U+007F-U+009F: newlines, escapes), the line
# and paragraph separators (Zl, Zp: U+2028, U+2029 alone), and the bidirectional embeddings,
# overrides and isolates that reorder the text around them. A regex class, so that the OpenAPI
# schema's username pattern (api/schema.py) says the same.
UNSAFE_USERNAME_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{UNSAFE_USERNAME_CHARACTERS}]")


def printable_text(value: str) -> None:
    unsafe = _UNSAFE.search(value)
    if unsafe:
        raise serializers.ValidationError(
            "Must not contain control characters, line or paragraph separators or"
            f" bidirectional formatting characters (found U+{ord(unsafe.group()):04X}).",
            code="unsafe_character",
        )


# The longest credentials, in characters (the username once trimmed); the schema says the same.
USERNAME_MAX_LENGTH = 150
PASSWORD_MAX_LENGTH = 1024


class TokenObtainSerializer(serializers.Serializer):
    username = StrictCharField(max_length=USERNAME_MAX_LENGTH, validators=[printable_text])
    # Taken as sent: spaces in a password are part of it.
    password = PasswordField(max_length=PASSWORD_MAX_LENGTH, trim_whitespace=False, write_only=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        # DRF deep-copies the declared fields for every serializer. Shallow copies are enough for
        # these: bind() sets its attributes on the copy, and no field changes while validating.
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        token = SumAccessToken.for_subject(attrs["username"])
        metrics.count_token_issued()
        lifetime = simplejwt_settings.api_settings.ACCESS_TOKEN_LIFETIME
        return {
            "access_token": str(token),
            "token_type": "Bearer",
            "expires_in": int(lifetime.total_seconds()),
        }
