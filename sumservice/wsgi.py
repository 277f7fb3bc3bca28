"""Django's WSGI application: what sumservice.asgi serves to gunicorn's workers (in the event
loop or a thread), and what `manage.py runserver` serves in development."""

import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sumservice.settings")

application = get_wsgi_application()
# Import the URLconf, and with it the views, DRF and drf-spectacular (~50 ms), now rather than in
# the first request a worker serves: loaded once in gunicorn's master, every worker has them.
import_module(settings.ROOT_URLCONF)
