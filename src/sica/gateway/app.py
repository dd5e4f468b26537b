"""The HTTP face of a gateway: the OpenAI- and Anthropic-compatible endpoints, model list and health."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from sica.gateway.errors import GatewayError
from sica.gateway.gateway import Gateway


def create_app(gateway: Gateway) -> FastAPI:
    """A FastAPI app serving `gateway`. Bodies are handed over as the stream they arrive in: the gateway reads
    them raw, up to its size cap (their size bounds the input)."""
    app = FastAPI(title="sica gateway", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await gateway.handle("openai", request.stream(), request.headers)

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        return await gateway.handle("anthropic", request.stream(), request.headers)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        anthropic_shape = "anthropic-version" in request.headers
        try:
            account = gateway.authenticate(request.headers)
        except GatewayError as error:
            return error.response("anthropic" if anthropic_shape else "openai")
        return JSONResponse(gateway.list_models(account, anthropic_shape))

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        """Unauthenticated, so it names no alias (an account's are in /v1/models)."""
        return {"status": "ok"}

    return app
