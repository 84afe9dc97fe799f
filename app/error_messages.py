"""The words of a 400: every entry of `errors` is a sentence of ours that names its field
("name is required", "limit must be at most 500"), whether the rule broken is one of the
service's (`InvalidInput`) or a schema's that pydantic checked. Pydantic's own phrasing
("Field required", "Input should be a valid dictionary or object to extract fields from") never
reaches a caller: each of its error types is said here, once, for REST and the MCP tools alike
(tests/test_error_wording.py sweeps every operation for it)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_args

from pydantic_core.core_schema import ErrorType

# Every error type pydantic itself raises; any other type is one of ours
# (`PydanticCustomError`), whose message is already ours.
_PYDANTIC_TYPES = frozenset(get_args(ErrorType))

# A problem that starts with one of these reads on from the field's name: "name is required".
# Any other (a sentence of its own, such as "give either patient_id or patient") follows it
# after a colon.
_PREDICATES = ("must ", "is ", "are ", "cannot ", "may ", "needs ", "has ", "should ", "does ")

_Say = Callable[[Mapping[str, Any]], str]


def _fixed(text: str) -> _Say:
    return lambda ctx: text


def _items(ctx: Mapping[str, Any], key: str, at: str) -> str:
    count = ctx[key]
    return f"must have {at} {count} item{'' if count == 1 else 's'}"


_OBJECT, _LIST, _WHOLE = "must be a JSON object", "must be a list", "must be a whole number"
_DATE, _TIME = "must be a date as YYYY-MM-DD", "must be a time as HH:MM"
_SAID: dict[str, _Say] = {
    "missing": _fixed("is required"),
    "extra_forbidden": _fixed("is not a field this operation takes (check the spelling)"),
    "model_type": _fixed(_OBJECT),
    "model_attributes_type": _fixed(_OBJECT),
    "dict_type": _fixed(_OBJECT),
    "dataclass_type": _fixed(_OBJECT),
    "list_type": _fixed(_LIST),
    "tuple_type": _fixed(_LIST),
    "set_type": _fixed(_LIST),
    "frozen_set_type": _fixed(_LIST),
    "iterable_type": _fixed(_LIST),
    "string_type": _fixed("must be a string"),
    "string_unicode": _fixed("must be a string"),
    "string_sub_type": _fixed("must be a string"),
    "string_too_short": lambda ctx: (
        "must not be empty"
        if ctx["min_length"] == 1
        else f"must be at least {ctx['min_length']} characters"
    ),
    "string_too_long": lambda ctx: f"must be at most {ctx['max_length']} characters",
    "string_pattern_mismatch": lambda ctx: f"must match {ctx['pattern']}",
    "int_type": _fixed(_WHOLE),
    "int_parsing": _fixed(_WHOLE),
    "int_parsing_size": _fixed("is too large"),
    "int_from_float": _fixed(_WHOLE),
    "float_type": _fixed("must be a number"),
    "float_parsing": _fixed("must be a number"),
    "finite_number": _fixed("must be a finite number"),
    "decimal_type": _fixed("must be a number"),
    "decimal_parsing": _fixed("must be a number"),
    "bool_type": _fixed("must be true or false"),
    "bool_parsing": _fixed("must be true or false"),
    "greater_than": lambda ctx: f"must be greater than {ctx['gt']}",
    "greater_than_equal": lambda ctx: f"must be at least {ctx['ge']}",
    "less_than": lambda ctx: f"must be less than {ctx['lt']}",
    "less_than_equal": lambda ctx: f"must be at most {ctx['le']}",
    "multiple_of": lambda ctx: f"must be a multiple of {ctx['multiple_of']}",
    "too_short": lambda ctx: _items(ctx, "min_length", "at least"),
    "too_long": lambda ctx: _items(ctx, "max_length", "at most"),
    "enum": lambda ctx: f"must be one of {ctx['expected']}",
    "literal_error": lambda ctx: f"must be one of {ctx['expected']}",
    "uuid_type": _fixed("must be a UUID"),
    "uuid_parsing": _fixed("must be a UUID"),
    "uuid_version": _fixed("must be a UUID"),
    "date_type": _fixed(_DATE),
    "date_parsing": _fixed(_DATE),
    "date_from_datetime_parsing": _fixed(_DATE),
    "date_from_datetime_inexact": _fixed(_DATE),
    "time_type": _fixed(_TIME),
    "time_parsing": _fixed(_TIME),
    "datetime_type": _fixed("must be a date and time (ISO 8601)"),
    "datetime_parsing": _fixed("must be a date and time (ISO 8601)"),
    "datetime_from_date_parsing": _fixed("must be a date and time (ISO 8601)"),
    "timezone_aware": _fixed("must carry a UTC offset"),
    "url_type": _fixed("must be a URL"),
    "url_parsing": _fixed("must be a URL"),
    "url_scheme": lambda ctx: f"must be a URL starting with {ctx['expected_schemes']}",
    "url_too_long": lambda ctx: f"must be at most {ctx['max_length']} characters",
    "json_invalid": _fixed("is not valid JSON"),
    "json_type": _fixed("must be JSON"),
}


def sentence(field: str, problem: str) -> str:
    """`problem` said of `field`: "name is required"; "the body must be a JSON object";
    "weekly_hours.monday.0: end must be after start". A problem already naming its field at
    its start is left as it is."""
    subject = "the body" if field == "body" else field
    if problem.startswith((f"{field} ", f"{subject} ")):
        return problem
    if problem.startswith(_PREDICATES):
        return f"{subject} {problem}"
    return problem if field == "body" else f"{field}: {problem}"


def problem_of(error: Mapping[str, Any]) -> str:
    """What is wrong, as a predicate of ours, for one of pydantic's errors."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "value_error" and "email address" in message:
        reason = message.partition(": ")[2].rstrip(".")
        return f"must be an e-mail address ({reason[:1].lower()}{reason[1:]})"
    if kind in ("value_error", "assertion_error"):
        # A validator of ours raised it (`ValueError("must be ...")`).
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "missing" and message != "Field required":
        return message  # ours (`schemas.common.required_unless`)
    said = _SAID.get(kind)
    if said is not None:
        try:
            return said(ctx)
        except KeyError:  # re-raised without its context: the bound is not known
            return "is not valid"
    return "is not valid" if kind in _PYDANTIC_TYPES else message
