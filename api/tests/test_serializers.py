"""The token request's serializer on its own: the checks a client's fields go through."""

from __future__ import annotations

import copy

import jwt

from api.serializers import TokenObtainSerializer


def test_each_serializer_validates_with_fields_of_its_own() -> None:
    rejected = TokenObtainSerializer(data={"username": "a\x1b[2J", "password": " "})
    accepted = TokenObtainSerializer(data={"username": " alice ", "password": " secret "})

    assert accepted.is_valid()
    assert not rejected.is_valid()

    assert set(rejected.errors) == {"username", "password"}
    assert rejected.errors["username"][0].code == "unsafe_character"
    assert rejected.errors["password"][0].code == "blank"
    token = accepted.validated_data["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "alice"
    for field in ("username", "password"):
        assert rejected.fields[field] is not accepted.fields[field]
        assert rejected.fields[field].parent is rejected
        assert accepted.fields[field].parent is accepted


def test_a_copied_field_is_the_field_anew() -> None:
    declared = TokenObtainSerializer._declared_fields["username"]
    field = copy.copy(declared)
    assert type(field) is type(declared)
    assert field is not declared
    assert vars(field) == vars(declared)
    field.bind("username", TokenObtainSerializer())
    assert field.field_name == "username"
    assert declared.field_name is None  # the declared field stays unbound
    assert field.run_validation(" alice ") == "alice"
