"""manage.py rotate_signing_key: a new signing key in the state folder, the old one retired."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from api.keys import load_key_file, rotate_state_key
from api.management.commands._signing_keys import ROTATION_DOCS, algorithm, state_folder_keys


class Command(BaseCommand):
    help = (
        "Retire the state folder's signing key into keys/retired (it still verifies, and stays "
        "published, until prune_signing_keys drops it) and create a new signing key. "
        "Then reload gunicorn (SIGHUP) so that it signs with the new key. "
        f"The whole procedure: {ROTATION_DOCS}."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        key_dir = state_folder_keys()
        try:
            retired, current = rotate_state_key(key_dir, algorithm())
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        old_kid = load_key_file(retired, algorithm()).kid
        new_kid = load_key_file(current, algorithm()).kid
        self.stdout.write(f"Retired key {old_kid}: {retired}")
        self.stdout.write(f"New signing key {new_kid}: {current}")
        # The running server read its keys at start: until it reloads, it signs with the old
        # key and does not yet accept tokens signed with the new one.
        self.stdout.write(
            "Now reload the server so that it signs with the new key and accepts both:\n"
            "    kill -HUP <gunicorn master pid>   (or restart it)\n"
            "Tokens signed with the old key stay valid until they expire; after the token "
            "lifetime, run `manage.py prune_signing_keys` and reload again."
        )
