"""The ``refsmith`` command line (thin: parse, call, print); errors are caught once, here.

``commands`` (one function per sub-command, :func:`main`), ``parser`` (the argparse
parser: sub-commands, options, examples), ``columns`` (aligned text tables), ``explain``
(``refsmith explain``), ``compare`` (``refsmith compare``) and ``demo`` (``refsmith
demo``). The console script is ``refsmith.cli:main``; ``python -m refsmith.cli`` runs the
same.
"""

from refsmith.util.lazy import lazy_exports

_WHERE = {"main": "commands"}

__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(globals(), _WHERE)
