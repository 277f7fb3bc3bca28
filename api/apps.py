import logging

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "Sum service API"

    def ready(self) -> None:
        from django.conf import settings

        from api import summing

        if not settings.SUMSERVICE["SUM_KERNEL"]:
            summing.use_python_path()
        # Once per process that loads the app (gunicorn's master, before its workers fork).
        paths = {"kernel": "the compiled kernel", "python": "the pure-Python path"}
        logging.getLogger("api.summing").info("Summing with %s", paths[summing.backend()])
