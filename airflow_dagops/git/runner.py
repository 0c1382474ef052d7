"""Run git safely: no prompts, allowed transports only, a timeout, and redacted errors."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from airflow_dagops import settings
from airflow_dagops.errors import GitError, GitTimeout
from airflow_dagops.git.errors import last_lines

log = logging.getLogger(__name__)

# Variables a caller's environment may set that would change what git does with our commands.
_INHERITED_GIT_VARS_TO_DROP = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG_PARAMETERS",
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git we start: never prompting, allowed transports only, stable English."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_GIT_VARS_TO_DROP}
    env.update(extra or {})
    env.update(
        {
            # Never wait for a human: a missing credential must fail fast, not hang a worker slot.
            "GIT_TERMINAL_PROMPT": "0",
            "GCM_INTERACTIVE": "never",
            "GIT_ASKPASS": env.get("GIT_ASKPASS", "true"),
            "SSH_ASKPASS_REQUIRE": env.get("SSH_ASKPASS_REQUIRE", "never"),
            # ext:: and friends run arbitrary commands; only the listed transports are allowed,
            # also for submodules and redirects.
            "GIT_ALLOW_PROTOCOL": ":".join(settings.allowed_protocols()),
            "GIT_PROTOCOL_FROM_USER": "0",
            # Stable English messages, so errors can be classified.
            "LC_ALL": "C",
            "LANG": "C",
        }
    )
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git <args>`; raise GitError (with redacted stderr) on failure or timeout."""
    timeout = timeout if timeout is not None else settings.get_int("git_timeout")
    command = ["git", *args]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env if env is not None else git_env(),
            input=input,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise GitTimeout(f"git {args[0]} timed out after {timeout:.0f}s (see [dagops] git_timeout)") from err
    except FileNotFoundError as err:
        raise GitError("git is not installed or not on PATH; install git on every Airflow machine") from err
    if check and result.returncode != 0:
        raise GitError(f"git {args[0]} failed: {last_lines(result.stderr)}")
    return result
