"""What the sync and async clients share: a request as a value (`Call`), and the reading of
its answer. Only the sending differs between them, so each operation is written once here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import msgspec

from allotment.client.errors import UnexpectedResponse, api_error_of
from allotment.client.models import Envelope

__all__ = ("BASE_PATH", "Call", "body_of", "decode_data", "ignore_data", "segment")

T = TypeVar("T")
BASE_PATH = "/api/v1/client"
# Decimals leave as JSON numbers: the server refuses quoted numbers (API-8), and a float step
# would lose digits.
_ENCODER = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and how to read a successful answer to it.

    Attributes:
        method: the HTTP method.
        path: the path under the client API, its segments already quoted.
        read: turns a 2xx answer (status, body) into the operation's result.
        body: the encoded JSON body, if any.
        params: the query parameters, if any.
        headers: extra headers, if any.
    """

    method: str
    path: str
    read: Callable[[int, bytes], T]
    body: bytes | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def result(self, status: int, body: bytes, retry_after: str | None) -> T:
        """The operation's result for an answer.

        Raises:
            ApiError: (a subclass by status) for a status of 400 or more.
            UnexpectedResponse: for a 2xx body that does not have the expected shape.
        """
        if status >= 400:
            raise api_error_of(status, body, retry_after)
        try:
            return self.read(status, body)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UnexpectedResponse(status, body, str(error)) from error


def segment(value: object) -> str:
    """`value` as one path segment: a `/` or `?` inside a customer id stays inside it."""
    return quote(str(value), safe="")


def body_of(fields: Mapping[str, Any] | msgspec.Struct) -> bytes:
    """The JSON body: a request struct as is, or a mapping without its None values."""
    if isinstance(fields, msgspec.Struct):
        return _ENCODER.encode(fields)
    return _ENCODER.encode({name: value for name, value in fields.items() if value is not None})


def decode_data(type_: type[T]) -> Callable[[int, bytes], T]:
    """A reader of `{"success": true, "data": <type_>}`."""
    envelope = Envelope[type_]  # type: ignore[valid-type]
    decoder = msgspec.json.Decoder(envelope)

    def read(status: int, body: bytes) -> T:
        data: T = decoder.decode(body).data
        return data

    return read


def ignore_data(status: int, body: bytes) -> None:
    """The reader of answers that carry nothing but `{"success": true}`."""
    del status, body
