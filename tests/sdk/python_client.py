"""Two claude-c2c servers (alpha and beta, one shared database) driven through the official
Python MCP SDK (PyPI `mcp`) over stdio, calling every tool; run by tests/sdk.rs.

ClientSession.call_tool checks each result's structuredContent against the tool's outputSchema
(cached from tools/list, which both sessions do first) and raises RuntimeError on a mismatch;
that counts as a failure of the tool, like an isError result or a wrong answer.

usage: python python_client.py [BIN [DB]]   (else env C2C_BIN, C2C_DB; default `claude-c2c` on
PATH and a fresh temporary database). Prints one line per call, then "python-sdk: OK" or
"python-sdk: FAILED: <tools>"; exits 1 on any failure.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from contextlib import AsyncExitStack
from typing import Any, Callable

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client, types

EXPECTED_TOOLS = {
    "register_session", "heartbeat", "list_sessions", "send_message", "inbox",
    "wait_for_message", "outbox", "mark_read", "set_state", "get_state", "prune",
}

failures: list[str] = []


def fail(label: str, why: str) -> None:
    failures.append(label)
    print(f"FAIL {label}: {why}", flush=True)


def server_env() -> dict[str, str]:
    """The caller's environment less every variable the server reads."""
    skip = re.compile(r"^(C2C_|CLAUDE_C2C_DB$|CLAUDE_CODE_|CLAUDE_PROJECT_DIR$)")
    return {k: v for k, v in os.environ.items() if not skip.match(k)}


