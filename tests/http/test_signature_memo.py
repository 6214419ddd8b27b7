"""tests/signature_memo.py, which every test's app goes through: an app built after others
holds, for every handler and every dependency it resolves, the signature Litestar's own parse
gives now, and shares the earlier app's parses (else the memo would save nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute
from litestar.utils.helpers import unwrap_partial
from litestar.utils.signature import ParsedSignature

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system
from tests.conftest import START
from tests.signature_memo import parse_afresh


def _handlers(tmp_path: Path) -> dict[tuple[str, str], BaseRouteHandler]:
    """An app's handlers by path and methods."""
    settings = Settings(clock="manual", data_dir=tmp_path)
    system = build_system(settings, ManualClock(START), persistent=False)
    app = create_app(settings, system, KeyStore()).litestar
    handlers: dict[tuple[str, str], BaseRouteHandler] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                handlers[route.path, ",".join(sorted(handler.http_methods))] = handler
        else:
            handlers[route.path, type(route).__name__] = route.route_handler
    return handlers


def _fresh(fn: Any, handler: BaseRouteHandler) -> ParsedSignature:
    parsed: ParsedSignature = parse_afresh(
        ParsedSignature, unwrap_partial(fn), handler.resolve_signature_namespace()
    )
    return parsed


def test_every_parse_equals_a_fresh_one_and_repeats_are_shared(tmp_path: Path) -> None:
    earlier = _handlers(tmp_path / "earlier")
    handlers = _handlers(tmp_path / "later")
    assert handlers.keys() == earlier.keys() and len(handlers) > 200
    dependencies = 0
    for handler in handlers.values():
        assert handler.parsed_fn_signature == _fresh(handler.fn, handler), handler
        for provider in handler.resolve_dependencies().values():
            parsed = provider.parsed_fn_signature
            assert parsed == _fresh(provider.dependency, handler), (handler, provider)
            dependencies += 1
    assert dependencies > 0
    unshared = [
        where
        for where, handler in handlers.items()
        if handler.parsed_fn_signature is not earlier[where].parsed_fn_signature
    ]
    assert unshared == []  # every handler of this app is a plain function
