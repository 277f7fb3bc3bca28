"""The service's own API errors, beside DRF's (rest_framework.exceptions)."""

from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import APIException


class NumberTooLarge(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "A number in the document is beyond the service's limits."
    default_code = "number_too_large"
