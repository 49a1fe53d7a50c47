"""Test-session set-up shared by every test module.

The tests follow the package's stages (``tests/catalog``, ``tests/grouping``...); the
helper modules they import by name (``ramps``, ``run_dataset``, ``scripted_executor``, the
plug-ins configs name as ``example_plugin:MedianBias`` or ``fault_plugins:Holds``) stay
here at the top, and this directory is put on ``sys.path``. Test module names are unique
(pytest's default import mode).

Off-line CRDS must be configured before ``jwst`` or ``crds`` is imported anywhere in the
test process (crds reads its environment once, at import), so it is done here, first.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from refsmith.calibrate.offline import configure_offline

TESTS = Path(__file__).parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

CRDS_DIR = Path(
    os.environ.get("REFSMITH_TEST_CRDS_PATH")
    or Path(tempfile.gettempdir()) / f"refsmith-test-crds-{os.getuid()}"
)


def pytest_configure(config) -> None:
    configure_offline(CRDS_DIR)
