"""``GET /v1/automation/tasks/{task_id}/artifacts/{artifact_id}``: download what a task produced
(its patch, plan.md, findings.md, whole tool outputs) — scope ``tasks:read``. Another user's task
or artifact is 404; workspace checkpoints are internal and never served.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from codetether.api.deps import State, TasksRead
from codetether.api.edge.errors import problem_responses
from codetether.tasks.artifacts import download_name, load_task_artifact

router = APIRouter(prefix="/v1/automation", tags=["tasks"])


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}",
    operation_id="getTaskArtifact",
    summary="Download a task artifact",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}, "application/octet-stream": {}}, "description": "The artifact"},
               **problem_responses(401, 403, 404, 429)},
)
async def get_artifact(task_id: str, artifact_id: str, principal: TasksRead, state: State) -> Response:
    row = await load_task_artifact(state.db, task_id, artifact_id, principal.user_id)
    return Response(
        content=row.content,
        media_type=row.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{download_name(row)}"',
            "ETag": f'"{row.sha256}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
