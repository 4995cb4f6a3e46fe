"""Schedules: a decorated function run on a cron expression or an interval.

    rt.schedule(report, "daily", cron="0 6 * * *")    # 06:00 UTC every day; the schedule id
    rt.schedule(sync, every=timedelta(minutes=5))     # every 5 minutes from its creation

A schedule is a row of the store, upserted by an id derived from the
function, the digest of its arguments and the timing, so an app may call
`rt.schedule(...)` at every start: the same call finds the same row and
changes nothing. A worker that imports the function fires it: each firing
is an ordinary pending top-level run with the id
`<schedule id>@<UTC time of the firing>`, created in the transaction that
advances the schedule's last firing, and only if no one advanced it
meanwhile, so two workers never create one firing twice. Of the firings
missed while no worker ran, only the latest is created (no backlog).

Times are UTC. Cron expressions are read by croniter (5 fields; a 6th is
seconds); the first firing is the first cron time after the schedule was
created. An `every` schedule fires at `anchor + k * every` (k = 1, 2, ...),
the anchor being the whole second at or after its creation (so that
firing times of whole-second intervals are whole seconds).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
import os
import time
from typing import Any

import orjson
from croniter import CroniterError, croniter

from .function import Function
from .ids import check_run_id, shown
from .machine import Machine
from .store.base import MAX_TIME, PENDING, RunRecord, Schedule, storable_text

__all__ = [
    "MIN_EVERY",
    "check_timing",
    "firing",
    "firing_run_id",
    "list_json",
    "list_text",
    "new_schedule",
    "next_firing",
]

#: The shortest interval of an `every` schedule, in seconds.
MIN_EVERY = 1.0
#: The longest (a hundred years): anything longer is a mistake, not a schedule.
MAX_EVERY = 100 * 366 * 86400.0


def check_timing(cron: object, every: object) -> tuple[str | None, float | None]:
    """(the cron expression, whitespace normalized; the interval in seconds):
    exactly one is given. Raises TypeError or ValueError naming the value."""
    if (cron is None) == (every is None):
        given = "both" if cron is not None else "neither"
        raise ValueError(
            f"schedule takes exactly one of cron='...' (a cron expression) and "
            f"every=timedelta(...) (an interval); {given} given"
        )
    if cron is not None:
        if not isinstance(cron, str):
            raise TypeError(f"schedule: cron is a str such as '*/5 * * * *', not {cron!r:.80}")
        expression = " ".join(cron.split())
        fields = len(expression.split())
        if fields not in (5, 6) or not croniter.is_valid(expression):
            raise ValueError(
                f"schedule: {cron!r:.100} is not a valid cron expression (five fields: minute, "
                "hour, day of month, month, day of week, as in '*/5 * * * *'; times are UTC)"
            )
        try:
            _cron_after(expression, time.time())
        except (CroniterError, ValueError, OverflowError) as e:
            raise ValueError(f"schedule: cron expression {cron!r:.100} never fires ({e})") from None
        return expression, None
    if isinstance(every, dt.timedelta):
        seconds = every.total_seconds()
    elif isinstance(every, int | float) and not isinstance(every, bool):
        seconds = float(every)
    else:
        raise TypeError(f"schedule: every is a datetime.timedelta (or seconds), not {every!r:.80}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"schedule: every={every!r} is not a positive interval")
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        raise ValueError(
            f"schedule: every={every!r} is {seconds:g} s; an interval is at least "
            f"{MIN_EVERY:g} s and at most 100 years"
        )
    return None, seconds


def new_schedule(
    fn: Function,
    machine: type[Machine],
    arguments: tuple[bytes, str],
    cron: str | None,
    every: float | None,
    now: float,
) -> Schedule:
    """The schedule of `fn` with its encoded `arguments` (blob, digest)
    created at `now`, with its id and first firing (cron and every as
    `check_timing` returns them)."""
    blob, digest = arguments
    function_id = machine.function_id
    timing = ["cron", cron] if cron is not None else ["every", every]
    key = orjson.dumps([function_id, digest, *timing])
    schedule_id = f"{function_id[:150]}#{hashlib.sha256(key).hexdigest()[:12]}"
    check_run_id(firing_run_id(schedule_id, MAX_TIME - 0.5))  # its firings' ids are valid
    schedule = Schedule(
        schedule_id, function_id, blob, digest, cron, every, now, source=_source(fn)
    )
    return _replace_next(schedule, next_firing(schedule, now))


def _source(fn: Function) -> str:
    return storable_text(os.path.abspath(fn.__wrapped__.__code__.co_filename))


def _replace_next(schedule: Schedule, next_at: float) -> Schedule:
    return dataclasses.replace(schedule, next_at=next_at)


def firing_run_id(schedule_id: str, at: float) -> str:
    """The id of the run of a firing: `<schedule id>@<UTC time>`, with
    milliseconds only when the time has a fraction of a second."""
    when = dt.datetime.fromtimestamp(round(at, 3), dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond // 1000:03d}"
    return f"{schedule_id}@{text}Z"


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _cron_after(cron: str, t: float) -> float:
    """The first time of `cron` strictly after `t`."""
    return float(croniter(cron, _utc(t)).get_next(float))


def _anchor(schedule: Schedule) -> float:
    return float(math.ceil(schedule.created_at))


def next_firing(schedule: Schedule, after: float) -> float:
    """The first firing time of the schedule strictly after `after` (and
    after its creation)."""
    after = max(after, schedule.created_at)
    if schedule.cron is not None:
        return _cron_after(schedule.cron, after)
    every = schedule.every
    assert every is not None
    anchor = _anchor(schedule)
    k = max(1, math.floor((after - anchor) / every))
    while anchor + (k - 1) * every > after and k > 1:
        k -= 1
    while anchor + k * every <= after:
        k += 1
    return anchor + k * every


def _latest(schedule: Schedule, now: float) -> float | None:
    """The latest firing time at or before `now` (None: none since creation)."""
    if schedule.cron is not None:
        cron = schedule.cron
        first = _cron_after(cron, schedule.created_at)
        if first > now:
            return None
        prev = float(croniter(cron, _utc(now)).get_prev(float))
        following = _cron_after(cron, prev)
        return following if following <= now else max(prev, first)
    every = schedule.every
    assert every is not None
    anchor = _anchor(schedule)
    k = math.floor((now - anchor) / every)
    while anchor + (k + 1) * every <= now:
        k += 1
    while k >= 1 and anchor + k * every > now:
        k -= 1
    return anchor + k * every if k >= 1 else None


def firing(schedule: Schedule, fn: Function, now: float) -> tuple[float, float, RunRecord] | None:
    """What a worker creates for the schedule at `now`: (the time of the
    latest firing due and not created yet, the next firing after it, its
    run), or None when no firing is due. Earlier missed firings are skipped.
    Raises what loading the function's compiled code raises."""
    latest = _latest(schedule, now)
    if latest is None or (schedule.last_fired is not None and latest <= schedule.last_fired):
        return None
    machine = fn.machine()
    record = RunRecord(
        firing_run_id(schedule.schedule_id, latest),
        machine.function_id,
        machine.run_fingerprint,
        schedule.args,
        status=PENDING,
        source=_source(fn),
        args_digest=schedule.args_digest,
    )
    return latest, next_firing(schedule, latest), record


