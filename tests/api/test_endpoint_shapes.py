"""What the endpoint table can say beyond the seed's GET-and-rows: which generations serve an endpoint, a POST
form, a text/plain answer, NBIA's own parameter and date spellings — and how each generation builds the request.
"""

from __future__ import annotations

import dataclasses

import pytest

from airflow_provider_tcia.api.endpoints import DateSpelling, Endpoint, Param
from airflow_provider_tcia.api.generations import LegacyApi, NbiaApi
from airflow_provider_tcia.exceptions import TciaBadRequestError

SERIES = Param("series_instance_uid", "SeriesInstanceUID", required=True, description="A series", nbia_name="SeriesUID")
TAGS = Endpoint("getWidgetTags", "get_widget_tags", "Widget tags", (SERIES,), "Tag", ("element",), apis=("nbia",))
LEVELS = tuple(
    Param(name, api, description=name)
    for name, api in (("series_instance_uid", "SeriesInstanceUID"), ("collection", "Collection"))
)
HASH = Endpoint(
    "getWidgetHash", "get_widget_hash", "A widget's hash", LEVELS, "MD5", ("MD5Hash",),
    apis=("nbia",), http_method="POST", answer="text", one_of=("series_instance_uid", "collection"),
)  # fmt: skip
DATED = Endpoint(
    "getUpdatedWidgets", "get_updated_widgets", "Widgets updated after a date",
    (Param("date", "Date", is_date=True, description="a date"),), "Widget", ("Widget",),
    nbia_dates=(("v4", DateSpelling("fromDate", "%m-%d-%Y", False)), ("v1", DateSpelling("fromDate", "%d/%m/%Y", False))),
)  # fmt: skip
UID = "1.2.3.4"


def test_an_nbia_only_endpoint_is_refused_by_the_legacy_api_naming_it():
    assert TAGS.nbia_only and not LegacyApi().serves(TAGS) and NbiaApi().serves(TAGS)
    with pytest.raises(TciaBadRequestError, match=r"getWidgetTags is served only by NBIA.*api=nbia.*nothing was sent"):
        LegacyApi("v4").query_request(TAGS, {"series_instance_uid": UID})


def test_nbia_spells_a_parameter_its_own_way():
    request = NbiaApi().query_request(TAGS, {"series_instance_uid": UID})
    assert request.params == (("SeriesUID", UID), ("format", "json"))
    assert NbiaApi().api_params(TAGS) == ("SeriesUID", "format")


def test_a_post_form_with_a_text_answer():
    request = NbiaApi().query_request(HASH, {"collection": "TCGA-GBM"}, "json")
    assert (request.method, request.path, request.params) == (
        "POST",
        "/nbia-api/services/v4/getWidgetHash",
        (("Collection", "TCGA-GBM"),),
    )
    assert request.format is None  # (a text answer takes no format: the rows are made by the hook)
    assert NbiaApi().query_request(HASH, {"collection": "C"}, "csv").render_locally == "csv"


def test_exactly_one_of():
    assert HASH.check_params({"collection": "C"}) == {"collection": "C"}
    for given in ({}, {"collection": "C", "series_instance_uid": UID}):
        with pytest.raises(TciaBadRequestError, match=r"exactly one of series_instance_uid, collection"):
            HASH.check_params(given)


def test_an_endpoint_spells_its_own_date_on_each_nbia_version():
    import datetime as dt

    day = dt.date(2024, 3, 5)
    assert NbiaApi("v4").encode(DATED, {"date": day}) == [("fromDate", "03-05-2024")]  # strictly after: as given
    assert NbiaApi("v1").encode(DATED, {"date": day}) == [("fromDate", "05/03/2024")]
    assert LegacyApi().encode(DATED, {"date": day}) == [("Date", "2024-03-05")]


def test_v1_names_and_versions():
    v1_only_in_v4 = dataclasses.replace(TAGS, nbia_v1=False)
    assert NbiaApi("v1").path(v1_only_in_v4) == "/nbia-api/services/v4/getWidgetTags"
    renamed = dataclasses.replace(TAGS, nbia_v1_name="getWidgetTagz")
    assert NbiaApi("v1").path(renamed) == "/nbia-api/services/v1/getWidgetTagz"
    assert NbiaApi("v4").path(renamed) == "/nbia-api/services/v4/getWidgetTags"
    spelled = Param("sop_instance_uid", "SOPInstanceUID", nbia_v1_name="SOPInstanceUid")
    assert NbiaApi("v1").spelling(spelled) == "SOPInstanceUid" and NbiaApi("v4").spelling(spelled) == "SOPInstanceUID"
