// Two claude-c2c servers (alpha and beta, one shared database) driven through the official
// TypeScript MCP SDK (npm @modelcontextprotocol/sdk) over stdio, calling every tool; run by
// tests/sdk.rs. The SDK's Client checks each result's structuredContent against the tool's
// outputSchema with the validators it caches in listTools (both clients list the tools first);
// a mismatch throws, which counts as a failure of the tool.
//
// usage: node ts_client.mjs [BIN [DB]]   (else env C2C_BIN, C2C_DB; default `claude-c2c` on
// PATH and a fresh temporary database). The SDK is resolved from NODE_PATH or from a
// node_modules above this file. Prints one line per call, then "ts-sdk: OK" or
// "ts-sdk: FAILED: <tools>"; exits 1 on any failure.

import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

// Resolve the SDK from NODE_PATH as well as from beside this file (ESM imports ignore NODE_PATH).
const require = createRequire(import.meta.url);
const load = async (spec) => import(pathToFileURL(require.resolve(spec)).href);
const { Client } = await load("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = await load("@modelcontextprotocol/sdk/client/stdio.js");

const bin = process.argv[2] || process.env.C2C_BIN || "claude-c2c";
let db = process.argv[3] || process.env.C2C_DB;
let tmp = null;
if (!db) {
  tmp = mkdtempSync(join(tmpdir(), "c2c-ts-"));
  db = join(tmp, "c2c.db");
}

const EXPECTED_TOOLS = [
  "register_session", "heartbeat", "list_sessions", "send_message", "inbox",
  "wait_for_message", "outbox", "mark_read", "set_state", "get_state", "prune",
];

const failures = [];
const fail = (tool, why) => {
  failures.push(tool);
  console.log(`FAIL ${tool}: ${why}`);
};

// A clean environment for the server: none of the developer's c2c settings leak in.
function serverEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(C2C_|CLAUDE_C2C_DB$|CLAUDE_CODE_|CLAUDE_PROJECT_DIR$)/.test(k)) env[k] = v;
  }
  return env;
}

async function connect(name) {
  const transport = new StdioClientTransport({
    command: bin,
    args: ["--name", name, "--db", db],
    env: serverEnv(),
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk) => { stderr += chunk; });
  const client = new Client({ name: `c2c-ts-${name}`, version: "1.0.0" });
  await client.connect(transport);
  return { name, client, stderr: () => stderr };
}

// One tools/call. Returns structuredContent, or null after recording a failure (a thrown
// error, an isError result when `expectError` is false, or a failed `check`).
async function call(who, tool, args, { expectError = false, check = null, label = tool } = {}) {
  let result;
  try {
    result = await who.client.callTool({ name: tool, arguments: args }, undefined, { timeout: 30000 });
  } catch (e) {
    fail(label, `${who.name}: ${e.message}`);
    return null;
  }
  const text = (result.content || []).map((c) => c.text).join("");
  if (Boolean(result.isError) !== expectError) {
    fail(label, `${who.name}: isError=${Boolean(result.isError)}: ${text}`);
    return null;
  }
  if (expectError) {
    console.log(`ok   ${label} (${who.name}) -> error as expected: ${text}`);
    return {};
  }
  const sc = result.structuredContent;
  if (check) {
    const why = check(sc);
    if (why) {
      fail(label, `${who.name}: ${why}; got ${JSON.stringify(sc)}`);
      return null;
    }
  }
  console.log(`ok   ${label} (${who.name}) -> ${JSON.stringify(sc).slice(0, 200)}`);
  return sc;
}

