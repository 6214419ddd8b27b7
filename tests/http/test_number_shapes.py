"""`number_shapes` finds what the regular expressions it replaced found (a digit then an
exponent, a run of 19 digits), in any bytes: the body checks of `decode_body` rest on it."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from allotment.http.validation import number_shapes

_EXPONENT = re.compile(rb"\d[eE]")
_LONG_DIGITS = re.compile(rb"\d{19}")
# mostly digits and exponent letters, so runs and exponents are common, and any byte besides
_BYTES = st.lists(st.sampled_from(b'0123456789eE.-+" {}') | st.integers(0, 255), max_size=80).map(
    bytes
)


@given(_BYTES)
def test_number_shapes_match_the_regular_expressions(body: bytes) -> None:
    exponent, long_digits = number_shapes(body)
    assert exponent == (_EXPONENT.search(body) is not None)
    assert long_digits == (_LONG_DIGITS.search(body) is not None)


def test_number_shapes_of_edges() -> None:
    assert number_shapes(b"1" * 19) == (False, True)
    assert number_shapes(b"1" * 18 + b"x" + b"1" * 18) == (False, False)
    assert number_shapes(b'{"a":1E5}') == (True, False)
    assert number_shapes(b'{"e":"eE","x":1}') == (False, False)
    assert number_shapes(b"\xd9\xa1" * 19) == (False, False)  # only ASCII digits count
