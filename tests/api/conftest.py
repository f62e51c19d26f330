"""Fixtures of the ASGI tests: apps built with settings of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from service.app import create_app
from tests.conftest import Api, make_settings


@pytest.fixture
async def make_api(db_url: str) -> AsyncIterator[Any]:
    """`await make_api(**settings)`: the app over ASGI with those settings, no workers."""
    stack: list[Any] = []

    async def build(**overrides: object) -> Api:
        settings = make_settings(db_url, **overrides)
        app = create_app(settings, run_workers=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        stack.append((lifespan, client))
        return Api(client, app.state.ctx.store, settings, app.state.ctx)

    yield build
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
