"""The service's own API errors, beside DRF's (rest_framework.exceptions)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException, UnsupportedMediaType


class NumberTooLarge(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "A number in the document is beyond the service's limits."
    default_code = "number_too_large"


class UnsupportedContentEncoding(UnsupportedMediaType):
    """A body sent compressed (Content-Encoding), which the service does not decode: 415 with
    `Accept-Encoding: identity` (RFC 9110 sections 8.4.1 and 12.5.3)."""

    def __init__(self) -> None:
        super().__init__(
            media_type="",
            detail="The body is compressed (Content-Encoding), which the service does not decode:"
            " send it uncompressed.",
        )
