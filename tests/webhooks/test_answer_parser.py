"""The sender's answer parser (webhooks/answer_parser.py): every framing, fed whole and one
byte at a time (TCP may cut an answer anywhere), what keeps a connection, and what is invalid."""

from __future__ import annotations

import pytest

from allotment.webhooks import answer_parser
from allotment.webhooks.answer_parser import HEAD_MAX, AnswerInvalid, AnswerParser

# (answer, status, keep-alive); each is complete without a close.
COMPLETE = [
    (b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n", 204, True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, True),  # no body by its status
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, True),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello", 200, True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, True),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 99\r\n\r\n"
     b"A;name=v\r\n0123456789\r\n0\r\nx-t: 1\r\nx-u: 2\r\n\r\n", 200, True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
     b"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n", 410, True),
    (b"HTTP/1.1 302 Found\r\nlocation: /x\r\ncontent-length: 0\r\n\r\n", 302, True),
    (b"HTTP/1.1 200 OK\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n", 200, False),
    (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok", 200, False),
    (b"HTTP/1.1 500\r\ncontent-length: 0\r\n\r\n", 500, True),  # no reason phrase
]  # fmt: skip


@pytest.mark.parametrize(("answer", "status", "keep_alive"), COMPLETE)
@pytest.mark.parametrize("piece", [None, 1, 7], ids=["whole", "bytewise", "by7"])
def test_complete_answers(answer: bytes, status: int, keep_alive: bool, piece: int | None) -> None:
    parser = AnswerParser()
    pieces = (
        [answer] if piece is None else [answer[i : i + piece] for i in range(0, len(answer), piece)]
    )
    results = [parser.feed(p) for p in pieces]
    assert results[-1] and not any(results[:-1])
    assert (parser.status, parser.keep_alive, parser.done) == (status, keep_alive, True)


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\n\r\nuntil close", b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nz"],
    ids=["no-length", "not-chunked"],
)
def test_a_body_until_close_completes_at_the_close(answer: bytes) -> None:
    parser = AnswerParser()
    assert not parser.feed(answer)
    assert not parser.feed(b"more body")
    assert parser.end()
    assert (parser.status, parser.keep_alive) == (200, False)


def test_a_close_before_the_end_does_not_complete() -> None:
    parser = AnswerParser()
    assert not parser.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    assert not parser.end()
    chunked = AnswerParser()
    assert not chunked.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
    assert not chunked.end()


def test_bytes_after_the_answer_lose_the_connection() -> None:
    parser = AnswerParser()
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert parser.status == 204 and not parser.keep_alive
    later = AnswerParser()
    assert later.feed(b"HTTP/1.1 204 No Content\r\n\r\n") and later.keep_alive
    assert later.feed(b"junk") and not later.keep_alive


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP 220 ready\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 20x OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length : 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1, 2\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x5\r\nhello\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhiXX",
    ],
)  # fmt: skip
def test_invalid_answers(answer: bytes) -> None:
    with pytest.raises(AnswerInvalid):
        AnswerParser().feed(answer)


def test_an_endless_head_is_invalid_not_buffered() -> None:
    parser = AnswerParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n")
    line = b"x-padding: " + b"a" * 1000 + b"\r\n"
    for _ in range(HEAD_MAX // len(line)):
        parser.feed(line)
    with pytest.raises(AnswerInvalid, match="over"):
        parser.feed(line)


@pytest.mark.parametrize(("answer", "status", "keep_alive"), COMPLETE)
def test_an_answer_parsed_whole_is_known_and_gives_the_same_the_next_time(
    answer: bytes, status: int, keep_alive: bool
) -> None:
    answer_parser._KNOWN.clear()
    first = AnswerParser()
    assert first.feed(answer)
    assert answer_parser._KNOWN[answer] == (status, keep_alive)
    again = AnswerParser()
    assert again.feed(answer)  # from what was remembered: the same as parsing it
    assert (again.status, again.keep_alive, again.done) == (status, keep_alive, True)


def test_only_whole_answers_in_one_piece_are_remembered() -> None:
    answer_parser._KNOWN.clear()
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
    split = AnswerParser()
    assert not split.feed(answer[:10])
    assert split.feed(answer[10:])
    with_more = AnswerParser()  # bytes after the answer: never reusable, never remembered
    assert with_more.feed(answer + b"HTTP/1.1")
    assert not with_more.keep_alive
    unfinished = AnswerParser()
    assert not unfinished.feed(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nok")
    assert not answer_parser._KNOWN


def test_the_answers_remembered_are_bounded() -> None:
    answer_parser._KNOWN.clear()
    for n in range(answer_parser._KNOWN_MAX * 2):
        assert AnswerParser().feed(b"HTTP/1.1 204 No Content\r\nx-n: %d\r\n\r\n" % n)
        assert len(answer_parser._KNOWN) <= answer_parser._KNOWN_MAX
    big = b"HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n" + b"x" * 2000
    assert AnswerParser().feed(big)
    assert big not in answer_parser._KNOWN
