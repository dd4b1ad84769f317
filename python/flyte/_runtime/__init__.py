"""The program a backend runs for each attempt of a task action: ``python -m flyte._runtime``."""
