from django.urls import path

from api import views

urlpatterns = [
    path("auth", views.TokenObtainView.as_view(), name="auth"),
    path("sum", views.SumView.as_view(), name="sum"),
    path("healthz", views.HealthView.as_view(), name="healthz"),
]

handler400 = "api.exceptions.bad_request"
handler404 = "api.exceptions.not_found"
handler500 = "api.exceptions.server_error"
