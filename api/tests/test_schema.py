"""GET /openapi.json and /openapi.yaml, and the Swagger UI and Redoc pages that show them."""

from __future__ import annotations

import re
import sys
from typing import Any
from unittest import mock

import pytest
import yaml
from django.conf import settings
from django.test import Client, override_settings
from django.urls import get_resolver
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

from api.schema import SPACE
from api.tests.utils import post_sum

# The contract's statuses, and what every DRF endpoint answers besides: 404 for a ?format= it
# does not know, 405 for another method, 406 for an Accept header nothing meets.
EVERY_ENDPOINT = {"404", "405", "406"}
CONTRACT_STATUSES = {
    ("/auth", "post"): {"200", "400", "413", "415", "429"} | EVERY_ENDPOINT,
    ("/sum", "post"): {"200", "400", "401", "413", "415", "422", "429"} | EVERY_ENDPOINT,
    ("/healthz", "get"): {"200"} | EVERY_ENDPOINT,
    ("/.well-known/openid-configuration", "get"): {"200"} | EVERY_ENDPOINT,
    ("/.well-known/jwks.json", "get"): {"200"} | EVERY_ENDPOINT,
}


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    return response.json()


def test_the_schema_is_valid_openapi_3(schema: dict[str, Any]) -> None:
    validate(schema)  # raises OpenAPIValidationError, naming what is wrong
    assert schema["openapi"].startswith("3.")


