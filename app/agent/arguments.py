"""The tools' common arguments, described for a language model. They arrive as text and are
read by the REST rules (`schemas.arguments`, the request schemas), so a malformed one is the
same 400 body as over REST."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp_types import CallToolRequestParams
from pydantic import Field

from app.agent.answers import refused
from app.error_bodies import validation_body

DoctorId = Annotated[str, Field(description="The doctor's id (from find_doctors or a slot).")]
Date = Annotated[str, Field(description="A date, YYYY-MM-DD, in the clinic's calendar.")]
StartTime = Annotated[str, Field(description="The slot's start, HH:MM, in clinic time.")]
FromDate = Annotated[str | None, Field(description="First date, YYYY-MM-DD; default today.")]
ToDate = Annotated[str | None, Field(description="Last date, YYYY-MM-DD (included).")]
VisitTypeId = Annotated[
    str | None, Field(description="A visit type's id from clinic_info; its length is used.")
]
CallId = Annotated[
    str | None, Field(description="The phone call's id; kept in the appointment's audit trail.")
]
Mobile = Annotated[str, Field(description="A mobile number, any spelling (+91 98765 43210).")]
Text = Annotated[str | None, Field(description="Matched ignoring case.")]
AppointmentId = Annotated[str, Field(description="The appointment's id.")]
EarliestTime = Annotated[
    str | None,
    Field(description='Only slots starting at or after this time, HH:MM ("after three": 15:00).'),
]
LatestTime = Annotated[
    str | None,
    Field(description='Only slots ending at or before this time, HH:MM ("mornings": 12:00).'),
]


class KnownArguments(Extension):
    """Refuses a tool call that names an argument its tool does not take, as REST refuses an
    unknown body field: the 400 body naming each, and nothing done. The SDK reads arguments
    into a model that drops unknown names silently, so `strat_time="10:00"` would otherwise
    reach the tool as a missing `start_time`. Checked before the SDK reads them (its
    documented `tools/call` interceptor), so a required argument misspelt is named too."""

    identifier = "clinic-booking.local/known-arguments"

    def __init__(self, tools: Iterable[Callable[..., Any]]) -> None:
        # Every parameter but the first, the `Agent` the SDK resolves (`answers.AgentDep`).
        self.known = {
            tool.__name__: frozenset(list(inspect.signature(tool).parameters)[1:]) for tool in tools
        }

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        known = self.known.get(params.name)
        if known is not None and params.arguments:
            unknown = [name for name in params.arguments if name not in known]
            if unknown:
                errors = [{"loc": (name,), "type": "extra_forbidden"} for name in unknown]
                return refused(validation_body(errors))
        return await call_next(ctx)
