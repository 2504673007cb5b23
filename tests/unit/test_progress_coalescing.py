"""The agent's progress reports are coalesced to at most one recorded event per second, so a
model streaming hundreds of tokens a second does not flood the event log (or webhooks)."""

from __future__ import annotations

import codetether.tasks.activities as task_activities
from codetether.tasks.activities import ProgressReporter


class CountingRecorder:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    async def record_progress(self, task_id: str, run_id: str, progress: dict) -> None:
        self.calls.append({"task_id": task_id, "run_id": run_id, "progress": progress})


async def test_chatty_stream_becomes_one_event_per_second(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(task_activities.time, "monotonic", lambda: clock[0])
    recorder = CountingRecorder()
    report = ProgressReporter(recorder, "task_x", "run_x")
    # 10 s of a model streaming a token every 10 ms: 1,000 callbacks.
    for i in range(1000):
        clock[0] = 1000.0 + i * 0.01
        await report(f"token {i}", None)
    assert len(recorder.calls) == 10
    assert report.reported == 10
    first, last = recorder.calls[0], recorder.calls[-1]
    assert first["task_id"] == last["task_id"] == "task_x"
    assert first["progress"]["message"] == "token 0"
    assert last["progress"]["message"] == "token 900"


async def test_progress_message_is_bounded(monkeypatch):
    recorder = CountingRecorder()
    report = ProgressReporter(recorder, "task_x", "run_x")
    await report("x" * 5000 + "END", 40)
    progress = recorder.calls[0]["progress"]
    assert len(progress["message"]) == 500 and progress["message"].endswith("END")
    assert progress["percent"] == 40 and progress["updated_at"].endswith("Z")
