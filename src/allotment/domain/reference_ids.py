"""Customer reference ids (OPS-K11): the ids a client gives its customers, used in URL paths.

A reference id is 1 to 255 ASCII letters, digits and `_ - . : @`, and not `.` or `..` alone:
such an id travels in a URL path unescaped and means the same to every proxy and client
library. The rule applies when a customer is created; customers created before it keep
their ids.
"""

from __future__ import annotations

import re

__all__ = ("REFERENCE_ID_RULE", "reference_id_problem")

REFERENCE_ID_RULE = "1 to 255 letters, digits and _ - . : @ (not '.' or '..' alone)"
_REFERENCE_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,255}")


def reference_id_problem(value: str) -> str | None:
    """What is wrong with `value` as a new customer's reference id, or None when it is valid."""
    if _REFERENCE_ID.fullmatch(value) is None or value in (".", ".."):
        return f"a reference id is {REFERENCE_ID_RULE}"
    return None
