"""One tool call of the coding agent (read, glob, grep, edit, write, bash, todowrite) run in the
task's prepared workspace.

The ``run_tool`` activity (``codetether/agent/workspace/activities.py``, scheduled by the agent
loop on the worker that holds the workspace) delegates here: the call is checked against the
agent type's tools, run (bash in the sandbox), reported as task progress, and its output appended
to the transcript; an output over the cap is kept whole as an artifact and shortened in the
transcript.

The file tools run on this worker's own bounded thread pool, each call under a timeout: the
default pool is shared with DNS lookups and webhook deliveries, so a stuck file call must never
take its threads. After a call that may change files, the workspace's disk use is measured
against ``CODETETHER_WORKSPACE_QUOTA_BYTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.exceptions import ApplicationError

from codetether.agent.contracts import WORKSPACE_MISSING, ChatMessage, ToolCallInput, ToolCallResult
from codetether.agent.tools import MUTATING, PLAN_FILE, READ_ONLY_TYPES, allowed
from codetether.agent.transcript import write_messages
from codetether.agent.workspace.files import ToolFailure, Workspace
from codetether.agent.workspace.layout import WorkspaceLayout, run_artifact_id
from codetether.agent.workspace.sandbox import Sandbox, SandboxUnavailable
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.core.ids import iso, new_id, utcnow
from codetether.tasks.artifacts import store_artifact
from codetether.tasks.contracts import TaskChanges
from codetether.tasks.events import EventRecorder

log = logging.getLogger(__name__)


class ToolCalls:
    def __init__(
        self, *, settings: Settings, db: Database, recorder: EventRecorder, sandbox: Sandbox, layout: WorkspaceLayout
    ) -> None:
        self.settings = settings
        self.db = db
        self.recorder = recorder
        self.sandbox = sandbox
        self.layout = layout
        self.pool = ThreadPoolExecutor(max_workers=settings.file_tool_threads, thread_name_prefix="file-tools")

    async def _in_pool(self, name: str, fn, *args):
        """``fn(*args)`` on the file tools' pool; a call over the timeout fails (its thread is not the loop's)."""
        future = asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args))
        try:
            return await asyncio.wait_for(future, self.settings.file_tool_timeout_seconds)
        except asyncio.TimeoutError:
            raise ToolFailure(f"{name} took longer than {self.settings.file_tool_timeout_seconds:g} s and was abandoned") from None

    async def run(self, inp: ToolCallInput) -> ToolCallResult:
        """Runs the call and appends its output to the transcript."""
        result, message = await self.execute(inp)
        await write_messages(self.db, inp.task_id, inp.run_id, [(inp.seq, message)])
        return result

    async def execute(self, inp: ToolCallInput) -> tuple[ToolCallResult, ChatMessage]:
        """Runs the call; its transcript message is the caller's to write (a model turn that runs
        calls itself writes them with its own message, in one transaction)."""
        call = inp.call
        await self._progress(inp, f"{call.name}: {_describe(call.name, call.arguments)}")
        ws = Workspace(
            inp.workspace.path,
            owner_uid=self.sandbox.sandbox_uid(),
            writable=inp.agent_type not in READ_ONLY_TYPES,
        )
        if not os.path.isdir(ws.root):
            # The workspace is gone (worker restarted with a clean disk): let the workflow rebuild it.
            raise ApplicationError("the workspace is missing on this worker", type=WORKSPACE_MISSING, non_retryable=True)
        ok, changed = True, False
        beat = asyncio.create_task(_beat())
        try:
            try:
                text = await self._dispatch(inp, ws)
                changed = call.name in MUTATING and inp.agent_type not in READ_ONLY_TYPES
            except ToolFailure as err:
                ok, text = False, f"error: {err}"
            if call.name in MUTATING and inp.agent_type not in READ_ONLY_TYPES:
                over = await self._over_quota(ws)
                if over:
                    ok, text = False, f"{text}\n\nerror: {over}"
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        artifact_id = None
        cap = self.settings.agent_tool_output_cap
        data = text.encode("utf-8", errors="replace")
        if len(data) > cap:
            artifact_id = run_artifact_id(inp.task_id, inp.run_id, f"output-{inp.seq}")
            await store_artifact(
                self.db, artifact_id=artifact_id, task_id=inp.task_id, user_id=inp.owner_id, run_id=inp.run_id,
                name=f"{call.name}-output-{inp.seq}.txt", kind="output", content=data,
            )
            head = data[: cap // 2].decode("utf-8", errors="ignore")
            tail = data[-cap // 4 :].decode("utf-8", errors="ignore")
            text = (
                f"{head}\n\n[... output truncated: {len(data)} bytes in all; the whole output is kept as "
                f"artifact {artifact_id} ...]\n\n{tail}"
            )
        first = text.strip().splitlines()[0] if text.strip() else ""
        result = ToolCallResult(call_id=call.id, name=call.name, ok=ok, summary=first[:200], changed_files=changed,
                                artifact_id=artifact_id)
        return result, ChatMessage(role="tool", content=text, tool_call_id=call.id)

    async def _dispatch(self, inp: ToolCallInput, ws: Workspace) -> str:
        call, args = inp.call, dict(inp.call.arguments or {})
        if not allowed(inp.agent_type, call.name):
            raise ToolFailure(f"the {inp.agent_type} agent has no tool named {call.name}")
        try:
            if call.name == "read":
                return await self._in_pool("read", ws.read, _req(args, "filePath"), _int(args.get("offset")), _int(args.get("limit")))
            if call.name == "glob":
                return await self._in_pool("glob", ws.glob, _req(args, "pattern"), args.get("path"))
            if call.name == "grep":
                return await self._in_pool("grep", ws.grep, _req(args, "pattern"), args.get("path"), args.get("include"))
            if call.name == "edit":
                return await self._in_pool(
                    "edit", ws.edit, _req(args, "filePath"), _str(args.get("oldString", "")), _str(_req(args, "newString", allow_empty=True)),
                    bool(args.get("replaceAll", False)),
                )
            if call.name == "write":
                if inp.agent_type == "plan":
                    return await self._write_plan(inp, args)
                return await self._in_pool("write", ws.write, _req(args, "filePath"), _str(_req(args, "content", allow_empty=True)))
            if call.name == "bash":
                return await self._bash(inp, ws, args)
            if call.name == "todowrite":
                return await self._todos(inp, args)
        except (TypeError, ValueError) as err:
            raise ToolFailure(f"bad arguments for {call.name}: {err}") from None
        except OSError as err:
            raise ToolFailure(f"{call.name} failed: {err.strerror or err}") from None
        raise ToolFailure(f"no tool named {call.name}")

    async def _over_quota(self, ws: Workspace) -> str | None:
        """Why the workspace is over its disk quota, or None."""
        quota = self.settings.workspace_quota_bytes
        try:
            used = await self._in_pool("measuring the workspace", disk_usage, ws.root, quota)
        except ToolFailure as err:
            return str(err)
        if used <= quota:
            return None
        return (f"the workspace takes more than its quota of {quota // (1024 * 1024)} MiB; "
                "delete files (build output, downloads) before going on")

    async def _write_plan(self, inp: ToolCallInput, args: dict) -> str:
        name = os.path.basename(str(args.get("filePath", "")))
        if name != PLAN_FILE or os.path.normpath(str(args.get("filePath"))) not in (PLAN_FILE, os.path.join(inp.workspace.path, PLAN_FILE)):
            raise ToolFailure(f"the plan agent may only write {PLAN_FILE}")
        out = self.layout.outputs(inp.task_id)
        os.makedirs(out, exist_ok=True)
        content = _str(args.get("content", ""))
        with open(os.path.join(out, PLAN_FILE), "w", encoding="utf-8") as f:
            f.write(content)
        return f"wrote {PLAN_FILE} ({len(content.encode())} bytes; kept as the task's plan, outside the repository)"

    async def _bash(self, inp: ToolCallInput, ws: Workspace, args: dict) -> str:
        command = _req(args, "command")
        workdir = ws.resolve(args.get("workdir"), must_exist=True) if args.get("workdir") else ws.root
        if not os.path.isdir(workdir):
            raise ToolFailure("workdir is not a folder")
        try:
            outcome = await self.sandbox.run(
                ws.root, workdir, command, timeout_ms=_int(args.get("timeout")),
                read_only=inp.agent_type in READ_ONLY_TYPES,
                max_output=max(self.settings.agent_tool_output_cap * 8, 1024 * 1024),
            )
        except SandboxUnavailable as err:
            raise ToolFailure(str(err)) from None
        text = outcome.output.decode("utf-8", errors="replace")
        if outcome.timed_out:
            return f"{text}\n(command timed out and was killed, with every process it started)"
        return f"{text}\n(exit code {outcome.exit_code})" if text else f"(no output; exit code {outcome.exit_code})"

    async def _todos(self, inp: ToolCallInput, args: dict) -> str:
        todos = args.get("todos")
        if not isinstance(todos, list):
            raise ToolFailure("todos must be a list of {content, status}")
        lines = []
        for t in todos[:100]:
            if not isinstance(t, dict) or "content" not in t:
                raise ToolFailure("each todo needs content and status")
            mark = {"completed": "x", "in_progress": "~", "cancelled": "-"}.get(str(t.get("status")), " ")
            lines.append(f"[{mark}] {str(t['content'])[:300]}")
        done = sum(1 for t in todos if isinstance(t, dict) and t.get("status") == "completed")
        await self._progress(inp, "todo: " + "; ".join(lines)[:450], percent=int(100 * done / len(todos)) if todos else None)
        return "todo list updated:\n" + "\n".join(lines)

    async def _progress(self, inp: ToolCallInput, message: str, percent: int | None = None) -> None:
        try:
            await self.recorder.record_progress(
                inp.task_id, inp.run_id,
                {"message": message[:500], "percent": percent, "updated_at": iso(utcnow()), "tool": inp.call.name},
            )
        except Exception:  # noqa: BLE001 - progress is best effort
            log.exception("recording tool progress of %s failed", inp.task_id)


def disk_usage(root: str, stop_after: int) -> int:
    """Bytes of disk the tree under ``root`` takes (allocated blocks, so sparse files count what
    they use), counting stops a little past ``stop_after``."""
    used = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            with contextlib.suppress(OSError):
                used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
        if used > stop_after:
            break
    return used


async def _beat() -> None:
    # Frequent heartbeats are how a cancel reaches a running bash within 2 s. The first waits a
    # beat, so a call that ends at once (most reads and greps) sends none.
    while True:
        await asyncio.sleep(0.25)
        activity.heartbeat()


def _req(args: dict, name: str, *, allow_empty: bool = False):
    if name not in args or args[name] is None or (not allow_empty and args[name] == ""):
        raise ToolFailure(f"the parameter {name} is required")
    return args[name]


def _str(value) -> str:
    if not isinstance(value, str):
        raise ToolFailure("expected a string")
    return value


def _int(value) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ToolFailure(f"expected an integer, got {value!r}") from None


def _describe(name: str, args: dict) -> str:
    for key in ("description", "command", "filePath", "pattern", "question"):
        if args.get(key):
            return str(args[key]).splitlines()[0][:160]
    if name == "todowrite":
        return f"{len(args.get('todos') or [])} item(s)"
    return ""
