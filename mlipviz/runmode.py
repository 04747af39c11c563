"""The one smoke-mode rule: tiny sizes for CI and quick checks, full sizes otherwise.

Every notebook's ``parameters`` cell and ``make demo`` ask :func:`smoke_mode`. Smoke mode is on when the
``CI`` variable is set (as CI services set it) or ``MLIPVIZ_SMOKE`` is set to a true value (``1``, ``true``,
``yes``); ``CI=false`` or ``MLIPVIZ_SMOKE=0`` leave it off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["SMOKE_VARIABLE", "smoke_mode"]

#: The variable that asks for smoke mode, e.g. ``MLIPVIZ_SMOKE=1 make demo``.
SMOKE_VARIABLE = "MLIPVIZ_SMOKE"
_FALSY = ("", "0", "false", "no", "off")


def _true(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSY


def smoke_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to run at smoke (tiny) sizes.

    Args:
        environ: The environment to read; default ``os.environ``.

    Returns:
        True when ``CI`` or ``MLIPVIZ_SMOKE`` holds a true value.
    """
    env = os.environ if environ is None else environ
    return _true(env.get("CI")) or _true(env.get(SMOKE_VARIABLE))
