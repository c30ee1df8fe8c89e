"""Is a collection on the server: known, listed in another case, unknown (with the closest names), or no
answer — and the key never in a message."""

from __future__ import annotations

import asyncio
from unittest import mock

import pytest

from airflow_provider_tcia.collection_check import (
    acheck_collection,
    check_collection,
    collection_param,
    judge_collection,
)
from airflow_provider_tcia.exceptions import TciaServerError

KEY = "sekrit-key-0123456789"
SERVER = ["TCGA-GBM", "TCGA-BRCA", "LIDC-IDRI", "4D-Lung", "VICTRE", "CBIS-DDSM", "TCGA-KIRC"]


def test_a_listed_collection_is_known():
    assert judge_collection("TCGA-BRCA", SERVER).outcome == "known"


def test_an_unknown_collection_names_the_closest():
    check = judge_collection("TCGA-NOPE", SERVER)
    assert check.outcome == "unknown"
    assert check.message.startswith("collection 'TCGA-NOPE' is not on the server (closest: ")
    closest = check.message.split("closest: ")[1].rstrip(")").split(", ")
    assert set(closest) == {"TCGA-GBM", "TCGA-BRCA", "TCGA-KIRC"}


def test_a_typo_names_the_intended_collection_first():
    assert judge_collection("TCGA-BRAC", SERVER).message.startswith(
        "collection 'TCGA-BRAC' is not on the server (closest: TCGA-BRCA"
    )
    assert "closest: 4D-Lung)" in judge_collection("4d lung", SERVER).message  # case does not hide a match


def test_an_unknown_collection_with_nothing_close():
    check = judge_collection("XYZ", SERVER)
    assert check.outcome == "unknown"
    assert check.message == "collection 'XYZ' is not on the server (none of its 7 collections has a similar name)"


def test_a_collection_listed_in_another_case():
    check = judge_collection("tcga-brca", SERVER)
    assert check.outcome == "case"
    assert check.message == (
        "collection 'tcga-brca' is not on the server as spelled: it lists 'TCGA-BRCA', which differs only in case"
    )


def test_an_empty_list_concludes_nothing():
    assert judge_collection("TCGA-BRCA", []).outcome == "unanswered"
    assert judge_collection("TCGA-BRCA", [None, ""]).outcome == "unanswered"


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"collection": "C", "modality": "MR"}, "C"), ({"modality": "MR"}, None), ({"collection": " "}, None)],
)
def test_collection_param(params, expected):
    assert collection_param(params) == expected


def _hook(*, rows=None, error=None):
    hook = mock.Mock()
    hook.config.api_key = KEY
    hook.aconfig = mock.AsyncMock(return_value=hook.config)
    hook.query = mock.Mock(return_value=rows, side_effect=error)
    hook.aquery = mock.AsyncMock(return_value=rows, side_effect=error)
    return hook


def test_check_asks_get_collection_values_on_either_side():
    hook = _hook(rows=[{"Collection": name} for name in SERVER])
    assert check_collection(hook, "TCGA-NOPE").outcome == "unknown"
    hook.query.assert_called_once_with("getCollectionValues")
    assert asyncio.run(acheck_collection(hook, "TCGA-GBM")).outcome == "known"
    hook.aquery.assert_awaited_once_with("getCollectionValues")


def test_a_failed_check_is_unanswered_and_never_raises():
    hook = _hook(error=TciaServerError(f"HTTP 503 from http://tcia.test/?api_key={KEY}"))
    for check in (check_collection(hook, "C"), asyncio.run(acheck_collection(hook, "C"))):
        assert check.outcome == "unanswered"
        assert check.message.startswith("could not check whether collection 'C' is on the server: TciaServerError")
        assert KEY not in check.message
