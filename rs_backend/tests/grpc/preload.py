"""Run in the tests' fork server (the SDK's, with --program) before it serves: marks its
children as forked, and holds FAKE_BALLAST_MB MiB of touched memory that every child shares
copy-on-write."""

import os

# Children inherit the server's environment, so the fake runtime can say who forked it.
os.environ["FAKE_FORKED"] = str(os.getpid())
ballast = b"\x01" * (int(os.environ.get("FAKE_BALLAST_MB", "0")) * 1024 * 1024)
