from django.apps import AppConfig
from django.conf import settings


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Sum service API"

    def ready(self) -> None:
        if not settings.DATABASES:
            # No database: Django's per-request database housekeeping would only walk an
            # empty list of connections, twice a request (~5% of a small request's time).
            from django.core.signals import request_finished, request_started
            from django.db import close_old_connections, reset_queries

            request_started.disconnect(reset_queries)
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
