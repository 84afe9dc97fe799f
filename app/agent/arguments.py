"""The tools' common arguments, described for a language model. They arrive as text and are
read by the REST rules (`schemas.arguments`, the request schemas), so a malformed one is the
same 400 body as over REST."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

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
