"""README.md cannot drift from the API: every request it shows is run here, in the order it
shows them, against a started service with the default settings, and its answer checked.

- A `bash` block's `curl` commands run in bash as written, with `localhost:8000` pointing at
  the service. The variables a reader sets (`KEY=...`, `DAY=...`) are set by this test (the
  key, a weekday ahead); a `$NAME` inside a shown answer is taken from the answer then, and
  later commands use it as `$NAME`. Each command is followed by `# <status> <JSON>`: the
  status must match, and every field shown must be in the answer with that value (lists as
  shown, item by item).
- The `text` block of MCP calls runs through the official SDK's client: each `tool(args)` (or
  `name = tool(args)`, keeping the result's `structuredContent` as `name`) is followed by
  `-> "sentence"` or `-> error <code>: "sentence"`. The sentence must match, except what the
  clock decides: the time now, a hold's expiry and today's date; the README's `DAY` reads as
  this test's day.
- Every other code block is one this test knows is not a request (the commands to run, the
  start's output, the webhook receiver); a new block of any other kind fails the test until
  it is run here or listed.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import next_weekday
from tests.servers import service_processes

README = Path(__file__).resolve().parents[1] / "README.md"
# A bare secret, as `make run` generates: its name is `default`, an admin.
KEY = "readme-example-key"
# Blocks that are not requests, by their kind and how their first line starts.
NOT_REQUESTS = {
    ("bash", "make run"),
    ("", "API key (send as X-API-Key): 3q2..."),
    ("python", "from http.server import BaseHTTPRequestHandler, HTTPServer"),
    # The generated client's sketch: tests/test_generated_client.py makes these calls for real.
    ("python", "from clinic_client import Client"),
}

_FENCE = re.compile(r"^( *)```(\S*)\s*$")
_ASSIGNMENT = re.compile(r"^([A-Z_]+)=\S*(\s+#.*)?$")
_SHOWN = re.compile(r"^# (\d{3})(?: (.+))?$")
_HEREDOC = re.compile(r"<<(\w+)\s*$")
_VARIABLE = re.compile(r"\$([A-Z_]+)")
_ANSWER = re.compile(r'^-> (?:error (\w+): )?(".*")$')
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_SPOKEN_DATE = re.compile(rf"(?:{_WEEKDAYS}) \d{{1,2}} (?:{_MONTHS})")
_CLOCK_TIME = re.compile(r"(?<=It is )\d\d:\d\d|(?<=until )\d\d:\d\d")


@dataclass
class Block:
    kind: str
    lines: list[str]
    line: int  # where it starts in README.md, for messages

    @property
    def first(self) -> str:
        return next((line for line in self.lines if line.strip()), "")


def blocks(text: str) -> Iterator[Block]:
    """The fenced code blocks, each dedented by its fence's indent (blocks inside lists)."""
    lines = text.splitlines()
    at = 0
    while at < len(lines):
        opening = _FENCE.match(lines[at])
        if opening is None:
            at += 1
            continue
        indent, kind = len(opening[1]), opening[2]
        start, at = at + 1, at + 1
        while not lines[at].strip().startswith("```"):
            at += 1
        yield Block(kind, [line[indent:] for line in lines[start:at]], start)
        at += 1


@dataclass
class Request:
    command: str
    status: int
    shown: Any  # the JSON shown, or None


def shell_requests(block: Block) -> Iterator[Request]:
    """A bash block's commands, each with the answer shown after it."""
    lines = block.lines
    at = 0
    while at < len(lines):
        line = lines[at]
        if not line.strip() or _ASSIGNMENT.match(line):
            at += 1
            continue
        assert line.startswith("curl "), f"README.md:{block.line + at + 1}: not a request: {line}"
        command = [line]
        while command[-1].endswith("\\") or not _complete(command):
            at += 1
            command.append(lines[at])
        if heredoc := _HEREDOC.search(command[-1]):
            while lines[at] != heredoc[1]:
                at += 1
                command.append(lines[at])
        at += 1
        shown = _SHOWN.match(lines[at]) if at < len(lines) else None
        assert shown, f"README.md:{block.line + at + 1}: a request without its answer shown"
        yield Request("\n".join(command), int(shown[1]), json.loads(shown[2] or "null"))
        at += 1


