"""CRDS set-up for running the JWST pipeline without a network (tests, demo, air-gapped sites).

``crds`` fixes its server URL when it is first imported and caches what it learns from the
cache directory, so :func:`configure_offline` must run **before** ``jwst`` or ``crds`` is
imported in the process (in a worker pool: in each worker, before importing the pipeline).

In off-line mode every reference file a run needs must be given as an override (a path, or
``'N/A'`` where the step works without it); CRDS is then only asked for its context name,
which the minimal ``server_config`` written here answers without any network traffic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from refsmith.errors import RefsmithError
from refsmith.util.files import atomic_write_text

SERVERLESS_URL = "https://jwst-serverless-mode.stsci.edu"
"""A CRDS server URL for which crds never opens a connection (serverless mode)."""

OFFLINE_CONTEXT = "jwst_0000.pmap"
"""The CRDS context name recorded in products made off-line (no such context is needed)."""

DEFAULT_CRDS_TIMEOUT_SECONDS = 30
"""Default bound on one CRDS network request when a real server is used (crds default: 3600)."""

_SERVER_CONFIG = {
    "observatory": "jwst",
    "operational_context": OFFLINE_CONTEXT,
    "latest_context": OFFLINE_CONTEXT,
    "edit_context": OFFLINE_CONTEXT,
    "last_synced": "2000-01-01 00:00:00",
    "bad_files_list": [],
    "bad_files": "",
    "force_remote_mode": False,
}


class OfflineConfigError(RefsmithError):
    """CRDS is already configured differently in this process; off-line mode cannot be set."""


def server_config_path(crds_path: Path) -> Path:
    """Where crds looks for the cached server configuration under ``crds_path``."""
    return Path(crds_path) / "config" / "jwst" / "server_config"


def offline_environment(crds_path: Path) -> dict[str, str]:
    """The environment variables that put crds/stpipe in off-line mode for ``crds_path``.

    Parameters
    ----------
    crds_path : Path
        The CRDS cache directory (need not exist yet).

    Returns
    -------
    dict of str to str
        ``CRDS_PATH``, ``CRDS_SERVER_URL``, ``CRDS_MODE`` and ``STPIPE_DISABLE_CRDS_STEPPARS``.
    """
    return {
        "CRDS_PATH": str(Path(crds_path).expanduser().resolve()),
        "CRDS_SERVER_URL": SERVERLESS_URL,
        # compute best references locally; 'remote' would need the server
        "CRDS_MODE": "local",
        # do not ask CRDS for step parameter (pars-*) reference files
        "STPIPE_DISABLE_CRDS_STEPPARS": "True",
    }


def _write_server_config(crds_path: Path) -> None:
    """Write the minimal ``server_config`` atomically, unless it already has this content."""
    target = server_config_path(crds_path)
    content = repr(_SERVER_CONFIG) + "\n"
    try:
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, content)
    except OSError as exc:
        raise OfflineConfigError(
            f"cannot write the off-line CRDS configuration {target}: {exc.strerror or exc}; "
            "choose a writable CRDS cache directory"
        ) from exc


def _check_loaded_crds(wanted: dict[str, str]) -> None:
    """Raise if crds is already imported with settings other than ``wanted``."""
    if "crds" not in sys.modules:
        return
    problems = []
    current_path = os.environ.get("CRDS_PATH")
    if current_path is None or Path(current_path).expanduser().resolve() != Path(
        wanted["CRDS_PATH"]
    ):
        problems.append(f"CRDS_PATH is {current_path!r}, not {wanted['CRDS_PATH']!r}")
    try:
        from crds.client import api

        server = api.get_crds_server()
    except Exception:  # crds half-imported or changed: fall back on the environment
        server = os.environ.get("CRDS_SERVER_URL", "")
    if server.rstrip("/") != wanted["CRDS_SERVER_URL"]:
        problems.append(f"the CRDS server is {server!r}, not {wanted['CRDS_SERVER_URL']!r}")
    if problems:
        raise OfflineConfigError(
            "cannot switch to off-line CRDS mode: crds was already imported in this process "
            f"with other settings ({'; '.join(problems)}). Call "
            "refsmith.calibrate.offline.configure_offline() before importing jwst or crds, or set "
            + ", ".join(f"{k}={v}" for k, v in wanted.items())
            + " in the environment before starting Python."
        )


def configure_offline(crds_path: Path) -> dict[str, str]:
    """Prepare this process to run the JWST pipeline with no CRDS server.

    Creates ``<crds_path>/config/jwst/server_config`` (a minimal server description; the
    pipeline asks CRDS for the context after every step even when all reference files are
    overridden, and crds calls ``sys.exit`` when the file is missing) and sets the
    environment variables of :func:`offline_environment` in ``os.environ``, so that child
    processes inherit them too.

    Must be called before ``jwst`` or ``crds`` is imported. Calling it again with the same
    path is harmless.

    Parameters
    ----------
    crds_path : Path
        CRDS cache directory to use (created if needed).

    Returns
    -------
    dict of str to str
        The environment variables that were set.

    Raises
    ------
    OfflineConfigError
        If crds is already imported with another cache or server, or the directory is not
        writable.
    """
    wanted = offline_environment(Path(crds_path))
    _check_loaded_crds(wanted)
    _write_server_config(Path(wanted["CRDS_PATH"]))
    os.environ.update(wanted)
    return wanted


def local_crds_rules_available() -> bool:
    """Whether crds can choose reference files for jwst in this process.

    False when crds is configured serverless (``CRDS_SERVER_URL`` unset or containing
    'serverless') and the cache (``CRDS_PATH``) holds no jwst ``.pmap`` rules, as after
    :func:`configure_offline`: then only overridden reference types can be resolved.
    """
    url = os.environ.get("CRDS_SERVER_URL", "https://crds-serverless-mode.stsci.edu")
    if "serverless" not in url:
        return True
    crds_path = os.environ.get("CRDS_PATH")
    if not crds_path:
        return False
    mappings = Path(crds_path).expanduser() / "mappings" / "jwst"
    return mappings.is_dir() and any(mappings.glob("*.pmap"))


def bounded_crds_timeout(seconds: float = DEFAULT_CRDS_TIMEOUT_SECONDS) -> dict[str, str]:
    """Bound each CRDS network request to ``seconds`` (on-line use).

    crds waits up to ``CRDS_CLIENT_TIMEOUT_SECONDS`` (default 3600 s) per request, so an
    unreachable server would stall each job for an hour. crds reads this variable at every
    request, so this can be called at any time; a smaller value already set is kept.

    Parameters
    ----------
    seconds : float, optional
        The bound in seconds (rounded up to a whole second, at least 1).

    Returns
    -------
    dict of str to str
        ``{"CRDS_CLIENT_TIMEOUT_SECONDS": value}`` as now set in ``os.environ``.

    Raises
    ------
    ValueError
        If ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"the CRDS timeout must be positive, got {seconds!r}")
    bound = max(1, int(-(-seconds // 1)))
    current = os.environ.get("CRDS_CLIENT_TIMEOUT_SECONDS", "")
    try:
        if 0 < int(current) < bound:
            bound = int(current)
    except ValueError:
        pass
    os.environ["CRDS_CLIENT_TIMEOUT_SECONDS"] = str(bound)
    return {"CRDS_CLIENT_TIMEOUT_SECONDS": str(bound)}
