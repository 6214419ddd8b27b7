"""The fast path's Host check gives Litestar's own answer (issue 11, item 4).

The fast path must leave to Litestar every request Litestar refuses before routing, so it owns
a copy of the router's Host check. Litestar's function is private, so only this test imports
it, as the reference, and compares the two on generated headers, malformed ones included.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from litestar._asgi.utils import is_valid_host as litestar_is_valid_host

from allotment.http.fast_path import valid_host

# RFC 3986 host characters, written out again here rather than imported.
_HOST_CHAR = st.sampled_from([bytes([b]) for b in b"azAZ09-._~!$&'()*+,;=:[]@%"])


@st.composite
def _hosts(draw: st.DrawFn) -> bytes:
    """A host of host characters, half the time with one arbitrary byte inserted: both
    answers come up often, and a mismatch on any single byte can show."""
    chars = draw(st.lists(_HOST_CHAR, max_size=20))
    if draw(st.booleans()):
        chars.insert(draw(st.integers(0, len(chars))), draw(st.binary(min_size=1, max_size=1)))
    return b"".join(chars)


def test_every_byte_gets_litestars_answer() -> None:
    """Exhaustive over single bytes, alone and inside an otherwise valid host."""
    for byte in (bytes([b]) for b in range(256)):
        for host in (byte, b"a" + byte + b"b", b"example.com:80" + byte):
            assert valid_host(host) == litestar_is_valid_host(host), host


@given(st.one_of(_hosts(), st.binary(max_size=32), st.text(max_size=16).map(str.encode)))
@settings(max_examples=300)
@example(b"")
@example(b"example.com:8080")
@example(b"[::1]:8000")
@example(b"user@host")
@example(b"bad host")
@example(b"a/b")
@example(b"x<y>")
@example(b"host\n")
@example(b"\nhost")
@example(b"caf\xc3\xa9.example")
def test_the_host_check_agrees_with_litestars(host: bytes) -> None:
    assert valid_host(host) == litestar_is_valid_host(host)
