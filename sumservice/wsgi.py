"""WSGI entry point: `gunicorn sumservice.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")

application = get_wsgi_application()
