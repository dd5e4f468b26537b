"""Errors the gateway answers with, in each SDK's own error shape, so clients raise their usual exceptions."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from sica.config import Wire


class GatewayError(Exception):
    """An error answered to the client: HTTP status, our error type, a message and extra fields."""

    def __init__(self, status: int, error_type: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.extra = extra

    def response(self, wire: Wire) -> JSONResponse:
        """The error as the client's SDK expects it (OpenAI: `{"error": …}`, Anthropic: `{"type": "error", …}`)."""
        if wire == "anthropic":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": self.error_type, "message": self.message, **self.extra},
            }
        else:
            body = {
                "error": {
                    "message": self.message,
                    "type": self.error_type,
                    "code": self.error_type,
                    "param": None,
                    **self.extra,
                }
            }
        return JSONResponse(body, status_code=self.status)


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, "bad_request", message)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "unauthorized", message)


def upstream_unavailable(message: str) -> GatewayError:
    return GatewayError(503, "upstream_unavailable", message)


def not_allowed(message: str) -> GatewayError:
    return GatewayError(403, "permission_error", message)


def too_large(message: str) -> GatewayError:
    return GatewayError(413, "request_too_large", message)
