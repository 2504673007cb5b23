"""Summarises a py-spy profile (``py-spy record --format raw``: one collapsed stack per line
with its sample count) as Markdown tables: the functions with the most samples on top of the
stack (self) and in the stack at all (cumulative), and the share of samples by area.

    .venv/bin/py-spy record --pid <api pid> --duration 25 --rate 200 --format raw -o prof.txt
    .venv/bin/python bench/profile_table.py prof.txt [--top 15]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# Threads blocked in these calls wait without the CPU, but py-spy cannot tell (they block in C
# with no Python frame above the caller), so their samples are dropped: (module, function, the
# call it blocks in, found in the installed source so the line number matches this environment).
_BLOCKING = [
    ("aiosqlite.core", "_connection_worker_thread", "tx.get("),
    ("concurrent.futures.thread", "_worker", "work_queue.get("),
    ("selectors", "EpollSelector.select", "self._selector.poll("),
]


def _idle_frames() -> set[tuple[str, str, int]]:
    import importlib
    import inspect

    idle = set()
    for module, qualname, call in _BLOCKING:
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            lines, first = inspect.getsourcelines(obj)
        except (ImportError, AttributeError, OSError, TypeError):
            continue
        name = qualname.rsplit(".", 1)[-1]
        for i, text in enumerate(lines):
            if call in text:
                idle.add((name, module.replace(".", "/") + ".py", first + i))
    return idle

# Areas by the file a frame comes from, first match wins; checked innermost frame first, so a
# sample counts for the most specific area of its stack that is listed here.
AREAS: list[tuple[str, tuple[str, ...]]] = [
    ("Temporal client (payload conversion, gRPC bridge)", ("temporalio/",)),
    ("SQLAlchemy (compile, execute, result)", ("sqlalchemy/",)),
    ("database driver (asyncpg / aiosqlite)", ("asyncpg/", "aiosqlite/", "sqlite3/")),
    ("pydantic (validation, serialisation)", ("pydantic/", "pydantic_core/")),
    ("JSON", ("json/",)),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("rate limiter (limits)", ("limits/",)),
    ("FastAPI routing, dependencies", ("fastapi/",)),
    ("Starlette (requests, middleware, responses)", ("starlette/",)),
    ("uvicorn / httptools (HTTP parsing)", ("uvicorn/", "httptools/")),
    ("asyncio / uvloop event loop", ("asyncio/", "uvloop/")),
]


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """Stacks with their sample counts, without the samples of threads waiting in a blocking call."""
    stacks = []
    idle = _idle_frames()
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        frames = []
        top = None
        for raw in stack.split(";"):
            m = _FRAME.match(raw)
            frames.append((m["func"], m["file"]) if m else (raw, ""))
            top = m
        if top is not None and top["line"] and (top["func"].rsplit(".", 1)[-1], top["file"], int(top["line"])) in idle:
            continue
        stacks.append((frames, int(count)))
    return stacks


def area_of(frames: list[tuple[str, str]]) -> str:
    for func, file in reversed(frames):
        for name, prefixes in AREAS:
            if file.startswith(prefixes):
                return name
        if file.startswith("codetether/"):
            return f"CodeTether ({'/'.join(file.split('/')[:2])}/)"
    return "other (standard library, native frames)"


def summarise(path: Path, top: int = 15) -> str:
    stacks = parse(path)
    total = sum(n for _, n in stacks) or 1
    self_c: Counter[str] = Counter()
    cum_c: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    for frames, n in stacks:
        names = [f"{func} ({file})" for func, file in frames]
        self_c[names[-1]] += n
        for name in set(names):
            cum_c[name] += n
        areas[area_of(frames)] += n
    lines = [f"Samples: {total} (py-spy; threads waiting in a queue or selector left out).", "", "| area (innermost listed frame) | share |", "| --- | --- |"]
    lines += [f"| {name} | {n / total:.0%} |" for name, n in areas.most_common()]
    lines += ["", "| top self | share |", "| --- | --- |"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in self_c.most_common(top)]
    app = [(k, v) for k, v in cum_c.most_common() if k.split(" (")[1].startswith("codetether/")]
    lines += ["", "| CodeTether function, cumulative | share |", "| --- | --- |"]
    lines += [f"| `{name}` | {n / total:.1%} |" for name, n in app[:top]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    print(summarise(args.profile, args.top))


if __name__ == "__main__":
    main()
