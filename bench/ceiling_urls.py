"""The framework ceiling: plain Django function views answering a constant JSON.

They take the same requests as /sum, /auth and /healthz (the body is left unread) and answer
a body shaped like /sum's, so that the difference to the service is DRF, SimpleJWT and the work.
Never part of the service's URLs.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

_ANSWER = {
    "sha256": "4a44dc15364204a80fe80e9039455cc1608281820fe2b24f1e5233ade6af1dd5",
    "sum": "10",
}


def constant(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_ANSWER)


urlpatterns = [
    path("sum", constant),
    path("auth", constant),
    path("healthz", constant),
]
