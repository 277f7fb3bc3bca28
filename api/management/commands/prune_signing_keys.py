"""manage.py prune_signing_keys: drop retired keys whose tokens have all expired."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework_simplejwt import settings as simplejwt_settings

from api.keys import prune_retired_keys, retired_at, retired_key_files
from api.management.commands._signing_keys import ROTATION_DOCS, state_folder_keys


def token_lifetime_with_leeway() -> float:
    """How long after a rotation a token signed with the retired key can still be accepted."""
    jwt_settings = simplejwt_settings.api_settings
    return jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds() + jwt_settings.LEEWAY


class Command(BaseCommand):
    help = (
        "Delete the state folder's signing keys retired at least the token lifetime plus "
        "leeway ago, so that no token they signed can still be valid. "
        "Then reload gunicorn (SIGHUP) so that it stops accepting and publishing them. "
        f"The whole procedure: {ROTATION_DOCS}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            metavar="SECONDS",
            help=(
                "Drop keys retired at least this many seconds ago instead (default: the token "
                "lifetime plus leeway). Less than that cuts short the tokens the keys signed: "
                "0 drops every retired key, e.g. one that has leaked."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        key_dir = state_folder_keys()
        older_than = options["older_than"]
        if older_than is None:
            older_than = token_lifetime_with_leeway()
        elif older_than < 0:
            raise CommandError("--older-than must be 0 or more seconds.")
        removed = prune_retired_keys(key_dir, older_than)
        for path in removed:
            self.stdout.write(f"Removed {path}")
        kept = retired_key_files(key_dir)
        for path in kept:
            self.stdout.write(f"Kept {path}{self._age(path)}")
        if removed:
            self.stdout.write(
                "Now reload the server so that it stops accepting and publishing the removed "
                "keys:\n    kill -HUP <gunicorn master pid>   (or restart it)"
            )
        else:
            self.stdout.write(f"No key was retired {older_than:g} s ago or more: nothing removed.")

    @staticmethod
    def _age(path: Path) -> str:
        retired = retired_at(path)
        if retired is None:
            return " (no retirement time in its name: never pruned)"
        return f" (retired {time.time() - retired:.0f} s ago)"
