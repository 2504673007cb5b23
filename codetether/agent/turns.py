"""One model turn that tells the truth about the output limit (CONTRACT §10).

Called by the ``model_turn`` activity (:mod:`codetether.agent.activities`). A provider that stops
at its output limit leaves either an answer cut mid-sentence or a tool call cut mid-arguments:

- a cut tool call is never run: the model is told, inside this turn, that its call was cut and
  asked to do the work in smaller steps, and its next answer is the turn's answer;
- a cut answer is continued: the model is asked to go on from where it stopped and the parts are
  joined.

The hint messages of a continuation are sent to the provider only; the transcript keeps the
turn's final answer at the turn's own sequence number, so a retried activity or a replay never
sees a half-written turn. Still cut after ``MAX_CONTINUATIONS``, the turn fails with
``output_truncated``: a cut answer is never reported as a complete result.
"""

from __future__ import annotations

from codetether.agent.backends.base import AgentBackend, Completion, ProgressFn, ProviderError
from codetether.agent.catalog import ModelSpec
from codetether.agent.contracts import AgentErrorCode, ChatMessage
from codetether.agent.tools import Tool

MAX_CONTINUATIONS = 3

CUT_CALL_HINT = (
    "Your last reply was cut off at the output limit{limit} while you were writing the arguments of "
    "the tool call {names}, so that call was NOT run. Do the same work in smaller steps: for example "
    "write a large file in several parts (create it with the first part, then add the rest with "
    "edit), or split a long command."
)
CONTINUE_HINT = (
    "Your reply was cut off at the output limit{limit}. Continue exactly where you stopped, without "
    "repeating anything you already wrote."
)


class OutputTruncated(ProviderError):
    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, code=AgentErrorCode.OUTPUT_TRUNCATED)


async def complete_truthfully(
    backend: AgentBackend, spec: ModelSpec, messages: list[ChatMessage], tools: list[Tool], progress: ProgressFn
) -> Completion:
    done = await backend.complete(spec, messages, tools, progress)
    answered = ""  # the joined parts of an answer that was cut and continued
    spent_in, spent_out = 0, 0
    for _ in range(MAX_CONTINUATIONS):
        if not done.truncated:
            break
        spent_in += done.input_tokens
        spent_out += done.output_tokens
        limit = f" ({spec.max_output_tokens} tokens)" if spec.max_output_tokens else ""
        if done.cut_tool_calls or done.tool_calls:
            names = ", ".join(f"`{n}`" for n in done.cut_tool_calls) or "you were making"
            await progress("a tool call was cut at the output limit: asking for smaller steps", None)
            hint = [
                ChatMessage(role="assistant", content=answered + done.text),
                ChatMessage(role="user", content=CUT_CALL_HINT.format(limit=limit, names=names)),
            ]
            answered = ""
        else:
            answered += done.text
            await progress("the answer was cut at the output limit: continuing", None)
            hint = [
                ChatMessage(role="assistant", content=answered),
                ChatMessage(role="user", content=CONTINUE_HINT.format(limit=limit)),
            ]
        done = await backend.complete(spec, messages + hint, tools, progress)
        if not done.tool_calls and not done.cut_tool_calls:
            done.text = answered + done.text
    if done.truncated:
        what = f"tool call {', '.join(done.cut_tool_calls)}" if done.cut_tool_calls else "answer"
        raise OutputTruncated(
            f"the model's {what} was still cut at the output limit after {MAX_CONTINUATIONS} continuations"
        )
    done.input_tokens += spent_in
    done.output_tokens += spent_out
    return done
