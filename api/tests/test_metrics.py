"""GET /metrics in-process (one process: the default registry): format, labels, the switch."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django.test.utils import override_settings
from prometheus_client.parser import text_string_to_metric_families

from api.tests.utils import issue_token, post_sum


def samples(client: Client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def requests_counted(metrics: dict, endpoint: str, method: str, status: str) -> float:
    labels = (("endpoint", endpoint), ("method", method), ("status", status))
    return metrics.get(("sumservice_http_requests_total", labels), 0)


def test_requests_are_counted_by_endpoint_method_and_status(client: Client) -> None:
    before = samples(client)
    token = issue_token(client)
    for _ in range(3):
        assert post_sum(client, "[1, 2]", token).status_code == 200
    assert post_sum(client, "[1, 2]", None).status_code == 401
    assert client.get("/no/such/path").status_code == 404
    assert client.generic("BREW", "/sum").status_code == 405
    after = samples(client)

    def delta(*labels: str) -> float:
        return requests_counted(after, *labels) - requests_counted(before, *labels)

    assert delta("sum", "POST", "200") == 3
    assert delta("sum", "POST", "401") == 1
    assert delta("auth", "POST", "200") == 1
    # Label values come from a fixed set, whatever the client sends.
    assert delta("none", "GET", "404") == 1
    assert delta("sum", "other", "405") == 1
    duration = ("sumservice_http_request_duration_seconds_count", (("endpoint", "sum"),))
    assert after[duration] - before.get(duration, 0) == 5
    tokens = ("sumservice_tokens_issued_total", ())
    assert after[tokens] - before.get(tokens, 0) == 1
    sizes = ("sumservice_sum_request_body_bytes_sum", ())
    assert after[sizes] - before.get(sizes, 0) == 3 * len("[1, 2]")


def test_rate_limit_refusals_are_counted(client: Client, settings: Any) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"auth": "1/minute", "sum": None},
    }
    key = ("sumservice_rate_limited_requests_total", (("scope", "auth"),))
    before = samples(client).get(key, 0)
    issue_token(client)
    for _ in range(2):
        response = client.post(
            "/auth", {"username": "a", "password": "b"}, content_type="application/json"
        )
        assert response.status_code == 429
    assert samples(client)[key] - before == 2


def test_metrics_can_be_turned_off(settings: Any) -> None:
    with override_settings(SUMSERVICE={**settings.SUMSERVICE, "METRICS": False}):
        response = Client().get("/metrics")
    assert response.status_code == 404
    assert "SUMSERVICE_METRICS" in response.json()["detail"]


def test_metrics_answer_get_only(client: Client) -> None:
    response = client.post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
