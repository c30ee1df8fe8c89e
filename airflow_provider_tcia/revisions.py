"""A series' revision as the server reports it, and whether a copy or an announcement is of an older one.

TCIA republishes a corrected series under the same SeriesInstanceUID. What tells the revisions apart is in
its getSeries (and getUpdatedSeries) row: ``DateReleased`` and the last submission — ``MaxSubmissionTimestamp``
on NBIA v4, ``TimeStamp`` on NBIA v1 — and, when files were added or removed, ``ImageCount``. The seed (legacy)
API's rows carry no dates, only ``ImageCount``.

Both the downloader (is the copy at the destination the current revision?) and the updated-series watcher
(was this revision announced already?) judge with :func:`revision_change`: a series is revised when either
date is *newer* than the one recorded, or its ImageCount differs from the recorded one. A date that is older
or equal, or missing on either side, says nothing. NBIA v4 reports days (``MM-DD-YYYY``), so two revisions
released on one day differ only if their image counts do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: How each API generation spells a day (with or without a time of day) in a series row.
_FORMATS = ("%m-%d-%Y", "%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%Y%m%d")


def server_timestamp(value: Any) -> str | None:
    """A date or time from a series row as ISO text — ``YYYY-MM-DD``, or ``YYYY-MM-DDTHH:MM:SS`` when it has a
    time of day other than midnight — or None when it is missing or unreadable (never an error: a row with
    an odd date still downloads; only the revision check loses that date)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    if not text:
        return None
    day, _, time = text.replace("T", " ").partition(" ")
    for fmt in _FORMATS:
        try:
            parsed = dt.datetime.strptime(day, fmt)
        except ValueError:
            continue
        if time:
            try:
                clock = dt.time.fromisoformat(time.split("+")[0].rstrip("Z").split(".")[0])
            except ValueError:
                clock = dt.time()
            parsed = dt.datetime.combine(parsed.date(), clock)
        return _iso(parsed)
    return None


def _iso(value: dt.datetime) -> str:
    if value.time() == dt.time():
        return value.date().isoformat()
    return value.replace(tzinfo=None, microsecond=0).isoformat()


def _later(now: str | None, then: str | None) -> bool:
    """Whether ``now`` is after ``then`` (ISO texts from :func:`server_timestamp`; a day counts as its midnight)."""
    if not now or not then:
        return False
    return dt.datetime.fromisoformat(now) > dt.datetime.fromisoformat(then)


@dataclass(frozen=True)
class Revision:
    """What the server reported about one revision of a series."""

    date_released: str | None = None
    """``DateReleased``, ISO (:func:`server_timestamp`)."""
    submitted: str | None = None
    """``MaxSubmissionTimestamp`` (v4) / ``TimeStamp`` (v1), ISO."""
    image_count: int | None = None

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> Revision:
        """From a getSeries / getUpdatedSeries row, whichever API generation spelled it."""
        fields = {str(k).replace("_", "").replace(" ", "").lower(): v for k, v in row.items()}
        submitted = fields.get("maxsubmissiontimestamp", fields.get("timestamp", fields.get("submitted")))
        count = fields.get("imagecount")
        try:
            image_count = None if count in (None, "") else int(float(count))
        except (TypeError, ValueError):
            image_count = None
        return cls(server_timestamp(fields.get("datereleased")), server_timestamp(submitted), image_count)

    @classmethod
    def of_record(cls, record: Any) -> Revision | None:
        """From what :meth:`record` wrote (a manifest's ``server_revision``, a watcher's memory), or None."""
        if not isinstance(record, Mapping):
            return None
        count = record.get("image_count")
        return cls(
            server_timestamp(record.get("date_released")),
            server_timestamp(record.get("submitted")),
            count if isinstance(count, int) and not isinstance(count, bool) else None,
        )

    @property
    def known(self) -> bool:
        """Whether the server reported anything to tell revisions apart by."""
        return bool(self.date_released or self.submitted or self.image_count is not None)

    def record(self) -> dict[str, Any]:
        """JSON for a manifest or a watcher's saved progress."""
        return {"date_released": self.date_released, "submitted": self.submitted, "image_count": self.image_count}


def revision_change(current: Revision, recorded: Revision | None) -> str | None:
    """Why ``current`` is a newer revision than ``recorded``, or None when nothing says so."""
    if recorded is None:
        return None
    if _later(current.date_released, recorded.date_released):
        return f"DateReleased is now {current.date_released} (it was {recorded.date_released})"
    if _later(current.submitted, recorded.submitted):
        return f"the last submission is now {current.submitted} (it was {recorded.submitted})"
    if None not in (current.image_count, recorded.image_count) and current.image_count != recorded.image_count:
        return f"ImageCount is now {current.image_count} (it was {recorded.image_count})"
    return None
