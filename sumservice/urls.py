from django.conf import settings
from django.urls import path

from api import schema, views
from api.metrics import metrics_view
from api.oidc import DISCOVERY_PATH, JWKS_PATH

urlpatterns = [
    path("auth", views.TokenObtainView.as_view(), name="auth"),
    path("sum", views.SumView.as_view(), name="sum"),
    path("healthz", views.HealthView.as_view(), name="healthz"),
    path(DISCOVERY_PATH, views.OpenIDConfigurationView.as_view(), name="openid-configuration"),
    path(JWKS_PATH, views.JWKSView.as_view(), name="jwks"),
    path("openapi.json", schema.SchemaJSONView.as_view(), name="schema"),
    path("openapi.yaml", schema.SchemaYAMLView.as_view(), name="schema-yaml"),
    path("metrics", metrics_view, name="metrics"),
]

if settings.SUMSERVICE["DOCS"]:
    urlpatterns += [
        path("docs/", schema.SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
        path("redoc/", schema.RedocView.as_view(url_name="schema"), name="redoc"),
    ]

handler400 = "api.error_views.bad_request"
handler404 = "api.error_views.not_found"
handler500 = "api.error_views.server_error"
