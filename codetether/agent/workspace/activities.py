"""Workspace activities: prepare (clone or rebuild), tool calls, checkpoints, finalize, cleanup.

``prepare_workspace`` runs on the shared task queue; whichever worker takes it clones the
codebase (or makes an empty scratch repository) under its workspace root and answers with its own
task queue, where every later step of the task runs (``run_tool``, ``checkpoint_workspace``,
``finalize_workspace``, ``cleanup_workspace``). If that worker dies, the tool call's
schedule-to-start timeout fires and the workflow prepares the workspace again elsewhere from the
base commit plus the last checkpoint (``git diff --binary``, stored as an internal artifact).
This module holds the workspace's life cycle; ``run_tool`` hands each call to
``codetether/agent/workspace/toolcalls.py``. Driven by ``codetether/agent/loop.py``; built (and
its methods registered) by ``codetether/worker.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os

import httpx
from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from codetether.agent.workspace.attachments import place_attachments
from codetether.agent.workspace.gitops import Git, GitAuth, GitError, GitOutputTooLarge, make_auth, remove_tree
from codetether.agent.workspace.layout import READY_MARKER, WorkspaceLayout, run_artifact_id
from codetether.agent.workspace.publish import publish_changes
from codetether.agent.workspace.sandbox import Sandbox
from codetether.agent.workspace.toolcalls import ToolCalls
from codetether.agent.tools import FINDINGS_FILE, PLAN_FILE, READ_ONLY_TYPES
from codetether.tasks.artifacts import CHECKPOINT_KIND, artifact_public, load_artifact, store_artifact
from codetether.codebases.service import codebase_credentials
from codetether.core.config import Settings
from codetether.core.db import Database
from codetether.tasks.events import EventRecorder
from codetether.core.models import Codebase, TaskArtifact
from codetether.codebases.repourls import InvalidRepositoryURL, check_repository_url
from codetether.core.secretbox import SecretBoxUnavailable
from codetether.files.storage import FileStorage
from codetether.agent.transcript import save_as_conversation
from codetether.agent.contracts import (
    WORKSPACE_ERROR,
    WORKSPACE_MISSING,
    AgentErrorCode,
    CheckpointInput,
    CheckpointResult,
    CleanupInput,
    CleanupResult,
    FinalizeInput,
    FinalizeResult,
    KeepPlanInput,
    KeepPlanResult,
    PrepareWorkspaceInput,
    ToolCallInput,
    ToolCallResult,
    WorkspaceInfo,
)

log = logging.getLogger(__name__)


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
        storage: FileStorage,
    ) -> None:
        self.settings = settings
        self.db = db
        self.recorder = recorder
        self.sandbox = sandbox
        # This worker's own queue: prepare_workspace hands it out.
        self.task_queue = task_queue
        self.http_client = http_client
        # Where the task's input files are read from (codetether/files/storage.py).
        self.storage = storage
        self.layout = WorkspaceLayout(settings.resolved_workspace_root)
        self.tool_calls = ToolCalls(settings=settings, db=db, recorder=recorder, sandbox=sandbox, layout=self.layout)

    @property
    def git(self) -> Git:
        return Git(allow_local=self.settings.codebase_allow_local)

    # ---- ownership ------------------------------------------------------------------------

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
        self.layout.ensure_root()
        path = self.layout.path(inp.task_id)
        marker = os.path.join(path, ".git", READY_MARKER)
        if os.path.isfile(marker) and inp.checkpoint_id is None:
            # A retry on the worker that already prepared it.
            with open(marker) as f:
                info = json.load(f)
            return WorkspaceInfo(task_queue=self.task_queue, path=path, **info)
        remove_tree(path)
        os.makedirs(self.layout.outputs(inp.task_id), exist_ok=True)
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
        # After the hand-over: the attachments stay the worker's, read-only to the sandbox.
        await place_attachments(path, inp.attachments, db=self.db, storage=self.storage, owner_id=inp.owner_id)
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

    # ---- tools (codetether/agent/workspace/toolcalls.py) ------------------------------------

    @activity.defn
    async def run_tool(self, inp: ToolCallInput) -> ToolCallResult:
        return await self.tool_calls.run(inp)

    # ---- checkpoint, finalize, cleanup ----------------------------------------------------

    @activity.defn
    async def checkpoint_workspace(self, inp: CheckpointInput) -> CheckpointResult:
        ws = inp.workspace
        if not os.path.isdir(ws.path) or not ws.base_commit:
            raise ApplicationError("the workspace is missing on this worker", type=WORKSPACE_MISSING, non_retryable=True)
        cap = self.settings.agent_checkpoint_max_bytes
        try:
            patch = await self.git.diff_binary(ws.path, ws.base_commit, max_bytes=cap)
        except GitOutputTooLarge:
            log.warning("checkpoint of %s is over the cap of %d bytes: not kept", inp.task_id, cap)
            return CheckpointResult(checkpoint_id=None, size=cap + 1)
        digest = hashlib.sha256(patch).hexdigest()
        cid = run_artifact_id(inp.task_id, inp.run_id, f"checkpoint-{digest}")
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
                self.db, artifact_id=run_artifact_id(inp.task_id, inp.run_id, what), task_id=inp.task_id,
                user_id=inp.owner_id, run_id=inp.run_id, name=name, kind=kind, content=content, media_type=media,
            )
            artifacts.append(artifact_public(row))

        changes = await self.git.changed_files(ws.path, ws.base_commit)
        git_info = None
        if inp.agent_type == "plan":
            plan_path = os.path.join(self.layout.outputs(inp.task_id), PLAN_FILE)
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
    async def keep_plan(self, inp: KeepPlanInput) -> KeepPlanResult:
        """The plan so far as an artifact of its own per revision (``plan.md``, ``plan-2.md``, …)."""
        plan_path = os.path.join(self.layout.outputs(inp.task_id), PLAN_FILE)
        plan = open(plan_path, "rb").read() if os.path.isfile(plan_path) else inp.final_text.encode()
        what, name = ("plan", PLAN_FILE) if inp.revision <= 1 else (f"plan-{inp.revision}", f"plan-{inp.revision}.md")
        row = await store_artifact(
            self.db, artifact_id=run_artifact_id(inp.task_id, inp.run_id, what), task_id=inp.task_id,
            user_id=inp.owner_id, run_id=inp.run_id, name=name, kind="plan", content=plan,
            media_type="text/markdown; charset=utf-8",
        )
        return KeepPlanResult(artifact=artifact_public(row), content=plan.decode("utf-8", "replace"))

    @activity.defn
    async def cleanup_workspace(self, inp: CleanupInput) -> CleanupResult:
        removed = remove_tree(inp.path)
        remove_tree(self.layout.outputs(inp.task_id))
        return CleanupResult(removed=removed)
