"""The git repository the code comes from: ``GitStatus.from_current_repo()`` (commit, clean or
not, remote as HTTPS) builds links to the source of a task, and ``config_from_root()`` reads
the configuration kept at the repository's root."""

from __future__ import annotations

from flyte.git._status import GitStatus, config_from_root

__all__ = ["GitStatus", "config_from_root"]
