"""An allotment app with Stripe on, its SDK pointed at a local Stripe double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from allotment.config import Settings
from allotment.http.app import create_app
from allotment.http.fast_path import FastPath
from allotment.persistence.keys import KeyStore
from allotment.runtime.clock import ManualClock
from allotment.wiring import build_system, checkout_service
from tests.conftest import KEY
from tests.stripe_double import StripeDouble

STRIPE_KEY = "sk_test_double_" + "s" * 24
WEBHOOK_SECRET = "whsec_" + "w" * 32
# Long enough that a busy machine never turns a prompt answer of the double into a timeout;
# the timeout test makes the double hang instead of racing this figure.
STRIPE_TIMEOUT_S = 30.0


@pytest.fixture
def stripe_double() -> Iterator[StripeDouble]:
    with StripeDouble(STRIPE_KEY, WEBHOOK_SECRET) as double:
        yield double


@pytest.fixture
def stripe_timeout_s() -> float:
    """The app's Stripe timeout; a test overrides it with @pytest.mark.parametrize."""
    return STRIPE_TIMEOUT_S


@pytest.fixture
def stripe_app(
    tmp_path: Path,
    clock: ManualClock,
    keys: KeyStore,
    stripe_double: StripeDouble,
    stripe_timeout_s: float,
) -> FastPath:
    settings = Settings(
        clock="manual", data_dir=tmp_path, stripe_secret_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET, stripe_api_base=stripe_double.url,
        stripe_timeout_s=stripe_timeout_s,
    )  # fmt: skip
    system = build_system(settings, clock, persistent=False)
    return create_app(settings, system, keys, checkout_service(settings, clock))


@pytest.fixture
def stripe_client(
    stripe_app: FastPath, stripe_double: StripeDouble
) -> Iterator[TestClient[FastPath]]:
    with TestClient(stripe_app, base_url="http://testserver.local") as client:
        client.headers["Authorization"] = f"Bearer {KEY}"

        def deliver(payload: bytes, headers: dict[str, str]) -> int:
            return client.post(
                "/api/v1/webhooks/stripe", content=payload, headers=headers
            ).status_code

        stripe_double.deliver = deliver
        yield client
