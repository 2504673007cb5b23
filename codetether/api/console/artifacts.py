"""A task's artifacts in the console: ``/console/tasks/{id}/artifacts/{artifact_id}`` serves one
with the console session (the API's route of the same path wants a bearer token), and the task page
shows the patch (``changes.patch``) as a coloured diff (:mod:`codetether.api.console.diffview`).

The owner's artifact only (another user's, or an internal checkpoint, is 404), as an attachment;
``?view=1`` opens a text artifact in the browser, always as ``text/plain`` under a policy that runs
nothing, so a patch that contains HTML is shown as text.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from codetether.api.console.diffview import DiffView, render_patch
from codetether.api.console.web import PREFIX, ConsoleUser, get_state
from codetether.api.edge.pages import page_headers
from codetether.core.db import Database
from codetether.tasks.artifacts import PATCH_KIND, download_name, load_task_artifact

router = APIRouter(prefix=PREFIX, include_in_schema=False)

# A served file is data, never a page: no scripts, no styles, no frames, a sandboxed origin.
ARTIFACT_HEADERS = page_headers(csp="default-src 'none'; frame-ancestors 'none'; sandbox", referrer="same-origin",
                                pragma=False)


def is_text(media_type: str | None) -> bool:
    return bool(media_type) and (media_type.startswith("text/") or media_type.split(";")[0] == "application/json")


def console_artifacts(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The task's artifacts with their console links (``href`` downloads, ``view`` opens text)."""
    out = []
    for a in task.get("artifacts") or []:
        href = f"{PREFIX}/tasks/{task['task_id']}/artifacts/{a['id']}"
        # Patches, plans, findings and tool outputs are text; a "file" may be anything.
        out.append({**a, "href": href, "view": f"{href}?view=1" if a.get("kind") != "file" else None})
    return out


async def patch_view(db: Database, task: dict[str, Any], user_id: str) -> DiffView | None:
    """The task's patch rendered for the page, or None when it has none."""
    patch = next((a for a in task.get("artifacts") or [] if a.get("kind") == PATCH_KIND), None)
    if patch is None:
        return None
    row = await load_task_artifact(db, task["task_id"], patch["id"], user_id)
    return render_patch(row.content or b"")


@router.get("/tasks/{task_id}/artifacts/{artifact_id}", operation_id="consoleTaskArtifact")
async def artifact(request: Request, task_id: str, artifact_id: str, user: ConsoleUser) -> Response:
    row = await load_task_artifact(get_state(request).db, task_id, artifact_id, user.id)
    inline = request.query_params.get("view") == "1" and (row.kind != "file" or is_text(row.media_type))
    disposition = "inline" if inline else "attachment"
    return Response(
        content=row.content,
        media_type="text/plain; charset=utf-8" if inline else row.media_type,
        headers={**ARTIFACT_HEADERS, "Content-Disposition": f'{disposition}; filename="{download_name(row)}"',
                 "ETag": f'"{row.sha256}"'},
    )
