"""The webhook tests' shared harness, a pytest plugin (tests/conftest.py loads it): the
delivery settings (loopback receivers allowed, short timeouts and backoff) and the `service`
fixture that starts committing apps with them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from tests.conftest import OTHER_KEY, client_for, started_app
from tests.test_webhooks_api import webhook_settings

Made = Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient, Settings]]]


def delivery_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "webhook_allow_http": True,
        "webhook_allow_private_networks": True,
        "webhook_timeout_seconds": 2,
        "dispatcher_backoff_base_seconds": 0.01,
        "dispatcher_backoff_max_seconds": 0.05,
    }
    values.update(overrides)
    return webhook_settings(**values)


@pytest.fixture
async def service(committed: AsyncEngine, database_url: str) -> AsyncIterator[Made]:
    """Start the app (committing) with delivery settings; its admin client."""
    started: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(**overrides: Any) -> tuple[FastAPI, httpx.AsyncClient, Settings]:
        settings = delivery_settings(**overrides)
        app, lifespan = await started_app(settings, database_url)
        client = client_for(app, OTHER_KEY)
        started.append((lifespan, client))
        return app, client, settings

    yield make
    for lifespan, client in started:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
