"""Real SIP callers and phones for tests, played by SIPp: the runtime module ``sandbox.sipp``
(shared with the demo), re-exported under the names the tests have always imported.

Scenarios are the templates in ``config/sipp/``; see ``sandbox.sipp`` for how they are rendered,
run and logged.
"""

from __future__ import annotations

from sandbox.sipp import *  # noqa: F403  (the whole public API, one list: sandbox.sipp.__all__)
from sandbox.sipp import __all__ as __all__
