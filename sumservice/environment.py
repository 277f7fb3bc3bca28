"""The service's knobs, read from the environment one way everywhere: sumservice/settings.py
reads Django's and the service's, gunicorn.conf.py gunicorn's.

A variable set to nothing (or to spaces) counts as unset, as `${VAR:-}` in a Compose file leaves
it, and gets the default. A value the knob cannot take stops the start with a message naming the
variable, rather than a traceback about `int()` or a server that quietly does something else.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def env_secret(name: str) -> str:
    """A secret, taken as sent (a trailing newline from a mounted file is part of it, as for
    every other holder of it); "" when unset or only spaces."""
    raw = os.environ.get(name, "")
    return raw if raw.strip() else ""


def env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    return value


def env_host(name: str, default: str) -> str:
    """An address to bind or to name in a URL: a name, an IPv4 address, or an IPv6 address in
    brackets ([::1]), as it is written before `:port`."""
    raw = os.environ.get(name, "").strip() or default
    if ":" in raw and not (raw.startswith("[") and raw.endswith("]")):
        raise ImproperlyConfigured(
            f"{name} must write an IPv6 address in brackets, as [::1] or [::]; got {raw!r}"
        )
    return raw


def bind_address() -> tuple[str, int]:
    """HOST and PORT: where gunicorn.conf.py binds, and what settings.py's default issuer names."""
    return env_host("HOST", "127.0.0.1"), env_int("PORT", 8000, minimum=1, maximum=65535)


def env_seconds(name: str, default: float) -> float:
    """A duration in seconds, whole or not; never negative."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 <= value < float("inf"):
        raise ImproperlyConfigured(f"{name} must be 0 or more seconds, got {raw}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate (`60/minute`), or None for `off`."""
    raw = env_str(name, default).lower()
    if raw == "off":
        return None
    if not _RATE.match(raw) or int(raw.split("/")[0]) < 1:
        raise ImproperlyConfigured(
            f"{name} must be N/period (period: second, minute, hour or day), e.g. 60/minute,"
            f" or off; got {raw!r}"
        )
    return raw


def env_choice(name: str, default: str, choices: Sequence[str]) -> str:
    """One of `choices`, written in any letter case; returned as `choices` spell it."""
    raw = env_str(name, default)
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
