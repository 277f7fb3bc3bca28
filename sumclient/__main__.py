"""``python -m sumclient``: the command line of :mod:`sumclient.cli`."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
