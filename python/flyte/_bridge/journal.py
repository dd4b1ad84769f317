"""The durable record of a local run, in the data dir's backend database, and its cache."""

from flyte._core import RunConflictError, RunJournal, drain_journals

__all__ = ["RunConflictError", "RunJournal", "drain_journals"]
