from django.apps import AppConfig
from django.conf import settings


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Sum service API"

    def ready(self) -> None:
        engines = {database["ENGINE"] for database in settings.DATABASES.values()}
        if engines <= {"django.db.backends.dummy"}:
            # No database (Django fills in a dummy one): its per-request housekeeping would
            # only walk connections that are never opened (~5% of a small request's time).
            from django.core.signals import request_finished, request_started
            from django.db import close_old_connections, reset_queries

            request_started.disconnect(reset_queries)
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