def _complete(lines: list[str]) -> bool:
    try:
        shlex.split("\n".join(lines))
    except ValueError:
        return False
    return True


def check(shown: Any, actual: Any, names: dict[str, Any], where: str) -> None:
    """Every field of `shown` in `actual` with that value; a `$NAME` value is bound the first
    time and compared after."""
    if isinstance(shown, str) and (variable := re.fullmatch(r"\$([A-Z_]+)", shown)):
        name = variable[1]
        if name in names:
            assert actual == names[name], f"{where}: ${name} is {names[name]!r}, not {actual!r}"
        else:
            names[name] = actual
    elif isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in shown.items():
            assert key in actual, f"{where}: the answer has no {key!r}"
            check(value, actual[key], names, f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), f"{where}: {actual!r}"
        for index, (item, found) in enumerate(zip(shown, actual, strict=True)):
            check(item, found, names, f"{where}[{index}]")
    else:
        assert shown == actual, f"{where}: shown {shown!r}, answered {actual!r}"


def run_curl(request: Request, base: str, names: dict[str, Any]) -> tuple[int, Any]:
    # curl as written, with the status after the body.
    script = "curl() { command curl -sS -w '\\n%{http_code}' \"$@\"; }\n" + request.command
    script = script.replace("localhost:8000", base.removeprefix("http://"))
    environment = {"PATH": "/usr/bin:/bin", **{k: str(v) for k, v in names.items()}}
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=environment, timeout=60
    )
    assert done.returncode == 0, done.stderr
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body) if body else None


@dataclass
class ToolCall:
    keep_as: str | None
    call: ast.Call
    code: str | None  # an error's code, or None for a result
    sentence: str
    line: int


def tool_calls(block: Block) -> Iterator[ToolCall]:
    lines = block.lines
    at = 0
    while at < len(lines):
        statement = [lines[at]]
        while (parsed := _statement(statement)) is None:
            at += 1
            statement.append(lines[at])
        at += 1
        answer = _ANSWER.match(lines[at].strip())
        assert answer, f"README.md:{block.line + at + 1}: a call without its answer"
        keep_as = None
        if isinstance(parsed, ast.Assign):
            target = parsed.targets[0]
            assert isinstance(target, ast.Name)
            keep_as, call = target.id, parsed.value
        else:
            assert isinstance(parsed, ast.Expr)
            call = parsed.value
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
        yield ToolCall(keep_as, call, answer[1], json.loads(answer[2]), block.line + at)
        at += 1


def _statement(lines: list[str]) -> ast.stmt | None:
    try:
        return ast.parse("\n".join(lines)).body[0]
    except SyntaxError:
        return None


def value(node: ast.expr, names: dict[str, Any]) -> Any:
    """An argument as written: literals, the names bound so far, and subscripts of them."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Subscript):
        return value(node.value, names)[value(node.slice, names)]
    if isinstance(node, ast.Dict):
        keys = [k for k in node.keys if k is not None]
        assert len(keys) == len(node.values), "no ** in an argument"
        return {value(k, names): value(v, names) for k, v in zip(keys, node.values, strict=True)}
    raise AssertionError(f"cannot read {ast.dump(node)}")


def spoken(day: dt.date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def sentence_pattern(sentence: str, readme_day: dt.date, day: dt.date) -> re.Pattern[str]:
    """The sentence, with the README's day read as `day`, and what the clock decides (now,
    a hold's expiry, today) left open."""
    sentence = sentence.replace(spoken(readme_day), "\x00")
    parts = re.split(f"({_SPOKEN_DATE.pattern}|{_CLOCK_TIME.pattern}|\x00)", sentence)
    pattern = ""
    for part in parts:
        if part == "\x00":
            pattern += re.escape(spoken(day))
        elif _SPOKEN_DATE.fullmatch(part):
            pattern += _SPOKEN_DATE.pattern
        elif _CLOCK_TIME.fullmatch(part) or re.fullmatch(r"\d\d:\d\d", part):
            pattern += r"\d\d:\d\d"  # split out above only after "It is " or "until "
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def readme_day(text: str) -> dt.date:
    found = re.search(r"^DAY=(\d{4}-\d\d-\d\d)", text, re.MULTILINE)
    assert found, "the README sets DAY in its shell example"
    return dt.date.fromisoformat(found[1])


