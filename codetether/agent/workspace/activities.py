"""Workspace activities: prepare (clone or rebuild), tool calls, checkpoints, finalize, cleanup.

``prepare_workspace`` runs on the shared task queue; whichever worker takes it clones the
codebase (or makes an empty scratch repository) under its workspace root and answers with its own
task queue, where every later step of the task runs (``run_tool``, ``checkpoint_workspace``,
``finalize_workspace``, ``cleanup_workspace``). If that worker dies, the tool call's
schedule-to-start timeout fires and the workflow prepares the workspace again elsewhere from the
base commit plus the last checkpoint (``git diff --binary``, stored as an internal artifact).
Driven by ``codetether/agent/loop.py``; built by ``codetether/worker.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os

import httpx
from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from codetether.agent.workspace.gitops import Git, GitAuth, GitError, make_auth, remove_tree
from codetether.agent.workspace.sandbox import Sandbox, SandboxUnavailable
from codetether.agent.workspace.files import ToolFailure, Workspace
from codetether.agent.workspace.publish import publish_changes
from codetether.agent.tools import FINDINGS_FILE, MUTATING, PLAN_FILE, READ_ONLY_TYPES, allowed
from codetether.tasks.artifacts import CHECKPOINT_KIND, artifact_public, load_artifact, store_artifact
from codetether.codebases.service import codebase_credentials
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.tasks.events import EventRecorder
from codetether.core.ids import iso, new_id, utcnow
from codetether.core.models import Codebase, TaskArtifact
from codetether.codebases.repourls import InvalidRepositoryURL, check_repository_url
from codetether.core.secretbox import SecretBoxUnavailable
from codetether.agent.transcript import save_as_conversation, write_messages
from codetether.agent.contracts import (
    WORKSPACE_ERROR,
    WORKSPACE_MISSING,
    AgentErrorCode,
    ChatMessage,
    CheckpointInput,
    CheckpointResult,
    CleanupInput,
    CleanupResult,
    FinalizeInput,
    FinalizeResult,
    PrepareWorkspaceInput,
    ToolCallInput,
    ToolCallResult,
    WorkspaceInfo,
)
from codetether.tasks.contracts import TaskChanges

log = logging.getLogger(__name__)
READY_MARKER = ".codetether-base"


def _artifact_id(task_id: str, run_id: str, what: str) -> str:
    # Deterministic, so a retried activity stores the same artifact once.
    return "art_" + hashlib.sha256(f"{task_id}/{run_id}/{what}".encode()).hexdigest()[:26]


def _workspace_error(message: str) -> ApplicationError:
    return ApplicationError(message, {"code": AgentErrorCode.WORKSPACE}, type=WORKSPACE_ERROR, non_retryable=True)


class WorkspaceActivities:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        recorder: EventRecorder,
        sandbox: Sandbox,
        task_queue: str,
        http_client: httpx.AsyncClient,
    ) -> None:
        self.settings = settings
        self.db = db
        self.recorder = recorder
        self.sandbox = sandbox
        # This worker's own queue: prepare_workspace hands it out.
        self.task_queue = task_queue
        self.http_client = http_client
        self.root = settings.resolved_workspace_root

    @property
    def git(self) -> Git:
        return Git(allow_local=self.settings.codebase_allow_local)

    # ---- layout ---------------------------------------------------------------------------

    def _path(self, task_id: str) -> str:
        return str(self.root / task_id)

    def _outputs(self, task_id: str) -> str:
        return str(self.root / f"{task_id}.out")

    def _ensure_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.root, 0o711)
            os.chmod(self.root.parent, 0o711)

    def _give_to_sandbox(self, path: str) -> None:
        """The worktree (not .git) belongs to the sandbox's group so bash may write it."""
        uid = self.sandbox.sandbox_uid()
        if uid is None:
            return
        os.chown(path, uid, uid)
        os.chmod(path, 0o775)
        for dirpath, dirnames, filenames in os.walk(path):
            if dirpath == path and ".git" in dirnames:
                dirnames.remove(".git")
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    os.lchown(p, uid, uid)
                    if not os.path.islink(p):
                        os.chmod(p, (os.stat(p).st_mode | 0o060) & 0o7777)

    # ---- prepare --------------------------------------------------------------------------

    @activity.defn
    async def prepare_workspace(self, inp: PrepareWorkspaceInput) -> WorkspaceInfo:
        self._ensure_root()
        path = self._path(inp.task_id)
        marker = os.path.join(path, ".git", READY_MARKER)
        if os.path.isfile(marker) and inp.checkpoint_id is None:
            # A retry on the worker that already prepared it.
            with open(marker) as f:
                info = json.load(f)
            return WorkspaceInfo(task_queue=self.task_queue, path=path, **info)
        remove_tree(path)
        os.makedirs(self._outputs(inp.task_id), exist_ok=True)
        try:
            info = await self._materialize(inp, path)
        except GitError as err:
            remove_tree(path)
            raise _workspace_error(f"the repository could not be prepared: {err}") from None
        if inp.checkpoint_id:
            row = await load_artifact(self.db, inp.checkpoint_id)
            if row is not None:
                try:
                    await self.git.apply(path, row.content)
                except GitError as err:
                    raise _workspace_error(f"the checkpoint could not be applied: {err}") from None
        self._give_to_sandbox(path)
        with open(marker, "w") as f:
            json.dump({"base_commit": info.base_commit, "ref": info.ref, "has_repository": info.has_repository}, f)
        return info

    async def _materialize(self, inp: PrepareWorkspaceInput, path: str) -> WorkspaceInfo:
        cb = None
        if inp.codebase_id is not None:
            async with self.db.session() as s:
                cb = await s.get(Codebase, inp.codebase_id)
            if cb is None or cb.user_id != inp.owner_id:
                raise _workspace_error("the task's codebase no longer exists")
        if cb is None or not cb.repository_url:
            # No codebase, or one registered without a repository (a label): an empty scratch repo.
            await self.git.run("init", "--quiet", "--", path)
            await self.git.run("commit", "--quiet", "--allow-empty", "-m", "empty scratch workspace", cwd=path)
            return WorkspaceInfo(task_queue=self.task_queue, path=path, base_commit=await self.git.head(path))
        try:
            # The URL rules again, now with the DNS answer this clone will use.
            repo, addrs = await check_repository_url(
                cb.repository_url,
                allow_local=self.settings.codebase_allow_local,
                allow_private=self.settings.webhook_allow_private,
            )
            creds = codebase_credentials(self.settings, cb)
        except InvalidRepositoryURL as err:
            raise _workspace_error(f"the repository URL is refused: {err}") from None
        except SecretBoxUnavailable as err:
            raise _workspace_error(str(err)) from None
        auth = make_auth(repo, creds, addrs)
        try:
            if inp.base_commit:
                await self._clone_at(repo, path, inp.base_commit, cb.ref, auth)
                base = inp.base_commit
            else:
                base = await self.git.clone(repo, path, cb.ref, auth)
        finally:
            auth.cleanup()
        return WorkspaceInfo(task_queue=self.task_queue, path=path, base_commit=base, ref=cb.ref, has_repository=True)

    async def _clone_at(self, repo, path: str, commit: str, ref: str | None, auth: GitAuth) -> None:
        await self.git.clone(repo, path, ref, auth)
        rc, _o, _e = await self.git.run("cat-file", "-e", f"{commit}^{{commit}}", cwd=path, check=False)
        if rc != 0:
            await self.git.run("fetch", "--quiet", "--no-tags", "origin", "--", commit, cwd=path, auth=auth)
        await self.git.run("checkout", "--quiet", "--detach", commit, cwd=path)

    # ---- tools ----------------------------------------------------------------------------

    @activity.defn
    async def run_tool(self, inp: ToolCallInput) -> ToolCallResult:
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
            text = await self._dispatch(inp, ws)
            changed = call.name in MUTATING and inp.agent_type not in READ_ONLY_TYPES
        except ToolFailure as err:
            ok, text = False, f"error: {err}"
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        artifact_id = None
        cap = self.settings.agent_tool_output_cap
        data = text.encode("utf-8", errors="replace")
        if len(data) > cap:
            artifact_id = _artifact_id(inp.task_id, inp.run_id, f"output-{inp.seq}")
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
        await write_messages(
            self.db, inp.task_id, inp.run_id, [(inp.seq, ChatMessage(role="tool", content=text, tool_call_id=call.id))]
        )
        first = text.strip().splitlines()[0] if text.strip() else ""
        return ToolCallResult(call_id=call.id, name=call.name, ok=ok, summary=first[:200], changed_files=changed,
                              artifact_id=artifact_id)

    async def _dispatch(self, inp: ToolCallInput, ws: Workspace) -> str:
        call, args = inp.call, dict(inp.call.arguments or {})
        if not allowed(inp.agent_type, call.name):
            raise ToolFailure(f"the {inp.agent_type} agent has no tool named {call.name}")
        try:
            if call.name == "read":
                return await asyncio.to_thread(ws.read, _req(args, "filePath"), _int(args.get("offset")), _int(args.get("limit")))
            if call.name == "glob":
                return await asyncio.to_thread(ws.glob, _req(args, "pattern"), args.get("path"))
            if call.name == "grep":
                return await asyncio.to_thread(ws.grep, _req(args, "pattern"), args.get("path"), args.get("include"))
            if call.name == "edit":
                return await asyncio.to_thread(
                    ws.edit, _req(args, "filePath"), _str(args.get("oldString", "")), _str(_req(args, "newString", allow_empty=True)),
                    bool(args.get("replaceAll", False)),
                )
            if call.name == "write":
                if inp.agent_type == "plan":
                    return await self._write_plan(inp, args)
                return await asyncio.to_thread(ws.write, _req(args, "filePath"), _str(_req(args, "content", allow_empty=True)))
            if call.name == "bash":
                return await self._bash(inp, ws, args)
            if call.name == "todowrite":
                return await self._todos(inp, args)
        except (TypeError, ValueError) as err:
            raise ToolFailure(f"bad arguments for {call.name}: {err}") from None
        except OSError as err:
            raise ToolFailure(f"{call.name} failed: {err.strerror or err}") from None
        raise ToolFailure(f"no tool named {call.name}")

    async def _write_plan(self, inp: ToolCallInput, args: dict) -> str:
        name = os.path.basename(str(args.get("filePath", "")))
        if name != PLAN_FILE or os.path.normpath(str(args.get("filePath"))) not in (PLAN_FILE, os.path.join(inp.workspace.path, PLAN_FILE)):
            raise ToolFailure(f"the plan agent may only write {PLAN_FILE}")
        out = self._outputs(inp.task_id)
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
            await self.recorder.record(
                task_id=inp.task_id,
                run_id=inp.run_id,
                event_id=new_id("evt"),
                event_type="task.progress",
                changes=TaskChanges(progress={"message": message[:500], "percent": percent, "updated_at": iso(utcnow()),
                                              "tool": inp.call.name}),
            )
        except Exception:  # noqa: BLE001 - progress is best effort
            log.exception("recording tool progress of %s failed", inp.task_id)

    # ---- checkpoint, finalize, cleanup ----------------------------------------------------

    @activity.defn
    async def checkpoint_workspace(self, inp: CheckpointInput) -> CheckpointResult:
        ws = inp.workspace
        if not os.path.isdir(ws.path) or not ws.base_commit:
            raise ApplicationError("the workspace is missing on this worker", type=WORKSPACE_MISSING, non_retryable=True)
        patch = await self.git.diff_binary(ws.path, ws.base_commit)
        if len(patch) > self.settings.agent_checkpoint_max_bytes:
            log.warning("checkpoint of %s is %d bytes, over the cap: not kept", inp.task_id, len(patch))
            return CheckpointResult(checkpoint_id=None, size=len(patch))
        digest = hashlib.sha256(patch).hexdigest()
        cid = _artifact_id(inp.task_id, inp.run_id, f"checkpoint-{digest}")
        await store_artifact(
            self.db, artifact_id=cid, task_id=inp.task_id, user_id=inp.owner_id, run_id=inp.run_id,
            name="checkpoint.patch", kind=CHECKPOINT_KIND, content=patch, media_type="text/x-diff",
        )
        return CheckpointResult(checkpoint_id=cid, size=len(patch))

    @activity.defn
    async def finalize_workspace(self, inp: FinalizeInput) -> FinalizeResult:
        ws = inp.workspace
        if not os.path.isdir(ws.path) or not ws.base_commit:
            raise ApplicationError("the workspace is missing on this worker", type=WORKSPACE_MISSING, non_retryable=True)
        artifacts: list[dict] = []

        async def keep(what: str, name: str, kind: str, content: bytes, media: str = "text/plain; charset=utf-8") -> None:
            row = await store_artifact(
                self.db, artifact_id=_artifact_id(inp.task_id, inp.run_id, what), task_id=inp.task_id,
                user_id=inp.owner_id, run_id=inp.run_id, name=name, kind=kind, content=content, media_type=media,
            )
            artifacts.append(artifact_public(row))

        changes = await self.git.changed_files(ws.path, ws.base_commit)
        git_info = None
        if inp.agent_type == "plan":
            plan_path = os.path.join(self._outputs(inp.task_id), PLAN_FILE)
            plan = open(plan_path, "rb").read() if os.path.isfile(plan_path) else inp.final_text.encode()
            await keep("plan", PLAN_FILE, "plan", plan, "text/markdown; charset=utf-8")
        elif inp.agent_type == "explore":
            await keep("findings", FINDINGS_FILE, "findings", inp.final_text.encode(), "text/markdown; charset=utf-8")
        if inp.agent_type not in READ_ONLY_TYPES and changes["files"]:
            patch = await self.git.diff_text(ws.path, ws.base_commit)
            await keep("patch", "changes.patch", "patch", patch, "text/x-diff; charset=utf-8")
        if ws.has_repository:
            git_info = {"base_commit": ws.base_commit, "branch": None, "commit": None, "pushed": False, "pr_url": None}
            if inp.publish and changes["files"] and inp.agent_type not in READ_ONLY_TYPES:
                git_info = await publish_changes(inp, git_info, db=self.db, settings=self.settings, git=self.git)
        # Whole outputs of tools that were too large for the transcript, stored during the run.
        async with self.db.session() as s:
            rows = await s.execute(
                select(TaskArtifact)
                .where(TaskArtifact.task_id == inp.task_id, TaskArtifact.run_id == inp.run_id, TaskArtifact.kind == "output")
                .order_by(TaskArtifact.created_at, TaskArtifact.id)
            )
            artifacts.extend(artifact_public(r) for r in rows.scalars())
        await save_as_conversation(self.db, inp.task_id, inp.run_id)
        return FinalizeResult(changes=changes if inp.agent_type not in READ_ONLY_TYPES else None, git=git_info,
                              artifacts=artifacts)

    @activity.defn
    async def cleanup_workspace(self, inp: CleanupInput) -> CleanupResult:
        removed = remove_tree(inp.path)
        remove_tree(self._outputs(inp.task_id))
        return CleanupResult(removed=removed)


async def _beat() -> None:
    # Frequent heartbeats are how a cancel reaches a running bash within 2 s.
    while True:
        activity.heartbeat()
        await asyncio.sleep(0.25)


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