class Peer:
    def __init__(self, name: str, session: ClientSession):
        self.name = name
        self.session = session

    async def call(
        self,
        tool: str,
        args: dict[str, Any],
        *,
        label: str | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """One tools/call; its structuredContent, or None after recording a failure."""
        label = label or tool
        try:
            result = await self.session.call_tool(tool, args, read_timeout_seconds=30)
        except Exception as e:  # noqa: BLE001 - the SDK's validation raises RuntimeError
            # A jsonschema error's text runs on with the whole schema: keep its first line and
            # the offending instance.
            first = str(e).splitlines()[0] if str(e) else repr(e)
            cause = getattr(e.__cause__, "instance", None)
            extra = f" (instance: {json.dumps(cause)})" if cause is not None else ""
            fail(label, f"{self.name}: {type(e).__name__}: {first}{extra}")
            return None
        text = "".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            fail(label, f"{self.name}: isError=true: {text}")
            return None
        sc = result.structured_content
        if check is not None:
            why = check(sc)
            if why:
                fail(label, f"{self.name}: {why}; got {json.dumps(sc)}")
                return None
        print(f"ok   {label} ({self.name}) -> {json.dumps(sc)[:200]}", flush=True)
        return sc


def has(field: str) -> Callable[[Any], str | None]:
    return lambda sc: None if isinstance(sc, dict) and field in sc else f"no {field}"


async def connect(stack: AsyncExitStack, bin_path: str, db: str, name: str, errlog) -> Peer:
    params = StdioServerParameters(
        command=bin_path, args=["--name", name, "--db", db], env=server_env()
    )
    read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
    session = await stack.enter_async_context(ClientSession(read, write))
    await session.initialize()
    tools = (await session.list_tools()).tools
    names = {t.name for t in tools}
    no_schema = sorted(t.name for t in tools if not t.output_schema)
    if EXPECTED_TOOLS - names:
        fail("tools/list", f"{name}: missing {sorted(EXPECTED_TOOLS - names)}")
    elif no_schema:
        fail("tools/list", f"{name}: no outputSchema on {no_schema}")
    else:
        print(f"ok   tools/list ({name}) -> {len(tools)} tools, each with an outputSchema", flush=True)
    # call_tool validates every result against the cached outputSchema: check that it is on by
    # handing the same check a heartbeat result that lacks its required fields.
    try:
        await session.validate_tool_result(
            "heartbeat", types.CallToolResult(content=[], structured_content={})
        )
        fail("sdk-validation", f"{name}: heartbeat's outputSchema accepted {{}}")
    except RuntimeError:
        print(f"ok   sdk-validation ({name}) -> outputSchema validation is on", flush=True)
    return Peer(name, session)


async def scenario(alpha: Peer, beta: Peer) -> None:
    await alpha.call(
        "register_session",
        {"name": "alpha", "metadata": {"client": "python-sdk", "pid": os.getpid()}},
        check=lambda sc: None if sc and sc.get("name") == "alpha" else "name is not alpha",
    )
    await beta.call(
        "register_session", {"name": "beta"},
        check=lambda sc: None if sc and sc.get("name") == "beta" else "name is not beta",
    )
    await alpha.call("heartbeat", {}, check=lambda sc: None if sc and sc.get("ok") is True else "ok is not true")

    await beta.call(
        "wait_for_message", {"timeout_seconds": 1}, label="wait_for_message(empty)",
        check=lambda sc: None if sc and sc["timed_out"] is True and sc["messages"] == []
        else "expected timed_out with no messages",
    )

    m1 = await alpha.call(
        "send_message", {"to": "beta", "body": "ran the etl, last_run_id=abc123", "tag": "status"},
        check=has("id"),
    )
    m2 = await alpha.call(
        "send_message", {"to": "beta", "body": "which port does staging use?", "tag": "question"},
        check=has("id"),
    )
    sent = [m["id"] for m in (m1, m2) if m]

    await beta.call(
        "inbox", {},
        check=lambda sc: None if sc and set(sent) <= {m["id"] for m in sc["messages"]}
        else f"inbox lacks {sent}",
    )
    await beta.call("inbox", {"unread_only": False, "limit": 5, "tag": "status"}, label="inbox(tag)",
                    check=has("messages"))
    await beta.call(
        "wait_for_message", {"timeout_seconds": 1}, label="wait_for_message(present)",
        check=lambda sc: None if sc and sc["timed_out"] is False and len(sc["messages"]) >= 2
        else "expected the two unread messages",
    )
    await beta.call(
        "wait_for_message", {"tag": "question", "timeout_seconds": 1, "limit": 5},
        label="wait_for_message(tag)",
        check=lambda sc: None if sc and len(sc["messages"]) == 1 and sc["messages"][0]["tag"] == "question"
        else "expected the question",
    )

    reply = None
    if m2:
        reply = await beta.call(
            "send_message", {"to": "alpha", "body": "8443", "reply_to": m2["id"]},
            label="send_message(reply)", check=has("id"),
        )
        await alpha.call(
            "wait_for_message", {"reply_to": m2["id"], "timeout_seconds": 5},
            label="wait_for_message(reply_to)",
            check=lambda sc: None if sc and sc["messages"] and sc["messages"][0]["body"] == "8443"
            else "expected the reply",
        )
    await alpha.call("send_message", {"to": "*", "body": "broadcast from alpha"},
                     label="send_message(broadcast)", check=has("id"))
    await alpha.call(
        "outbox", {"limit": 10},
        check=lambda sc: None if sc and len(sc["messages"]) >= 3 else "expected 3 sent messages",
    )

    # beta acknowledges everything it has: every id is marked, so not_marked is absent.
    inbox = await beta.call("inbox", {"limit": 100}, label="inbox(before mark_read)", check=has("messages"))
    ids = [m["id"] for m in (inbox or {}).get("messages", [])]
    await beta.call(
        "mark_read", {"message_ids": ids}, label="mark_read(all)",
        check=lambda sc: None if sc and sc["marked"] == len(ids) else f"marked is not {len(ids)}",
    )
    # The reply is addressed to alpha, 999999 does not exist, ids[0] is already read.
    foreign = [reply["id"] if reply else 999998, 999999] + ids[:1]
    await beta.call(
        "mark_read", {"message_ids": foreign}, label="mark_read(foreign)",
        check=lambda sc: None if sc and sc["marked"] == 0 and len(sc.get("not_marked", [])) == len(foreign)
        else "expected nothing marked, each id explained",
    )

    def first_read(sc: Any) -> str | None:
        for m in (sc or {}).get("messages", []):
            if m1 and m["id"] == m1["id"]:
                return None if m["recipients"] and m["recipients"][0]["status"] == "read" else "not read"
        return "first message missing"

    await alpha.call("outbox", {}, label="outbox(after read)", check=first_read)

    await alpha.call("set_state", {"key": "etl/last_run_id", "value": "abc123"}, check=has("key"))
    await alpha.call(
        "set_state", {"key": "etl/config", "value": {"port": 8443, "hosts": ["a", "b"], "dry_run": False}},
        label="set_state(object)", check=has("key"),
    )
    await beta.call(
        "get_state", {"key": "etl/last_run_id"}, label="get_state(key)",
        check=lambda sc: None if sc and (sc.get("entry") or {}).get("value") == "abc123" else "expected abc123",
    )
    await beta.call(
        "get_state", {"key": "no/such/key"}, label="get_state(missing key)",
        check=lambda sc: None if sc is not None and "entry" in sc and sc["entry"] is None else "expected entry null",
    )
    await beta.call(
        "get_state", {"prefix": "etl/"}, label="get_state(prefix)",
        check=lambda sc: None if sc and len(sc.get("entries", [])) == 2 else "expected 2 entries",
    )
    await beta.call(
        "get_state", {}, label="get_state(all)",
        check=lambda sc: None if sc and len(sc.get("entries", [])) >= 2 else "expected entries",
    )

    await beta.call(
        "list_sessions", {"active_within_min": 10},
        check=lambda sc: None if sc and {"alpha", "beta"} <= {s["name"] for s in sc["sessions"]}
        else "expected alpha and beta",
    )
    await beta.call("heartbeat", {}, check=lambda sc: None if sc and sc.get("ok") is True else "ok is not true")
    await alpha.call("prune", {"older_than_days": 30}, check=has("messages_deleted"))
    await alpha.call("prune", {"older_than_days": 0}, label="prune(0)", check=has("messages_deleted"))

    # Gemini CLI adds this argument to every tool's schema and passes it through.
    await alpha.call("list_sessions", {"wait_for_previous": True},
                     label="list_sessions(wait_for_previous)", check=has("sessions"))
    await alpha.call("heartbeat", {"wait_for_previous": True},
                     label="heartbeat(wait_for_previous)", check=has("ok"))


async def main() -> int:
    bin_path = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("C2C_BIN") or "claude-c2c"
    db = (sys.argv[2] if len(sys.argv) > 2 else None) or os.environ.get("C2C_DB")
    with tempfile.TemporaryDirectory(prefix="c2c-py-") as tmp, \
            tempfile.TemporaryFile("w+", prefix="c2c-py-stderr-") as errlog:
        db = db or os.path.join(tmp, "c2c.db")
        try:
            async with AsyncExitStack() as stack:
                alpha = await connect(stack, bin_path, db, "alpha", errlog)
                beta = await connect(stack, bin_path, db, "beta", errlog)
                with anyio.fail_after(120):
                    await scenario(alpha, beta)
        except Exception as e:  # noqa: BLE001
            fail("client", f"{type(e).__name__}: {e}")
        if failures:
            errlog.seek(0)
            servers = errlog.read().strip()
            if servers:
                print(f"--- server stderr ---\n{servers}")
    if failures:
        print(f"python-sdk: FAILED: {', '.join(dict.fromkeys(failures))}")
        return 1
    print("python-sdk: OK")
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
