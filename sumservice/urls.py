from django.urls import path

from api import views
from api.oidc import DISCOVERY_PATH, JWKS_PATH

urlpatterns = [
    path("auth", views.TokenObtainView.as_view(), name="auth"),
    path("sum", views.SumView.as_view(), name="sum"),
    path("healthz", views.HealthView.as_view(), name="healthz"),
    path(DISCOVERY_PATH, views.OpenIDConfigurationView.as_view(), name="openid-configuration"),
    path(JWKS_PATH, views.JWKSView.as_view(), name="jwks"),
]

handler400 = "api.error_views.bad_request"
handler404 = "api.error_views.not_found"
handler500 = "api.error_views.server_error"
