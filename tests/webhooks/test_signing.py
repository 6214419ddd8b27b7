"""Signing (WHK-D10, WHK-D11): the signature built from precomputed HMAC pads is RFC 2104's
HMAC-SHA256, for a key of any length (the block size and past it, where the key is hashed
first), and the `standardwebhooks` package verifies it, both signatures during a rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from allotment.webhooks.signing import SECRET_PREFIX, new_secret, signature_header, signed_headers
from tests.webhooks.receiver import Receiver


@pytest.mark.parametrize("length", [1, 24, 63, 64, 65, 200])
def test_the_signature_is_hmac_sha256_for_any_key_length(length: int) -> None:
    key = bytes(range(256))[:length]
    secret = SECRET_PREFIX + base64.b64encode(key).decode()
    body = b'{"type":"webhook.test","data":{}}'
    expected = hmac.digest(key, b"msg_1.1765000000." + body, hashlib.sha256)
    header = signature_header([secret], "msg_1", 1765000000, body)
    assert header == "v1," + base64.b64encode(expected).decode()


def test_standardwebhooks_verifies_both_signatures_of_a_rotation() -> None:
    new, old = new_secret(), new_secret()
    body = b'{"type":"webhook.test","timestamp":"2026-12-07T00:00:00Z","data":{}}'
    headers = signed_headers([new, old], "msg_2", int(time.time()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):  # each receiver knows one secret; each verifies
        assert Webhook(secret).verify(body, headers) is not None
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)


def test_the_test_receiver_refuses_to_let_a_bad_signature_pass() -> None:
    """The receiver the delivery tests use (tests/webhooks/receiver.py) records a request
    signed with another secret as unverified, answers it as scripted, and `assert_verified`
    (run by its fixture when every test ends) fails naming it; a good one passes."""
    receiver = Receiver()
    try:
        receiver.secrets = [new_secret()]
        body = b'{"type":"webhook.test","timestamp":"2026-12-07T00:00:00Z","data":{}}'
        for message_id, secret in (("msg_good", receiver.secrets[0]), ("msg_bad", new_secret())):
            headers = signed_headers([secret], message_id, int(time.time()), body)
            assert httpx.post(receiver.url, content=body, headers=headers).status_code == 200
    finally:
        receiver.close()
    assert [d.verified_by for d in receiver.deliveries] == [(receiver.secrets[0],), ()]
    assert receiver.unverified == ["msg_bad"]
    with pytest.raises(AssertionError, match="msg_bad"):
        receiver.assert_verified()
