"""The LwM2M adapter's exceptions, all in one tree.

    Lwm2mError                  base; ``reason`` is the counter it is counted under
    ├── CodecError              a payload that is not valid text, TLV, SenML-JSON or link format (``bad_payload``)
    │   └── UnsupportedFormat   a Content-Format this server does not decode (``unsupported_format``)
    └── RegistrationRefused     a register/update the server answers with a 4.xx (``code`` is that answer)

None is retryable: the same bytes fail the same way. Each is answered with its CoAP code (or
dropped, for a notification, which has no answer) and counted; nothing else is disturbed.
"""

from __future__ import annotations


class Lwm2mError(Exception):
    reason = "lwm2m_error"

    def __init__(self, detail: str, *, reason: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if reason is not None:
            self.reason = reason


class CodecError(Lwm2mError):
    reason = "bad_payload"


class UnsupportedFormat(CodecError):
    reason = "unsupported_format"


class RegistrationRefused(Lwm2mError):
    """``code`` is the CoAP response code name (BAD_REQUEST, FORBIDDEN, NOT_FOUND)."""

    reason = "bad_registration"

    def __init__(self, detail: str, *, code: str = "BAD_REQUEST", reason: str | None = None) -> None:
        super().__init__(detail, reason=reason)
        self.code = code
