"""Local mode: running a whole run inside this process."""
