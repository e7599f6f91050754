"""`vicw.container` is another name for `vicw.bootstrap`, the composition root (the same module
object, so its caches and `reset()` are shared).

Entry points import `vicw.bootstrap`. The modules that still import this name are the services
left to receive their dependencies through arguments instead (see docs/architecture.md); new code
should not import it.
"""

import sys
from typing import TYPE_CHECKING

from vicw import bootstrap

if TYPE_CHECKING:
    from vicw.bootstrap import *  # noqa: F403

sys.modules[__name__] = bootstrap
