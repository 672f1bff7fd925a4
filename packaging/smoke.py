"""An installed `claude-c2c` answers over MCP: two servers on one fresh database, each
initialized over stdio. `alpha` gets its name from `--name`; `beta` starts with no arguments,
as the original's `.mcp.json` (`uvx claude-c2c`) runs it, and calls register_session. Alpha
sends beta a message and beta's inbox holds it.
Standard library only, so it runs with any Python 3.8+ (CI runs it on the wheel's install).

usage: python smoke.py BIN   (BIN: the installed entry point). Prints each step and
"smoke: OK", or the failing step and exit status 1.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading

TIMEOUT_SECONDS = 60


class Server:
    """One `claude-c2c [--name NAME]` child on DB, spoken to in newline-delimited JSON-RPC."""

    def __init__(self, binary, name, db, named=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("C2C_", "CLAUDE_"))}
        env["CLAUDE_C2C_DB"] = db
        self.name = name
        self.proc = subprocess.Popen(
            [binary, "--name", name] if named else [binary],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        self.next_id = 0
        # stderr is the log: drain it so a chatty server never blocks, keep it for a failure.
        self.log = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()

    def send(self, message):
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name}: the server closed stdout during {method}")
            reply = json.loads(line)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{self.name}: {method} failed: {reply['error']}")
                return reply["result"]
            # Anything else (a notification) is not what this check is about.

    def initialize(self):
        result = self.request("initialize", {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "claude-c2c-smoke", "version": "0"},
        })
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    def call(self, tool, arguments):
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{self.name}: {tool} returned an error: {result['content']}")
        return result["structuredContent"]

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass  # it has exited already
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "c2c.db")
        alpha, beta = Server(binary, "alpha", db), Server(binary, "beta", db, named=False)
        # A server that stops answering must fail the check, not hang it: killed, it closes
        # stdout and the pending request fails.
        watchdog = threading.Timer(TIMEOUT_SECONDS, lambda: [s.proc.kill() for s in (alpha, beta)])
        watchdog.daemon = True
        watchdog.start()
        try:
            for server in (alpha, beta):
                info = server.initialize()["serverInfo"]
                print(f"{server.name}: initialize -> {info['name']} {info['version']}")
            registered = beta.call("register_session", {"name": "beta"})
            print(f"beta: register_session -> {json.dumps(registered)[:80]}")
            body = "smoke test: hello beta"
            sent = alpha.call("send_message", {"to": "beta", "body": body})
            print(f"alpha: send_message -> id {sent['id']} to {sent['to']}")
            messages = beta.call("inbox", {})["messages"]
            print(f"beta: inbox -> {len(messages)} message(s)")
            if not any(m["id"] == sent["id"] and m["body"] == body
                       and m["from_name"] == "alpha" for m in messages):
                raise RuntimeError(f"beta's inbox lacks alpha's message: {messages}")
        except Exception as error:  # noqa: BLE001 - any failure is the answer
            print(f"smoke: FAILED: {error!r}")
            for server in (alpha, beta):
                log = b"".join(server.log).decode(errors="replace").strip()
                print(f"{server.name}'s log:\n{log or '(empty)'}")
            sys.exit(1)
        finally:
            watchdog.cancel()
            alpha.close()
            beta.close()
    print("smoke: OK")


if __name__ == "__main__":
    main()
