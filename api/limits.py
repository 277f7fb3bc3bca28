"""The bounds on the work one number can cost, defined once: `settings.SUMSERVICE` takes them as
the defaults of SUMSERVICE_MAX_NUMBER_LENGTH and SUMSERVICE_MAX_EXPONENT, and `canonical_sum` as
the defaults of its own parameters; and the largest body summed in a server's event loop. Pure
constants: imported by the settings module."""

# Characters in one number literal: sign, digits, point and exponent all counted.
MAX_NUMBER_LENGTH = 10_000
# The written exponent (after `e`/`E`), either way.
MAX_EXPONENT = 10_000

# Documents over this size take the Python path one at a time in a process (api/summing.py): an
# event loop, which must never wait behind another sum, sums no larger ones itself.
PYTHON_PATH_ALONE_BYTES = 1024 * 1024
