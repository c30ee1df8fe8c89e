"""Is a collection on the server? One check, shared by the query operators, the sensors and their trigger.

TCIA answers a query on a collection it does not have exactly as it answers one on a collection with nothing
to show: no rows, status 200. So when a query filtered on a collection comes back empty, the provider asks
the server's collection list (getCollectionValues, on either API) once and judges the name against it:

* ``known`` — the server lists it;
* ``case`` — it lists the name only in another case (``TCGA-BRCA`` for ``tcga-brca``). NBIA's database
  compares names regardless of case, so the query may well be right there; the server's spelling is named;
* ``unknown`` — it does not list it; the message names the closest names it does list;
* ``unanswered`` — the list could not be read (a server error after the hook's retries, a broken connection
  …) or was empty: nothing is concluded, and nothing fails because of it.

Only ``unknown`` ever fails anything (a sensor, which would otherwise wait until its timeout); an empty query
result stays a success for the query operators, with a warning.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_tcia.api.redact import redact_text

COLLECTIONS_ENDPOINT = "getCollectionValues"

#: How many of the server's names an ``unknown`` message suggests, and how alike they must be (difflib ratio,
#: compared regardless of case; 0.5 still suggests TCGA-BRCA for TCGA-NOPE).
CLOSEST = 5
CUTOFF = 0.5

Outcome = Literal["known", "case", "unknown", "unanswered"]


@dataclass(frozen=True)
class CollectionCheck:
    """What the server's collection list says about one collection name."""

    collection: str
    outcome: Outcome
    message: str = ""
    """For every outcome but ``known``: what was found, e.g. ``collection 'TCGA-NOPE' is not on the server
    (closest: TCGA-READ, TCGA-GBM)``."""


def collection_param(params: Mapping[str, Any]) -> str | None:
    """The ``collection`` a query's checked parameters filter on, if any."""
    value = params.get("collection")
    return value if isinstance(value, str) and value.strip() else None


def judge_collection(collection: str, names: Iterable[str]) -> CollectionCheck:
    """Judge ``collection`` against the names the server lists."""
    listed = [name for name in names if isinstance(name, str) and name]
    if not listed:
        return CollectionCheck(
            collection,
            "unanswered",
            f"could not check whether collection {collection!r} is on the server: it listed no collections",
        )
    if collection in listed:
        return CollectionCheck(collection, "known")
    by_folded: dict[str, str] = {}
    for name in listed:
        by_folded.setdefault(name.casefold(), name)
    same = by_folded.get(collection.casefold())
    if same is not None:
        return CollectionCheck(
            collection,
            "case",
            f"collection {collection!r} is not on the server as spelled: it lists {same!r}, which differs only in case",
        )
    closest = [by_folded[n] for n in difflib.get_close_matches(collection.casefold(), by_folded, CLOSEST, CUTOFF)]
    if closest:
        found = f"closest: {', '.join(closest)}"
    else:
        found = f"none of its {len(by_folded)} collections has a similar name"
    return CollectionCheck(collection, "unknown", f"collection {collection!r} is not on the server ({found})")


def check_collection(hook: Any, collection: str) -> CollectionCheck:
    """Ask the server behind ``hook`` (a :class:`~airflow_provider_tcia.hooks.tcia.TciaHook`) for its
    collections and judge ``collection``; never raises: a failure is ``unanswered``."""
    secret = None
    try:
        secret = hook.config.api_key
        rows = hook.query(COLLECTIONS_ENDPOINT)
    except Exception as err:
        return _unanswered(collection, err, secret)
    return judge_collection(collection, _names(rows))


async def acheck_collection(hook: Any, collection: str) -> CollectionCheck:
    """:func:`check_collection` on the event loop, for triggers (``hook.aquery``)."""
    secret = None
    try:
        secret = (await hook.aconfig()).api_key
        rows = await hook.aquery(COLLECTIONS_ENDPOINT)
    except Exception as err:
        return _unanswered(collection, err, secret)
    return judge_collection(collection, _names(rows))


def _names(rows: Any) -> list[str]:
    return [row["Collection"] for row in rows or [] if isinstance(row, dict) and isinstance(row.get("Collection"), str)]


def _unanswered(collection: str, error: BaseException, secret: str | None) -> CollectionCheck:
    message = f"could not check whether collection {collection!r} is on the server: {type(error).__name__}: {error}"
    return CollectionCheck(collection, "unanswered", redact_text(message, secret))
