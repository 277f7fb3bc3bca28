import logging

from django.apps import AppConfig
from django.conf import settings
from django.core.signals import request_finished, request_started


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Sum service API"

    def ready(self) -> None:
        from api import summing
        from api.cache import closes_nothing

        if not settings.SUMSERVICE["SUM_KERNEL"]:
            summing.use_python_path()
        # Once per process that loads the app (gunicorn's master, before its workers fork).
        limits = (settings.SUMSERVICE["MAX_NUMBER_LENGTH"], settings.SUMSERVICE["MAX_EXPONENT"])
        if summing.backend(*limits) == "kernel":
            path = "the compiled kernel"
        elif summing.backend() == "kernel":
            path = (
                "the pure-Python path: SUMSERVICE_MAX_NUMBER_LENGTH or SUMSERVICE_MAX_EXPONENT"
                f" is beyond the compiled kernel's limit of {summing.KERNEL_MAX_LIMIT}"
            )
        else:
            path = "the pure-Python path"
        logging.getLogger("api.summing").info("Summing with %s", path)

        engines = {database["ENGINE"] for database in settings.DATABASES.values()}
        if engines <= {"django.db.backends.dummy"}:
            # No database (Django fills in a dummy one): its per-request housekeeping would
            # only walk connections that are never opened (~5% of a small request's time).
            from django.db import close_old_connections, reset_queries

            request_started.disconnect(reset_queries)
            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)

        if all(closes_nothing(cache["BACKEND"]) for cache in settings.CACHES.values()):
            # Nor a cache to close (Redis keeps a pool of connections, diskcache its SQLite
            # ones): Django's receiver would walk the caches after every request, for nothing.
            from django.core.cache import close_caches

            request_finished.disconnect(close_caches)
