"""An endpoint's answer to one webhook POST, read incrementally (RFC 9112, the client's side).

The sender needs only three things from an answer: its status, where it ends (so the
connection can carry the next request), and whether the connection may be kept. The body is
read and thrown away. Framing follows RFC 9112 section 6.3 for a response to a POST:

- 1xx (other than 101), 204 and 304 have no body; an interim 1xx is skipped and the final
  answer read after it;
- `transfer-encoding` ending in `chunked`: chunks up to the last (size 0) and its trailers;
  any other transfer coding: the body runs until the endpoint closes;
- otherwise `content-length`; with neither, the body runs until the endpoint closes.

A connection is kept only for an HTTP/1.1 answer without `connection: close`, framed by its
length or its chunks, with nothing after it (bytes nobody asked for mean the two sides no
longer agree on where messages start).

Everything is bounded: a head or a trailer section over 64 KiB, or a chunk-size line over
1 KiB, is invalid rather than buffered without end.
"""

from __future__ import annotations

__all__ = ("AnswerInvalid", "AnswerParser")

HEAD_MAX = 65_536  # bytes of status line and headers (h11's default too)
_CHUNK_LINE_MAX = 1024
_NO_BODY = frozenset((204, 304))
_HEX_DIGITS = b"0123456789abcdefABCDEF"

# Whole answers already parsed, each as one `feed` into a fresh parser, with what they gave:
# parsing depends on nothing but the bytes, and an endpoint tends to answer every delivery with
# the same few (a `date` header changes them once a second), so looking them up spares the
# server's one thread the parse of every delivery's answer. Bounded: small answers, few kept.
_KNOWN: dict[bytes, tuple[int, bool]] = {}  # answer -> (status, keep_alive)
_KNOWN_MAX = 256
_KNOWN_SIZE_MAX = 1024


def _remember(answer: bytes, status: int, keep_alive: bool) -> None:
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()  # a cache: the next answers are parsed again
    _KNOWN[answer] = (status, keep_alive)


# States.
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)


class AnswerInvalid(ValueError):
    """The endpoint's bytes are not an HTTP/1.1 answer; the message says what is wrong. The
    connection cannot be trusted after it (the caller closes it)."""


