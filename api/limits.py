"""The bounds on the work one number can cost, defined once: `settings.SUMSERVICE` takes them as
the defaults of SUMSERVICE_MAX_NUMBER_LENGTH and SUMSERVICE_MAX_EXPONENT, and `canonical_sum` as
the defaults of its own parameters; the largest bodies summed in a server's event loop; and how
much of a refused body is read. Pure constants: imported by the settings module."""

# Characters in one number literal: sign, digits, point and exponent all counted.
MAX_NUMBER_LENGTH = 10_000
# The written exponent (after `e`/`E`), either way.
MAX_EXPONENT = 10_000

# The largest body a server sums in its event loop (SUMSERVICE_INLINE_BODY_BYTES's default and
# maximum): the compiled kernel reads 1 MiB in a few milliseconds. Where the Python path sums
# (0.2-0.35 s per MiB, the GIL held), the loop sums bodies up to the second size only.
MAX_INLINE_BODY_BYTES = 1024 * 1024
PYTHON_PATH_INLINE_BODY_BYTES = 64 * 1024

# A body over its limit is still read, and dropped, up to this many times the limit before the
# 413 is sent: unread bytes left in the socket make the close a TCP reset, which clients may see
# instead of the 413. Beyond it, the connection is closed at once.
REFUSED_BODY_DRAIN_FACTOR = 4

# Documents over this size take the Python path one at a time in a process (api/summing.py);
# an event loop sums none that large on it (PYTHON_PATH_INLINE_BODY_BYTES, above, is smaller), so
# it never waits behind another sum.
PYTHON_PATH_ALONE_BYTES = 1024 * 1024