def test_the_schema_names_every_path_and_status(schema: dict[str, Any]) -> None:
    operations = {
        (path, method): set(operation["responses"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    # GET /metrics (issue 12's), where it is served: every endpoint is in the schema (below).
    operations.pop(("/metrics", "get"), None)
    assert operations == CONTRACT_STATUSES


@pytest.mark.parametrize(("path", "method"), sorted(CONTRACT_STATUSES))
def test_the_refusals_every_endpoint_gives_are_in_its_schema(
    client: Client, schema: dict[str, Any], path: str, method: str
) -> None:
    def send(verb: str, url: str, **headers: str) -> str:
        return str(client.generic(verb, url, b"{}", "application/json", **headers).status_code)

    answered = {
        send("PUT", path),
        send(method.upper(), path, HTTP_ACCEPT="text/plain"),
        send(method.upper(), path + "?format=xml"),
    }
    assert answered == EVERY_ENDPOINT
    assert answered <= set(schema["paths"][path][method]["responses"])


def test_metrics_other_methods_are_in_its_schema(client: Client, schema: dict[str, Any]) -> None:
    refused = client.post("/metrics")
    assert refused.status_code == 405 and refused["Allow"]
    responses = schema["paths"]["/metrics"]["get"]["responses"]
    assert "405" in responses and "Allow" in responses["405"]["headers"]


def test_every_endpoint_served_is_in_the_schema(schema: dict[str, Any]) -> None:
    pages = {"schema", "schema-yaml", "swagger-ui", "redoc"}  # the schema and its viewers
    served = {
        "/" + str(pattern.pattern)
        for pattern in get_resolver().url_patterns
        if pattern.name not in pages
    }
    assert served == set(schema["paths"])


def test_sum_takes_a_bearer_token_and_any_json_document(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"] == {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The `access_token` from `POST /auth`.",
        }
    }
    operation = schema["paths"]["/sum"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    body = operation["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == {"application/json"}
    # No "type": a document of any type (object, array, number, string, boolean, null).
    assert "type" not in body["content"]["application/json"]["schema"]
    assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert operation["responses"]["405"]["headers"]["Allow"]["required"] is True
    assert answer_schema(schema, "/sum")["required"] == ["sha256", "sum"]


def test_the_other_endpoints_need_no_token(schema: dict[str, Any]) -> None:
    for path in ["/auth", "/healthz", "/.well-known/openid-configuration"]:
        for operation in schema["paths"][path].values():
            # An operation without its own `security` has the document's.
            assert operation.get("security", schema.get("security", [{}])) == [{}]


def test_auth_takes_two_required_non_blank_strings(schema: dict[str, Any]) -> None:
    body = schema["paths"]["/auth"]["post"]["requestBody"]
    assert body["required"] is True
    request = body["content"]["application/json"]["schema"]
    assert request["required"] == ["username", "password"]
    username = re.compile(request["properties"]["username"]["pattern"])
    for accepted in ["a", " alice ", "x" * 150, "  " + "x" * 150 + "\n", "a b"]:
        assert username.search(accepted), accepted
    for refused in ["", " ", "\t\n", "x" * 151, " " + "x" * 151, "a\x00b", "\x1d\x85\u3000"]:
        assert not username.search(refused), refused
    password = request["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (1, 1024)
    assert re.search(password["pattern"], " secret ")
    assert not re.search(password["pattern"], "   ")
    assert re.search(password["pattern"], "se\x00cret")  # taken as sent
    headers = schema["paths"]["/auth"]["post"]["responses"]["200"]["headers"]
    assert headers["Cache-Control"]["required"] is True
    assert answer_schema(schema, "/auth")["required"] == [
        "access_token",
        "token_type",
        "expires_in",
    ]


def answer_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of the 200 answer to POST `path`."""
    return schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]


def test_the_schema_patterns_match_real_answers(
    client: Client, schema: dict[str, Any], token: str
) -> None:
    properties = answer_schema(schema, "/sum")["properties"]
    for document in ["[1,2,3,4]", "[0.1, 0.2]", "[-1, 0.5]", "[]", "[1e-6]", "[-7]"]:
        answer = post_sum(client, document, token).json()
        for name in ("sha256", "sum"):
            assert re.search(properties[name]["pattern"], answer[name]), (document, answer)
    token_pattern = answer_schema(schema, "/auth")["properties"]["access_token"]["pattern"]
    assert re.search(token_pattern, token)


def test_the_schema_spells_out_the_whitespace_python_trims() -> None:
    spaces = "".join(char for char in map(chr, range(sys.maxunicode + 1)) if char.isspace())
    assert re.fullmatch(f"[{SPACE}]+", spaces)
    assert not re.search(f"[{SPACE}]", "".join(set(map(chr, range(0x3001))) - set(spaces)))


def test_the_yaml_schema_is_the_same(client: Client, schema: dict[str, Any]) -> None:
    response = client.get("/openapi.yaml")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi;")
    assert yaml.safe_load(response.content) == schema


# ---------------------------------------------------------------------------------------------
# The pages


def local_resources(html: str) -> list[str]:
    """Every src and href of the page; each must be a path on this server."""
    return re.findall(r'(?:src|href)="([^"]*)"', html)


@pytest.mark.parametrize(
    ("path", "marker"),
    [("/docs/", "swagger-ui-bundle.js"), ("/redoc/", "redoc.standalone.js")],
)
def test_the_docs_pages_load_everything_from_this_server(
    client: Client, path: str, marker: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    # The browser refuses whatever a script of theirs would fetch from elsewhere.
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "script-src 'self';" in response["Content-Security-Policy"]
    html = response.content.decode()
    assert marker in html
    assert "<script>" not in html  # no inline script: the policy allows none
    resources = local_resources(html)
    assert resources
    for url in resources:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url


def test_swagger_ui_starts_from_the_schema(client: Client) -> None:
    response = client.get("/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert 'url: "/openapi.json"' in response.content.decode()


def test_the_schema_is_generated_once_for_every_asker(client: Client) -> None:
    """Generating it costs milliseconds on an open endpoint: done once per process (and again
    when settings change), whoever asks, in whichever format, with whatever query (the API has
    one version: `?version=` would otherwise write its text into info.version)."""
    generate = SchemaGenerator.get_schema
    with (
        override_settings(SPECTACULAR_SETTINGS=settings.SPECTACULAR_SETTINGS),  # starts afresh
        mock.patch.object(
            SchemaGenerator, "get_schema", autospec=True, side_effect=generate
        ) as spy,
    ):
        first = client.get("/openapi.json")
        again = client.get("/openapi.json?version=9.9", HTTP_X_FORWARDED_PROTO="https")
        as_yaml = client.get("/openapi.yaml")
    assert [first.status_code, again.status_code, as_yaml.status_code] == [200, 200, 200]
    assert again.content == first.content
    assert yaml.safe_load(as_yaml.content) == first.json()
    assert spy.call_count == 1
