"""Bench-only settings: the service's own settings with a URLconf of bare Django views.

Selected by DJANGO_SETTINGS_MODULE=bench.ceiling_settings, under the same gunicorn.conf.py, so
the framework ceiling goes through the same server, middleware and logging as the service.
"""

from sumservice.settings import *  # noqa: F403

ROOT_URLCONF = "bench.ceiling_urls"