let alpha, beta;
try {
  try {
    alpha = await connect("alpha");
    beta = await connect("beta");
  } catch (e) {
    fail("connect", e.message);
    throw e;
  }
  for (const who of [alpha, beta]) {
    try {
      const { tools } = await who.client.listTools();
      const names = tools.map((t) => t.name);
      const missing = EXPECTED_TOOLS.filter((n) => !names.includes(n));
      const noSchema = tools.filter((t) => !t.outputSchema).map((t) => t.name);
      if (missing.length) fail("tools/list", `${who.name}: missing ${missing.join(", ")}`);
      else if (noSchema.length) fail("tools/list", `${who.name}: no outputSchema on ${noSchema.join(", ")}`);
      else console.log(`ok   tools/list (${who.name}) -> ${names.length} tools, each with an outputSchema`);
      // The SDK validates a result only against a validator it cached in listTools: make sure
      // it has one for every tool and that it rejects a result missing required fields.
      const noValidator = names.filter((n) => typeof who.client.getToolOutputValidator?.(n) !== "function");
      const probe = who.client.getToolOutputValidator?.("heartbeat");
      if (noValidator.length) fail("sdk-validation", `${who.name}: no output validator for ${noValidator.join(", ")}`);
      else if (probe({}).valid) fail("sdk-validation", `${who.name}: heartbeat's validator accepted {}`);
      else console.log(`ok   sdk-validation (${who.name}) -> outputSchema validation is on for every tool`);
    } catch (e) {
      fail("tools/list", `${who.name}: ${e.message}`);
    }
  }

  const has = (field) => (sc) => (sc && field in sc ? null : `no ${field}`);
  await call(alpha, "register_session", { name: "alpha", metadata: { client: "ts-sdk", pid: process.pid } },
    { check: (sc) => (sc?.name === "alpha" ? null : "name is not alpha") });
  await call(beta, "register_session", { name: "beta" },
    { check: (sc) => (sc?.name === "beta" ? null : "name is not beta") });
  await call(alpha, "heartbeat", {}, { check: (sc) => (sc?.ok === true ? null : "ok is not true") });

  await call(beta, "wait_for_message", { timeout_seconds: 1 }, {
    label: "wait_for_message(empty)",
    check: (sc) => (sc?.timed_out === true && sc.messages.length === 0 ? null : "expected timed_out with no messages"),
  });

  const m1 = await call(alpha, "send_message", { to: "beta", body: "ran the etl, last_run_id=abc123", tag: "status" },
    { check: has("id") });
  const m2 = await call(alpha, "send_message", { to: "beta", body: "which port does staging use?", tag: "question" },
    { check: has("id") });

  const sent = [m1?.id, m2?.id].filter((x) => x !== undefined);
  await call(beta, "inbox", {}, {
    check: (sc) => {
      const ids = (sc?.messages || []).map((m) => m.id);
      return sent.every((id) => ids.includes(id)) ? null : `inbox lacks ${sent}`;
    },
  });
  await call(beta, "inbox", { unread_only: false, limit: 5, tag: "status" }, { label: "inbox(tag)", check: has("messages") });

  await call(beta, "wait_for_message", { timeout_seconds: 1 }, {
    label: "wait_for_message(present)",
    check: (sc) => (sc?.timed_out === false && sc.messages.length >= 2 ? null : "expected the two unread messages"),
  });
  await call(beta, "wait_for_message", { tag: "question", timeout_seconds: 1, limit: 5 }, {
    label: "wait_for_message(tag)",
    check: (sc) => (sc?.messages?.length === 1 && sc.messages[0].tag === "question" ? null : "expected the question"),
  });

  // beta answers the question; alpha waits for that reply.
  let reply = null;
  if (m2) {
    reply = await call(beta, "send_message", { to: "alpha", body: "8443", reply_to: m2.id }, { label: "send_message(reply)", check: has("id") });
    await call(alpha, "wait_for_message", { reply_to: m2.id, timeout_seconds: 5 }, {
      label: "wait_for_message(reply_to)",
      check: (sc) => (sc?.messages?.[0]?.body === "8443" ? null : "expected the reply"),
    });
  }
  await call(alpha, "send_message", { to: "*", body: "broadcast from alpha" }, { label: "send_message(broadcast)", check: has("id") });

  await call(alpha, "outbox", { limit: 10 }, {
    check: (sc) => (Array.isArray(sc?.messages) && sc.messages.length >= 3 ? null : "expected 3 sent messages"),
  });

  // beta acknowledges everything it has: every id is marked, so not_marked is absent.
  const inbox = await call(beta, "inbox", { limit: 100 }, { label: "inbox(before mark_read)", check: has("messages") });
  const ids = (inbox?.messages || []).map((m) => m.id);
  await call(beta, "mark_read", { message_ids: ids }, {
    label: "mark_read(all)",
    check: (sc) => (sc?.marked === ids.length ? null : `marked is not ${ids.length}`),
  });
  // alpha's own reply id is not addressed to beta; 999999 does not exist; ids[0] is already read.
  const foreign = [reply?.id ?? 999998, 999999, ids[0]].filter((x) => x !== undefined);
  await call(beta, "mark_read", { message_ids: foreign }, {
    label: "mark_read(foreign)",
    check: (sc) => (sc?.marked === 0 && sc.not_marked?.length === foreign.length ? null : "expected nothing marked, each id explained"),
  });
  await call(alpha, "outbox", {}, {
    label: "outbox(after read)",
    check: (sc) => {
      const r = sc?.messages?.find((m) => m.id === m1?.id)?.recipients?.[0];
      return r?.status === "read" ? null : "expected the first message to show read";
    },
  });

  await call(alpha, "set_state", { key: "etl/last_run_id", value: "abc123" }, { check: has("key") });
  await call(alpha, "set_state", { key: "etl/config", value: { port: 8443, hosts: ["a", "b"], dry_run: false } },
    { label: "set_state(object)", check: has("key") });
  await call(beta, "get_state", { key: "etl/last_run_id" }, {
    label: "get_state(key)",
    check: (sc) => (sc?.entry?.value === "abc123" ? null : "expected abc123"),
  });
  await call(beta, "get_state", { key: "no/such/key" }, {
    label: "get_state(missing key)",
    check: (sc) => (sc && sc.entry === null ? null : "expected entry null"),
  });
  await call(beta, "get_state", { prefix: "etl/" }, {
    label: "get_state(prefix)",
    check: (sc) => (sc?.entries?.length === 2 ? null : "expected 2 entries"),
  });
  await call(beta, "get_state", {}, {
    label: "get_state(all)",
    check: (sc) => (Array.isArray(sc?.entries) && sc.entries.length >= 2 ? null : "expected entries"),
  });

  await call(beta, "list_sessions", { active_within_min: 10 }, {
    check: (sc) => {
      const names = (sc?.sessions || []).map((s) => s.name);
      return names.includes("alpha") && names.includes("beta") ? null : `expected alpha and beta, got ${names}`;
    },
  });
  await call(beta, "heartbeat", {}, { check: (sc) => (sc?.ok === true ? null : "ok is not true") });
  await call(alpha, "prune", { older_than_days: 30 }, { check: has("messages_deleted") });
  await call(alpha, "prune", { older_than_days: 0 }, { label: "prune(0)", check: has("messages_deleted") });

  // Gemini CLI adds this argument to every tool call it makes.
  await call(alpha, "list_sessions", { wait_for_previous: true }, { label: "list_sessions(wait_for_previous)", check: has("sessions") });
  await call(alpha, "heartbeat", { wait_for_previous: true }, { label: "heartbeat(wait_for_previous)", check: has("ok") });
} catch (e) {
  if (!failures.length) fail("client", e.stack || String(e));
} finally {
  for (const who of [alpha, beta]) {
    if (!who) continue;
    try { await who.client.close(); } catch { /* already gone */ }
    if (failures.length && who.stderr().trim()) console.log(`--- ${who.name} stderr ---\n${who.stderr().trim()}`);
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

if (failures.length) {
  console.log(`ts-sdk: FAILED: ${[...new Set(failures)].join(", ")}`);
  process.exit(1);
}
console.log("ts-sdk: OK");
