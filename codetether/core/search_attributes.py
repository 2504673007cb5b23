"""The custom search attributes of task workflows, which operators filter on in the Temporal UI.

Registered on the namespace by ``codetether dev`` and :func:`codetether.core.temporal.ensure_search_attributes`;
set by the task code (``codetether/tasks/launch.py`` at start, the task workflow on each status).
The workflow id is the task_id.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

SA_OWNER = SearchAttributeKey.for_keyword("CodeTetherOwner")
SA_STATUS = SearchAttributeKey.for_keyword("CodeTetherStatus")
SA_MODEL = SearchAttributeKey.for_keyword("CodeTetherModel")
SEARCH_ATTRIBUTES = (SA_OWNER, SA_STATUS, SA_MODEL)
