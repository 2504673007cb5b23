"""Budget periods: the calendar month (UTC) a user's budget or a monthly sponsorship counts."""

from __future__ import annotations

from datetime import datetime


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end
