"""DRF's browsable API, made usable for endpoints that take a Bearer token."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from rest_framework import exceptions, renderers

if TYPE_CHECKING:  # rest_framework.views imports the renderers named in the settings
    from rest_framework.request import Request
    from rest_framework.views import APIView


def takes_bearer_token(view: APIView, request: Request) -> bool:
    """Whether one of the view's authenticators reads `Authorization: Bearer` (the scheme its
    WWW-Authenticate challenge names)."""
    return any(
        (authenticator.authenticate_header(request) or "").lower().startswith("bearer ")
        for authenticator in view.get_authenticators()
    )


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API, with a token box on the pages of views that take a Bearer token
    (rest_framework/api.html and api/static/api/bearer-token.js send it with the page's forms).

    DRF hides a form whose permission check fails; a page opened without a token lacks only the
    credentials the token box supplies, so such a form is shown all the same. Whoever submits it
    without a valid token gets the endpoint's 401.
    """

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        request = (renderer_context or {}).get("request")
        if request is not None:
            # The page shows the user, and a view that refused the request before authenticating
            # it (a 405) leaves that to the page: a token that does not authenticate is nobody
            # here, not an error while rendering (DRF keeps None as the user after it fails).
            with contextlib.suppress(exceptions.APIException):
                request.user  # noqa: B018
        return super().render(data, accepted_media_type, renderer_context)

    def show_form_for_method(self, view: APIView, method: str, request: Request, obj: Any) -> bool:
        if method not in view.allowed_methods:
            return False
        try:
            view.check_permissions(request)
            if obj is not None:
                view.check_object_permissions(request, obj)
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
            return takes_bearer_token(view, request)
        except exceptions.APIException:
            return False
        return True

    def get_context(self, data: Any, accepted_media_type: str, renderer_context: dict) -> dict:
        context = super().get_context(data, accepted_media_type, renderer_context)
        view, request = renderer_context["view"], renderer_context["request"]
        response = renderer_context["response"]
        context["bearer_token_box"] = takes_bearer_token(view, request)
        # A page opened in a browser (GET) on an endpoint that only takes POST: it says how to
        # use the form rather than only the 405 an API client gets.
        context["post_only_first_view"] = (
            request.method == "GET"
            and response.status_code == 405
            and "POST" in view.allowed_methods
        )
        if response.status_code == 200 and isinstance(data, dict):
            # The answer of POST /auth: the page offers to keep the token for /sum's pages.
            context["issued_token"] = data.get("access_token")
        return context
