"""What the new-studies watcher has already announced, kept small and saved across triggerer restarts.

TCIA answers "studies added after DATE" at the granularity of a day, so a watcher cannot ask only for what
is new since its last poll. It asks for what was added after an ``after`` day and drops the studies it has
already announced. To keep both the answers and this memory small it moves ``after`` forward as days pass:
to ``today - AFTER_LAG_DAYS`` (a margin for the server's clock and time zone), and forgets studies first
seen long enough before the new ``after`` that TCIA cannot return them any more.

The state is a small JSON document: ``{"after": "YYYY-MM-DD", "seen": {StudyInstanceUID: "YYYY-MM-DD"}}``
(the day each study was first announced). The updated-series watcher keeps the like per series, with the revision
it announced (:class:`SeriesProgress`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_tcia.revisions import Revision, revision_change

#: How many days behind today ``after`` trails once it moves forward.
AFTER_LAG_DAYS = 2
#: How many days before ``after`` a study must have been first seen before it is forgotten.
FORGET_MARGIN_DAYS = 2


def study_key(row: dict[str, Any], uid_field: str = "StudyInstanceUID") -> str:
    """A study's identity: its StudyInstanceUID (the whole row, for a row without one)."""
    uid = row.get(uid_field)
    if uid:
        return str(uid)
    return json.dumps(row, sort_keys=True, default=str)


@dataclass
class Progress:
    """The day the watcher asks from (studies added *after* it) and the studies it has announced."""

    after: dt.date
    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, document: Any, default_after: dt.date, *, floor: dt.date | None = None) -> Progress:
        """From a saved document; a missing or unreadable one starts from ``default_after``.

        :param floor: a configured start that saved progress never goes back before.
        """
        try:
            after = _saved_after(document, floor)
            seen = {str(k): str(v) for k, v in dict(document.get("seen") or {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls(default_after)
        return cls(after, seen)

    def dump(self) -> dict[str, Any]:
        return {"after": self.after.isoformat(), "seen": dict(self.seen)}

    def unseen(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows not announced yet, in order, each study once."""
        out, keys = [], set()
        for row in rows:
            key = study_key(row)
            if key not in self.seen and key not in keys:
                keys.add(key)
                out.append(row)
        return out

    def mark_seen(self, rows: list[dict[str, Any]], today: dt.date) -> None:
        for row in rows:
            self.seen.setdefault(study_key(row), today.isoformat())

    def advance(self, today: dt.date) -> bool:
        """Move ``after`` up to ``today - AFTER_LAG_DAYS`` and forget what TCIA can no longer return.

        Call it only after a poll whose rows were all announced (or already seen). Returns whether
        anything changed.
        """
        self.after, changed = _advanced(self.after, today, self.seen, str)
        return changed


def _advanced(
    after: dt.date, today: dt.date, remembered: dict[str, Any], day_of: Callable[[Any], str]
) -> tuple[dt.date, bool]:
    """``after`` moved up to ``today - AFTER_LAG_DAYS``, with the entries of ``remembered`` whose day (``day_of``,
    ISO) is more than ``FORGET_MARGIN_DAYS`` before it forgotten (in place); and whether anything changed."""
    target = today - dt.timedelta(days=AFTER_LAG_DAYS)
    moved = target > after
    after = max(after, target)
    horizon = (after - dt.timedelta(days=FORGET_MARGIN_DAYS)).isoformat()
    stale = [key for key, value in remembered.items() if day_of(value) < horizon]
    for key in stale:
        del remembered[key]
    return after, moved or bool(stale)


def _announced_day(recorded: dict[str, Any]) -> str:
    """The day a remembered series counts from: its announced revision's release (else when it was announced)."""
    return str(recorded.get("date_released") or recorded.get("seen") or "")[:10]


def _saved_after(document: Any, floor: dt.date | None) -> dt.date:
    """The ``after`` day of a saved document, never before ``floor``; raises for a document that has none."""
    after = dt.date.fromisoformat(str(document["after"]))
    return max(after, floor) if floor else after


def series_key(row: dict[str, Any]) -> str:
    """A series' identity: its SeriesInstanceUID (the whole row, for a row without one)."""
    return study_key(row, "SeriesInstanceUID")


@dataclass
class SeriesProgress:
    """What the updated-series watcher has announced: the day it asks from (series released *after* it) and,
    per series, the revision it announced last (:meth:`Revision.record` plus ``"seen"``, the day it was
    announced).

    Saved as ``{"after": "YYYY-MM-DD", "series": {SeriesInstanceUID: {"date_released", "submitted",
    "image_count", "seen"}}}``. A series is announced again when a row reports a newer revision than the one
    recorded (:func:`~airflow_provider_tcia.revisions.revision_change`). As ``after`` moves forward, a series
    whose announced revision was released two days before it is forgotten: getUpdatedSeries no longer returns
    that revision, and any row it returns later is released after ``after``, so newer anyway.
    """

    after: dt.date
    series: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, document: Any, default_after: dt.date, *, floor: dt.date | None = None) -> SeriesProgress:
        """From a saved document; a missing or unreadable one starts from ``default_after``."""
        try:
            after = _saved_after(document, floor)
            series = {str(k): dict(v) for k, v in dict(document.get("series") or {}).items() if isinstance(v, dict)}
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls(default_after)
        return cls(after, series)

    def dump(self) -> dict[str, Any]:
        return {"after": self.after.isoformat(), "series": {k: dict(v) for k, v in self.series.items()}}

    def changed(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """The rows not announced yet or of a newer revision than announced, in order, each series once; and
        the SeriesInstanceUIDs among them that were announced before (revisions)."""
        out, keys, revised = [], set(), []
        for row in rows:
            key = series_key(row)
            if key in keys:
                continue
            recorded = self.series.get(key)
            if recorded is None:
                out.append(row)
            elif revision_change(Revision.of_row(row), Revision.of_record(recorded)) is not None:
                out.append(row)
                revised.append(key)
            else:
                continue
            keys.add(key)
        return out, revised

    def mark_announced(self, rows: list[dict[str, Any]], today: dt.date) -> None:
        for row in rows:
            self.series[series_key(row)] = {**Revision.of_row(row).record(), "seen": today.isoformat()}

    def advance(self, today: dt.date) -> bool:
        """Move ``after`` up to ``today - AFTER_LAG_DAYS`` and forget what getUpdatedSeries can no longer
        return. Call it only after a poll whose rows were all announced. Returns whether anything changed."""
        self.after, changed = _advanced(self.after, today, self.series, _announced_day)
        return changed
