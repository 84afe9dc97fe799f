"""What every tool works with and how it answers: the service it runs on and who calls
(`Agent`, given to each tool by the SDK's `Resolve`), one sentence with the REST shape as
structured content, or a failure as the REST error body with `isError`."""

from __future__ import annotations

import logging
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import AcceptedElicitation, Context, Resolve
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State
from starlette.requests import Request

from app import metrics
from app.adapters import Change, open_change
from app.agent import speech
from app.config import Settings
from app.database import Sessions
from app.error_bodies import database_failure, validation_body
from app.errors import ServiceError
from app.security import actor_of
from app.services import doctor_service
from app.services.context import Caller
from app.services.scheduling.day_cache import DayCache

logger = logging.getLogger("app.agent")


@dataclass(frozen=True, slots=True)
class Agent:
    """The service a tool runs on (its database, settings and day cache) and the name of the
    API key that calls it."""

    sessions: Sessions
    settings: Settings
    day_cache: DayCache
    actor: str

    @classmethod
    def of(cls, state: State, actor: str) -> Agent:
        """The agent `actor` on the application whose state is `state`."""
        return cls(state.sessionmaker, state.settings, state.day_cache, actor)

    def change(self, call_id: str | None = None) -> AbstractAsyncContextManager[Change]:
        """The tool's unit of work (`adapters.open_change`, as a REST change's), committed when
        the block ends; `call_id` is kept in the audit trail of what it changes."""
        caller = Caller(actor=self.actor, correlation_id=call_id)
        return open_change(self.sessions, self.settings, caller)


async def agent_of(ctx: Context) -> Agent:
    """The agent of a tool call, from its HTTP request: `server._Guard` put the key's name in
    the request's state before MCP saw it. (Async: the SDK runs a plain function's resolver
    in a worker thread.)"""
    request = ctx.request_context.request
    if not isinstance(request, Request):  # served over HTTP only (`server.mount`)
        raise TypeError("the tools are served over HTTP")
    return Agent.of(request.app.state, actor_of(request))


# The SDK hands a resolved value (the `Agent`) to the tool wrapped in `AcceptedElicitation[Any]`,
# a parametrized pydantic model, and pydantic keeps such a class only while something refers to
# it (its cache of them is weak): after every garbage collection the next tool call built the
# class anew, about half a millisecond, most of what `Resolve` cost a call. Referred to here, it
# is built once per process (tests/test_agent_tools.py checks it survives a collection).
ACCEPTED_AGENT = AcceptedElicitation[Any]

# Each tool's first parameter: filled by the SDK (not an argument the model sees), and given
# directly when a tool is called from Python (tests/test_agent_tools.py).
AgentDep = Annotated[Agent, Resolve(agent_of)]


def answer(structured: dict[str, Any], sentence: str) -> CallToolResult:
    """A tool's answer: the REST shape, and one sentence to say."""
    return _result(structured, sentence, error=False)


def listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A list as structured content (an object, as MCP wants it)."""
    return {"items": items}


def failure(exc: Exception, call_id: str | None) -> CallToolResult:
    """A failed call as REST answers it: a refusal's body (counted as REST counts it), the 400
    for invalid arguments, the database's 400 or 503 body, or, for a bug, a bare
    internal_error (logged here, never shown to the agent)."""
    if isinstance(exc, ServiceError):
        metrics.count_refusal(exc.status_code, exc.code)
        body = exc.body()
    elif isinstance(exc, ValidationError):
        body = validation_body(exc.errors())
    elif (found := database_failure(exc)) is not None:
        body = found[1]
    else:
        logger.exception("tool failed", extra={"call_id": call_id})
        body = {"detail": "An unexpected error occurred; try again.", "code": "internal_error"}
    return refused(body)


def refused(body: dict[str, Any]) -> CallToolResult:
    """A refusal whose REST error body is known: that body, and its sentence."""
    return _result(body, speech.failure(body), error=True)


def _result(structured: dict[str, Any], sentence: str, *, error: bool) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=sentence)],
        structured_content=structured,
        is_error=error,
    )


async def doctor_name(session: AsyncSession, doctor_id: uuid.UUID) -> str:
    """The doctor's name for a sentence."""
    return await doctor_service.doctor_name(session, doctor_id)