# -- `resumable schedules list` -------------------------------------------------------


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    try:
        return _utc(t).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return repr(t)


def _timing(s: Schedule) -> str:
    if s.cron is not None:
        return f"cron {s.cron}"
    if s.every is None:
        return "-"
    seconds = s.every
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"every {seconds / size:g}{unit}"
    return f"every {seconds:g}s"


def _entry(s: Schedule) -> dict[str, Any]:
    last = None if s.last_fired is None else firing_run_id(s.schedule_id, s.last_fired)
    return {
        "schedule_id": s.schedule_id,
        "function": s.function,
        "cron": s.cron,
        "every_seconds": s.every,
        "created_at": s.created_at,
        "last_fired": s.last_fired,
        "last_run_id": last if s.damaged is None else None,
        "next_at": s.next_at,
        "damaged": s.damaged,
    }


def list_json(schedules: list[Schedule]) -> bytes:
    return orjson.dumps([_entry(s) for s in schedules], option=orjson.OPT_INDENT_2)


def list_text(schedules: list[Schedule]) -> str:
    if not schedules:
        return "no schedules"
    rows = [("SCHEDULE", "FUNCTION", "WHEN (UTC)", "LAST FIRED", "NEXT")]
    for s in schedules:
        when = _timing(s) if s.damaged is None else f"damaged: {s.damaged}"
        rows.append(
            (
                shown(s.schedule_id),
                shown(s.function),
                shown(when),
                _when(s.last_fired),
                _when(s.next_at),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )
