"""The program a backend runs for each attempt of a task action: ``flyte-action`` (also ``python -m flyte._runtime``)."""
