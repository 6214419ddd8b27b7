"""The scale-out tests' receiver: a real one on 127.0.0.1 verifying every delivery with the
official `standardwebhooks` (tests/webhooks/receiver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