class AnswerParser:
    """Feed the bytes of one answer as they come; `feed` says when the answer is complete.

    `status` is the final status code; `keep_alive` whether the connection may carry another
    request once the answer is complete.
    """

    __slots__ = ("_buffer", "_remaining", "_scanned", "_state", "keep_alive", "status")

    def __init__(self) -> None:
        self._buffer = b""  # bytes not yet consumed (a partial head, chunk line or trailer)
        self._state = _HEAD
        self._remaining = 0  # body bytes left: of the content-length, or of the chunk
        self._scanned = 0  # of `_buffer`, the bytes already searched for the head's end
        self.status = 0
        self.keep_alive = True

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes) -> bool:
        """Take the next bytes; whether the answer is now complete.

        Raises:
            AnswerInvalid: the bytes cannot be an answer (malformed, or over a bound).
        """
        if self._state == _DONE:
            self.keep_alive = False  # bytes after the answer: the framing is lost
            return True
        fresh = self._state == _HEAD and not self._buffer
        if fresh and (known := _KNOWN.get(data)) is not None:
            self.status, self.keep_alive = known
            self._state = _DONE
            return True
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        while buffer:
            buffer = self._step(buffer)
            if self._state == _DONE:
                if buffer:
                    self.keep_alive = False
                elif fresh and len(data) <= _KNOWN_SIZE_MAX:
                    _remember(data, self.status, self.keep_alive)
                return True
        return self._state == _DONE

    def end(self) -> bool:
        """The endpoint closed the connection; whether that completes the answer (a body
        that runs until close). Afterwards the connection is gone either way."""
        self.keep_alive = False
        if self._state == _UNTIL_CLOSE:
            self._state = _DONE
        return self._state == _DONE

    # -- one step per state; each returns the bytes it did not consume ------------------------

    def _step(self, buffer: bytes) -> bytes:
        state = self._state
        if state == _HEAD:
            return self._head(buffer)
        if state in (_LENGTH, _CHUNK_DATA):
            taken = min(self._remaining, len(buffer))
            self._remaining -= taken
            if not self._remaining:
                self._state = _DONE if state == _LENGTH else _CHUNK_END
            return buffer[taken:]
        if state == _CHUNK_SIZE:
            return self._chunk_size(buffer)
        if state == _CHUNK_END:
            return self._chunk_end(buffer)
        if state == _TRAILERS:
            return self._trailers(buffer)
        return b""  # _UNTIL_CLOSE: everything is body

    def _blank_line(self, buffer: bytes, what: str) -> int:
        """Where the blank line ending the head or the trailers starts in `buffer`; -1 when it
        has not arrived, and `buffer` is kept for the next bytes. Each search starts where the
        last one stopped: an endpoint sending its head a byte at a time costs a linear scan,
        not a quadratic one."""
        end = buffer.find(b"\r\n\r\n", self._scanned)
        if end < 0:
            if len(buffer) > HEAD_MAX:
                raise AnswerInvalid(f"{what} over {HEAD_MAX} bytes")
            self._buffer = buffer
            self._scanned = max(0, len(buffer) - 3)
            return end
        self._scanned = 0
        if end > HEAD_MAX:
            raise AnswerInvalid(f"{what} over {HEAD_MAX} bytes")
        return end

    def _head(self, buffer: bytes) -> bytes:
        end = self._blank_line(buffer, "an answer head")
        if end < 0:
            return b""
        lines = buffer[:end].split(b"\r\n")
        version, status = _status_line(lines[0])
        if status < 200:  # interim (100 Continue, 103 Early Hints): the final one follows
            if status == 101:
                raise AnswerInvalid("101 Switching Protocols, which nobody asked for")
            return buffer[end + 4 :]
        self.status = status
        self._framing(version, status, lines)
        return buffer[end + 4 :]

    def _framing(self, version: bytes, status: int, lines: list[bytes]) -> None:
        lengths: set[bytes] = set()
        codings = b""
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                raise AnswerInvalid(f"a malformed header line {line[:80]!r}")
            name = name.lower()
            if name == b"content-length":
                lengths.update(v.strip() for v in value.split(b","))
            elif name == b"transfer-encoding":
                codings += b"," + value.lower()
            elif name == b"connection" and b"close" in _tokens(value):
                self.keep_alive = False
        if version != b"HTTP/1.1":
            self.keep_alive = False  # HTTP/1.0 closes unless told otherwise: never reuse
        if status in _NO_BODY:
            self._state = _DONE
        elif codings:
            chunked = _tokens(codings)[-1:] == [b"chunked"]
            self._state = _CHUNK_SIZE if chunked else _UNTIL_CLOSE
        elif lengths:
            self._state, self._remaining = _LENGTH, _length(lengths)
            if not self._remaining:
                self._state = _DONE
        else:
            self._state = _UNTIL_CLOSE
        if self._state == _UNTIL_CLOSE:
            self.keep_alive = False

    def _chunk_size(self, buffer: bytes) -> bytes:
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > _CHUNK_LINE_MAX:
                raise AnswerInvalid(f"a chunk-size line over {_CHUNK_LINE_MAX} bytes")
            self._buffer = buffer
            return b""
        size = buffer[:end].partition(b";")[0].strip()  # chunk extensions are ignored
        if not size or size.strip(_HEX_DIGITS):  # int(_, 16) alone would take "0x1f", "1_0"
            raise AnswerInvalid(f"a malformed chunk size {size[:40]!r}")
        self._remaining = int(size, 16)
        self._state = _CHUNK_DATA if self._remaining else _TRAILERS
        return buffer[end + 2 :]

    def _chunk_end(self, buffer: bytes) -> bytes:
        if len(buffer) < 2:
            self._buffer = buffer
            return b""
        if buffer[:2] != b"\r\n":
            raise AnswerInvalid("a chunk not followed by CRLF")
        self._state = _CHUNK_SIZE
        return buffer[2:]

    def _trailers(self, buffer: bytes) -> bytes:
        if buffer.startswith(b"\r\n"):  # no trailers: the usual end
            self._state = _DONE
            return buffer[2:]
        end = self._blank_line(buffer, "trailers")
        if end < 0:
            return b""
        self._state = _DONE
        return buffer[end + 4 :]


def _status_line(line: bytes) -> tuple[bytes, int]:
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise AnswerInvalid(f"a malformed status line {line[:80]!r}")
    if rest[3:4] not in (b"", b" "):
        raise AnswerInvalid(f"a malformed status line {line[:80]!r}")
    return version, int(code)


def _length(values: set[bytes]) -> int:
    """The one content-length (repeats must agree, RFC 9110 section 8.6)."""
    if len(values) != 1:
        raise AnswerInvalid("conflicting content-length values")
    [value] = values
    if not value.isdigit():
        raise AnswerInvalid(f"a malformed content-length {value[:40]!r}")
    return int(value)


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",") if token.strip()]
