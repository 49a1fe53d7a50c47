"""Test-session set-up shared by every test module.

Off-line CRDS must be configured before ``jwst`` or ``crds`` is imported anywhere in the
test process (crds reads its environment once, at import), so it is done here, first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from refsmith.calibrate.offline import configure_offline

CRDS_DIR = Path(
    os.environ.get("REFSMITH_TEST_CRDS_PATH")
    or Path(tempfile.gettempdir()) / f"refsmith-test-crds-{os.getuid()}"
)


def pytest_configure(config) -> None:
    configure_offline(CRDS_DIR)
