"""DICOM UIDs: what every parameter named ``*_instance_uid`` must look like, checked before anything is sent.

A UID is digits and dots, at most 64 characters (DICOM PS3.5 §9.1). It is checked the same way wherever one
is given — to the hook, a query operator, a sensor or a download operator — so a PatientID passed where a
SeriesInstanceUID belongs fails at once instead of being sent and answered with nothing.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_tcia.exceptions import TciaBadRequestError

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
MAX_UID_LENGTH = 64


def check_uid(value: Any, what: str) -> str:
    """``value`` as a DICOM UID, or a :class:`TciaBadRequestError` saying what is wrong with it."""
    if not isinstance(value, str):
        raise TciaBadRequestError(f"{what} must be a DICOM UID string, not {type(value).__name__} {shown(value)}")
    uid = value.strip()
    if "://" in uid:
        raise TciaBadRequestError(
            f"{what}={shown(uid)} is a URL, not a SeriesInstanceUID; to read the series from a file getSeries "
            "wrote, pass it as series_from="
        )
    if not UID_PATTERN.match(uid) or len(uid) > MAX_UID_LENGTH:
        raise TciaBadRequestError(
            f"{what}={shown(value)} is not a DICOM UID (digits and dots, at most {MAX_UID_LENGTH} characters)"
        )
    return uid


def shown(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message names what was given, never all of a
    large input (a whole list of rows passed to the wrong parameter)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} items" if isinstance(value, list | tuple | dict) else f"{len(text)} characters"
    return f"{text[:limit]}… ({type(value).__name__} of {size})"
