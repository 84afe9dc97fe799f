"""The tools, by the spec's names, each a plain function in the module of its area,
registered here. Each reads its arguments by the REST rules (the request schemas,
`schemas.arguments`), calls the same services and shared changes (`app.adapters`) as the REST
routes, and answers the REST shape as structured content with one sentence for the voice; a
failure is the REST error body with `isError` (`agent.answers`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from app.agent.tools.appointments import (
    book_appointment,
    cancel_appointment,
    reschedule_appointment,
)
from app.agent.tools.clinic import clinic_info, find_doctors
from app.agent.tools.confirmations import confirm_appointment, list_unconfirmed_appointments
from app.agent.tools.patients import find_patient, list_patient_appointments, update_patient
from app.agent.tools.series import book_series
from app.agent.tools.slots import find_earliest_slots, get_availability, hold_slot, release_hold
from app.agent.tools.waitlist import (
    accept_waitlist_offer,
    decline_waitlist_offer,
    join_waitlist,
)

Tool = Callable[..., Awaitable[CallToolResult]]

# In the order an agent meets them (tools/list answers in this order).
TOOLS: tuple[Tool, ...] = (
    clinic_info,
    find_doctors,
    find_earliest_slots,
    get_availability,
    hold_slot,
    release_hold,
    book_appointment,
    book_series,
    find_patient,
    list_patient_appointments,
    update_patient,
    reschedule_appointment,
    cancel_appointment,
    confirm_appointment,
    list_unconfirmed_appointments,
    join_waitlist,
    accept_waitlist_offer,
    decline_waitlist_offer,
)


def description(tool: Tool) -> str:
    """What the model reads about a tool: its docstring as one paragraph."""
    return " ".join((tool.__doc__ or "").split())


def register(server: MCPServer) -> None:
    """Every tool on `server`, named as its function."""
    for tool in TOOLS:
        server.add_tool(tool, description=description(tool))
