"""One parse per test process of each handler signature that Litestar parses once per app.

Every app a test builds registers about 270 handlers (120 of them Litestar's own OPTIONS
handlers), and Litestar parses each handler's signature for each app (`ParsedSignature.from_fn`:
`typing.get_type_hints` and a field definition per parameter): a third of `create_app`, which a
run calls over a thousand times (0.29 s an app, 0.19 s with this memo, on an idle machine). A
parse depends only on the function's code, annotations and defaults, the namespace passed in
and its module's names (which no test changes), so a function that matches an earlier one in
all but the last gets that earlier parse: an equal frozen value, which Litestar only reads. Anything else (a class, a bound
method, a wrapped function) is parsed as before. A server builds its app once: nothing to
save there, so this is the test process's alone; tests/http/test_signature_memo.py checks that
every handler of an app built through it has the signature a fresh parse gives.
"""

from __future__ import annotations

import types
from collections import defaultdict
from typing import Any

from litestar.utils.signature import ParsedSignature

__all__ = ("install", "parse_afresh")

KEPT_PER_CODE = 32  # distinct annotation sets of one `def` (documents_body makes 18)


class _Parse:
    def __init__(self, fn: types.FunctionType, namespace: dict[str, Any], parsed: Any) -> None:
        self.annotations = dict(fn.__annotations__)
        self.defaults = fn.__defaults__  # kept, so that `is` below compares live objects
        self.kwdefaults = fn.__kwdefaults__
        self.namespace = dict(namespace)
        self.parsed = parsed

    def fits(self, fn: types.FunctionType, namespace: dict[str, Any]) -> bool:
        return (
            fn.__defaults__ is self.defaults
            and fn.__kwdefaults__ is self.kwdefaults
            and fn.__annotations__ == self.annotations
            and namespace == self.namespace
        )


parse_afresh: Any = ParsedSignature.from_fn.__func__  # type: ignore[attr-defined]
_parses: defaultdict[types.CodeType, list[_Parse]] = defaultdict(list)


def _plain(fn: object) -> types.FunctionType | None:
    """`fn` if its signature is its code's, annotations' and defaults' alone."""
    if type(fn) is not types.FunctionType:
        return None
    if hasattr(fn, "__wrapped__") or hasattr(fn, "__signature__"):
        return None
    return fn


def _from_fn(cls: type[ParsedSignature], fn: Any, signature_namespace: dict[str, Any]) -> Any:
    plain = _plain(fn)
    if plain is None:
        return parse_afresh(cls, fn, signature_namespace)
    kept = _parses[plain.__code__]
    for earlier in kept:
        if earlier.fits(plain, signature_namespace):
            return earlier.parsed
    parsed = parse_afresh(cls, fn, signature_namespace)
    kept.append(_Parse(plain, signature_namespace, parsed))
    del kept[:-KEPT_PER_CODE]
    return parsed


def install() -> None:
    """Route `ParsedSignature.from_fn` through the memo, for the rest of the process."""
    ParsedSignature.from_fn = classmethod(_from_fn)  # type: ignore[method-assign,assignment]
