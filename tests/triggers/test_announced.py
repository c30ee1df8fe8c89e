"""The watcher's memory: which studies were announced, and how far its ``after`` day has moved."""

from __future__ import annotations

import datetime as dt

from airflow_provider_tcia.triggers.announced import AFTER_LAG_DAYS, FORGET_MARGIN_DAYS, Progress, study_key

D = dt.date(2024, 5, 10)


def rows(*uids):
    return [{"StudyInstanceUID": uid, "PatientID": "P"} for uid in uids]


def test_unseen_drops_announced_and_repeated_studies():
    progress = Progress(D)
    assert progress.unseen(rows("1", "2", "2")) == rows("1", "2")
    progress.mark_seen(rows("1"), D)
    assert progress.unseen(rows("1", "2")) == rows("2")


def test_a_row_without_uid_is_keyed_by_its_content():
    assert study_key({"b": 1, "a": 2}) == study_key({"a": 2, "b": 1})


def test_advance_moves_after_and_forgets_only_what_tcia_can_no_longer_return():
    progress = Progress(D)
    progress.mark_seen(rows("old"), D)
    today = D + dt.timedelta(days=10)
    progress.mark_seen(rows("recent"), today - dt.timedelta(days=1))
    assert progress.advance(today)
    assert progress.after == today - dt.timedelta(days=AFTER_LAG_DAYS)
    # "old" was first seen long before the new ``after``: a study added on or before that day is never
    # returned by "added after" it any more. "recent" may still be returned, so it is remembered.
    assert set(progress.seen) == {"recent"}
    assert not progress.advance(today)  # nothing more to do the same day


def test_advance_keeps_studies_near_the_horizon():
    progress = Progress(D)
    today = D + dt.timedelta(days=AFTER_LAG_DAYS + 1)
    near = today - dt.timedelta(days=AFTER_LAG_DAYS + FORGET_MARGIN_DAYS)
    progress.mark_seen(rows("near"), near)
    progress.advance(today)
    assert "near" in progress.seen


def test_after_never_moves_back():
    progress = Progress(D)
    assert not progress.advance(D)
    assert progress.after == D


def test_load_and_dump_round_trip():
    progress = Progress(D, {"1": "2024-05-10"})
    assert Progress.load(progress.dump(), dt.date(2000, 1, 1)) == progress


def test_load_falls_back_to_the_default_and_respects_the_floor():
    default = dt.date(2024, 1, 1)
    assert Progress.load(None, default) == Progress(default)
    assert Progress.load({"after": "garbage"}, default) == Progress(default)
    assert Progress.load("not a dict", default) == Progress(default)
    saved = {"after": "2023-12-01", "seen": {}}
    assert Progress.load(saved, default).after == dt.date(2023, 12, 1)
    assert Progress.load(saved, default, floor=default).after == default
