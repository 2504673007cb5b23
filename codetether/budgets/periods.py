"""Budget periods: the calendar month (UTC) a user's budget or a monthly sponsorship counts, and the
thresholds of a limit its events announce (``budget.threshold_reached``, ``sponsorship.threshold_reached``)."""

from __future__ import annotations

from datetime import datetime


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


# Percent of a limit at which the account hears about its spend.
THRESHOLDS_PCT = (50, 80, 100)


def reached(limit_usd: float | None, spent_usd: float) -> list[int]:
    """The thresholds that ``spent_usd`` has reached (none without a positive limit). Compared at
    nine decimals: a limit set to what the API showed as spent (rounded) counts as reached."""
    if not limit_usd or limit_usd <= 0:
        return []
    return [pct for pct in THRESHOLDS_PCT if round(spent_usd, 9) >= round(limit_usd * pct / 100, 9)]
