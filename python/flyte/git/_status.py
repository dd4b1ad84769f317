"""Asking git about the working copy (by running ``git``; no library needed)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyte._config import load_config

#: How a web host addresses one file at one commit (``{remote}``, ``{sha}``, ``{path}``).
_BLOB_URLS = {
    "github.com": "{remote}/blob/{sha}/{path}",
    "gitlab.com": "{remote}/-/blob/{sha}/{path}",
}


def _git(*args: str, cwd: Path | None = None) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=False, cwd=cwd, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def https_url(url: str) -> str:
    """A remote's URL as the web page of the repository: ``git@host:org/repo.git`` and
    ``ssh://git@host/org/repo`` become ``https://host/org/repo``."""
    url = url.strip()
    scp = re.fullmatch(r"[\w.-]+@([\w.-]+):(.+)", url)
    if scp:
        url = f"https://{scp.group(1)}/{scp.group(2)}"
    url = re.sub(r"^(ssh|git)://(?:[\w.-]+@)?", "https://", url)
    url = re.sub(r"^https://[^/@]+@", "https://", url)  # credentials are not part of a link
    return url.removesuffix(".git").rstrip("/")


@dataclass(frozen=True)
class GitStatus:
    """What git says of the working copy; ``is_valid`` only when every part was found."""

    is_valid: bool = False
    is_tree_clean: bool = False
    remote_url: str = ""
    repo_dir: Path = Path()
    commit_sha: str = ""

    @classmethod
    def from_current_repo(cls) -> GitStatus:
        """The repository of the current directory; ``is_valid=False`` outside one (or without git)."""
        root = _git("rev-parse", "--show-toplevel")
        if root is None:
            return cls()
        repo_dir = Path(root)
        sha = _git("rev-parse", "HEAD", cwd=repo_dir)
        if sha is None:
            return cls(repo_dir=repo_dir)
        status = _git("status", "--porcelain", cwd=repo_dir)
        if status is None:
            return cls(repo_dir=repo_dir, commit_sha=sha)
        clean = status == ""
        remote = _git("remote", "get-url", "--push", "origin", cwd=repo_dir)
        if remote is None:
            others = sorted((_git("remote", cwd=repo_dir) or "").split())
            remote = _git("remote", "get-url", "--push", others[0], cwd=repo_dir) if others else None
        if not remote:
            return cls(is_tree_clean=clean, repo_dir=repo_dir, commit_sha=sha)
        return cls(True, clean, https_url(remote), repo_dir, sha)

    def build_url(self, path: str | Path, line_number: int) -> str:
        """A link to ``path`` (absolute, or relative to the repository) at this commit, to the
        line when the tree is clean (otherwise the line may not be the same); ``""`` when the
        repository or its host is unknown."""
        if not self.is_valid:
            return ""
        file = Path(path)
        try:
            relative = file.resolve().relative_to(self.repo_dir.resolve()) if file.is_absolute() else file
        except ValueError:
            return ""
        host = self.remote_url.split("://", 1)[-1].split("/", 1)[0]
        template = _BLOB_URLS.get(host)
        if template is None:
            return ""
        url = template.format(remote=self.remote_url, sha=self.commit_sha, path=relative.as_posix())
        return f"{url}#L{line_number}" if self.is_tree_clean else url


def config_from_root(path: str | Path = ".flyte/config.yaml") -> Any:
    """The configuration in ``path`` under the repository's root, or None when the current
    directory is not in a repository or the file is not there."""
    root = _git("rev-parse", "--show-toplevel")
    if root is None:
        return None
    file = Path(root) / path
    return load_config(file) if file.is_file() else None