@pytest.fixture(scope="module")
def service(database_url: str) -> Iterator[str]:
    # The defaults a newcomer has: no default phone region, UTC, a bare key.
    with service_processes(database_url, 1, KEY, {"SERVICE_API_KEY": KEY}) as urls:
        yield urls[0]


async def test_every_request_in_the_readme_answers_as_shown(db: AsyncEngine, service: str) -> None:
    text = README.read_text()
    day = next_weekday(1)
    shown_day = readme_day(text)
    assert shown_day.weekday() == day.weekday(), "the README's DAY is a Tuesday"
    names: dict[str, Any] = {"KEY": KEY, "DAY": day.isoformat()}
    ran = {"curl": 0, "mcp": 0}
    for block in blocks(text):
        if any(block.kind == k and block.first.startswith(f) for k, f in NOT_REQUESTS):
            continue
        if block.kind == "bash" and block.first.startswith(("curl ", "KEY=", "DOCTOR=")):
            for request in shell_requests(block):
                where = f"README.md:{block.line} {request.command.splitlines()[0]}"
                status, body = run_curl(request, service, names)
                assert status == request.status, f"{where}: {status} {body}"
                check(request.shown, body, names, where)
                ran["curl"] += 1
        elif block.kind == "text" and "->" in "".join(block.lines):
            ran["mcp"] += await run_tool_calls(block, service, names, shown_day, day)
        else:
            raise AssertionError(f"README.md:{block.line}: a block this test does not run")
    assert ran["curl"] >= 7 and ran["mcp"] >= 8, ran


async def run_tool_calls(
    block: Block, base: str, names: dict[str, Any], shown_day: dt.date, day: dt.date
) -> int:
    count = 0
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": KEY}, timeout=30) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for step in tool_calls(block):
            assert isinstance(step.call.func, ast.Name)
            arguments = {str(k.arg): value(k.value, names) for k in step.call.keywords}
            result = await session.call_tool(step.call.func.id, arguments)
            where = f"README.md:{step.line} {step.call.func.id}"
            structured = result.structured_content
            assert isinstance(structured, dict), where
            if step.code is None:
                assert not result.is_error, f"{where}: {structured}"
            else:
                assert result.is_error and structured["code"] == step.code, f"{where}: {structured}"
            block_ = result.content[0]
            assert isinstance(block_, TextContent)
            pattern = sentence_pattern(step.sentence, shown_day, day)
            assert pattern.fullmatch(block_.text), f"{where}: said {block_.text!r}"
            if step.keep_as is not None:
                names[step.keep_as] = structured
            count += 1
    return count


def test_the_sentences_leave_open_only_what_the_clock_decides() -> None:
    shown, day = dt.date(2026, 12, 15), dt.date(2027, 3, 2)
    held = sentence_pattern(
        "Tuesday 15 December at 09:00 with Dr Asha Rao is held until 09:17.", shown, day
    )
    assert held.fullmatch("Tuesday 2 March at 09:00 with Dr Asha Rao is held until 11:42.")
    assert not held.fullmatch("Tuesday 2 March at 09:30 with Dr Asha Rao is held until 11:42.")
    assert not held.fullmatch("Tuesday 9 March at 09:00 with Dr Asha Rao is held until 11:42.")
    now = sentence_pattern("It is 09:12 on Monday 7 December at the clinic.", shown, day)
    assert now.fullmatch("It is 23:05 on Friday 26 February at the clinic.")
    assert not now.fullmatch("It is 23:05 on Friday 26 February at the desk.")


def test_a_shown_answer_is_checked_field_by_field() -> None:
    names: dict[str, Any] = {"DAY": "2026-12-15"}
    check({"id": "$DOCTOR", "date": "$DAY"}, {"id": "d-1", "date": "2026-12-15", "x": 1}, names, "")
    assert names["DOCTOR"] == "d-1"
    for wrong in ({"id": "d-2", "date": "2026-12-15"}, {"id": "d-1"}, {"id": "d-1", "date": "x"}):
        with pytest.raises(AssertionError):
            check({"id": "$DOCTOR", "date": "$DAY"}, wrong, names, "")
    with pytest.raises(AssertionError):
        check([{"a": 1}, {"a": 2}], [{"a": 1}], names, "")
