"""Dates as users give them and as each API generation wants them."""

from __future__ import annotations

import datetime as dt

import pendulum

from airflow_provider_tcia.exceptions import TciaBadRequestError


def parse_date(value: object, *, param: str = "date") -> dt.date:
    """A calendar date from a pendulum/datetime/date or an ISO-8601 string (``2024-01-31``,
    ``2024-01-31T00:00:00+00:00``). Datetimes are taken in UTC. Anything else is a clear error."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            parsed = pendulum.parse(text, strict=True)
        except Exception as err:
            raise TciaBadRequestError(
                f"{param}={value!r} is not a date: give a date, a datetime or an ISO-8601 string such as '2024-01-31'"
            ) from err
        if isinstance(parsed, dt.datetime):
            return parsed.astimezone(dt.UTC).date() if parsed.tzinfo else parsed.date()
        if isinstance(parsed, dt.date):
            return parsed
    raise TciaBadRequestError(
        f"{param}={value!r} is not a date: give a date, a datetime or an ISO-8601 string such as '2024-01-31'"
    )
