"""The shared API core without a server: endpoint table, generations, dates, formats, streaming JSON, retries."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from airflow_provider_tcia.api.dates import parse_date
from airflow_provider_tcia.api.endpoints import ENDPOINTS, QUERY_ENDPOINTS, check_format, get_endpoint
from airflow_provider_tcia.api.formats import iter_rendered
from airflow_provider_tcia.api.generations import LegacyApi, NbiaApi, get_generation
from airflow_provider_tcia.api.jsonstream import iter_json_array
from airflow_provider_tcia.api.redact import redact_url
from airflow_provider_tcia.api.retry import RetryPolicy, retry_call
from airflow_provider_tcia.exceptions import (
    TciaBadRequestError,
    TciaConfigurationError,
    TciaCorruptPayloadError,
    TciaIncompleteResponseError,
)

SEED_ENDPOINTS = {
    "getCollectionValues", "getModalityValues", "getBodyPartValues", "getManufacturerValues", "getPatient",
    "PatientsByModality", "getPatientStudy", "getSeries", "getSeriesSize", "getImage", "getSingleImage",
    "getSOPInstanceUIDs", "NewPatientsInCollection", "NewStudiesInPatientCollection", "ContentsByName",
}  # fmt: skip


def test_the_table_has_every_seed_endpoint():
    """Every seed endpoint, served by both generations; every other entry is NBIA's only."""
    assert set(ENDPOINTS) >= SEED_ENDPOINTS
    assert {e.name for e in ENDPOINTS.values() if not e.nbia_only} == SEED_ENDPOINTS
    assert {e.name for e in QUERY_ENDPOINTS if not e.nbia_only} == SEED_ENDPOINTS - {"getImage", "getSingleImage"}


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("getPatientByCollectionAndModality", "PatientsByModality"),
        ("patients_by_modality", "PatientsByModality"),
        ("getSharedList", "ContentsByName"),
        ("getContentsByName", "ContentsByName"),
        ("get_shared_list", "ContentsByName"),
        ("getSeries", "getSeries"),
    ],
)
def test_endpoint_aliases(alias, name):
    assert get_endpoint(alias).name == name


def test_check_params():
    ep = get_endpoint("NewStudiesInPatientCollection")
    assert ep.check_params({"Collection": "C", "date": "2024-01-01", "patient_id": None}) == {
        "collection": "C",
        "date": "2024-01-01",
    }
    with pytest.raises(TciaBadRequestError, match="needs collection, date"):
        ep.check_params({})
    with pytest.raises(TciaBadRequestError, match="collection is empty"):
        ep.check_params({"collection": "  ", "date": "2024-01-01"})


def test_metadata_document_shape():
    doc = get_endpoint("getSeriesSize").metadata()
    assert doc["QueryName"] == "getSeriesSize"
    assert doc["Parameters"] == [
        {"Name": "SeriesInstanceUID", "Description": "A series' SeriesInstanceUID", "Required": True}
    ]
    assert [a["Name"] for a in doc["Result"]["Attributes"]] == ["TotalSizeInBytes", "ObjectCount"]
    assert get_endpoint("getSeries").metadata()["Result"]["Attributes"][0] == {
        "Name": "SeriesInstanceUID",
        "Description": "Series instance UID",
        "DICOM": "(0020,000E)",
    }


@pytest.mark.parametrize("fmt", ["JSON", "csv", "Xml", "html"])
def test_formats(fmt):
    assert check_format(fmt) == fmt.lower()


@pytest.mark.parametrize("fmt", ["parquet", "", None, 3])
def test_bad_formats(fmt):
    with pytest.raises(TciaBadRequestError, match="is not one of json, csv, xml, html"):
        check_format(fmt)


def test_generations():
    assert LegacyApi().version == "v2" and NbiaApi().version == "v4"
    with pytest.raises(TciaConfigurationError, match="api='graphql'"):
        get_generation("graphql")
    with pytest.raises(TciaConfigurationError, match="api_version='v2'"):
        NbiaApi("v2")
    assert NbiaApi().path(get_endpoint("getSharedList")) == "/nbia-api/services/v1/getContentsByName"
    assert NbiaApi("v1").path(get_endpoint("getSeries")) == "/nbia-api/services/v1/getSeries"
    assert LegacyApi("v3").path(get_endpoint("getSharedList")) == "/services/v3/SharedList/query/ContentsByName"


def test_date_parameters_and_their_inclusivity():
    ep = get_endpoint("NewPatientsInCollection")
    assert LegacyApi().date_param(ep) == ("Date", "%Y-%m-%d", False)
    assert NbiaApi().date_param(ep) == ("fromDate", "%m-%d-%Y", True)
    assert NbiaApi("v1").date_param(ep) == ("Date", "%Y/%m/%d", False)
    # Inclusive v4 gets the day after, so every generation means "added after 2024-12-31".
    day = dt.date(2024, 12, 31)
    assert [g.send_date(ep, day) for g in (LegacyApi(), NbiaApi(), NbiaApi("v1"))] == [
        day,
        dt.date(2025, 1, 1),
        day,
    ]


def test_nbia_v4_allowed_parameters():
    # The emulator rejects anything else with 400, as NBIA v4 does.
    v4 = NbiaApi()
    assert v4.api_params(get_endpoint("getImage")) == ("SeriesInstanceUID", "NewFileNames", "IncludeMD5")
    assert v4.api_params(get_endpoint("NewPatientsInCollection")) == ("Collection", "fromDate", "format")
    assert NbiaApi("v1").api_params(get_endpoint("NewPatientsInCollection")) == ("Collection", "Date", "format")


def test_nbia_md5_downloads():
    series = {"series_instance_uid": "1.2"}
    v4 = NbiaApi().download_request(get_endpoint("getImage"), series, md5=True)
    assert (v4.path, v4.params[-1]) == ("/nbia-api/services/v4/getImage", ("IncludeMD5", "Yes"))
    v1 = NbiaApi("v1").download_request(get_endpoint("getImage"), series, md5=True)
    assert v1.path == "/nbia-api/services/v1/getImageWithMD5Hash"
    legacy = LegacyApi().download_request(get_endpoint("getImage"), series, md5=True)
    assert legacy.path == "/services/v2/TCIA/query/getImage" and not LegacyApi().offers_md5()


def test_row_normalisation():
    row = NbiaApi().normalise_row({"PatientId": "P", "Date Released": "x", "TotalSizeInBytes": "12.0", "ImageCount": 3})
    assert row == {"PatientID": "P", "DateReleased": "x", "TotalSizeInBytes": 12, "ImageCount": 3}


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("2024-02-29T23:30:00-02:00", dt.date(2024, 3, 1)),  # taken in UTC
        (dt.datetime(2024, 2, 29, 12, tzinfo=dt.UTC), dt.date(2024, 2, 29)),
        (dt.date(2024, 2, 29), dt.date(2024, 2, 29)),
    ],
)
def test_parse_date(value, day):
    assert parse_date(value) == day


@pytest.mark.parametrize("value", ["2024-02-30", "yesterday", "", "02/29/2024", 20240229, None])
def test_parse_date_rejects(value):
    with pytest.raises(TciaBadRequestError, match="is not a date"):
        parse_date(value)


ROWS = [{"A": 'say "hi"', "B": 1, "C": None}, {"A": "<x&y>", "B": True}]


def test_render_csv():
    text = "".join(iter_rendered(ROWS, ["A", "B", "C"], "csv"))
    assert text == '"A","B","C"\n"say ""hi""","1",""\n"<x&y>","true",""\n'
    assert "".join(iter_rendered([{"Collection": "X"}], ["Collection"], "csv")) == "Collection\nX\n"


def test_render_xml_and_html():
    xml = "".join(iter_rendered(ROWS, ["A", "B", "C"], "xml"))
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Results><Row>')
    assert "<A type='java.lang.String'>&lt;x&amp;y&gt;</A>" in xml and "<C " not in xml
    assert "<B type='java.lang.Boolean'>true</B>" in xml
    html = "".join(iter_rendered(ROWS, ["A", "B", "C"], "html"))
    assert html.startswith("<P ALIGN='center'><TABLE BORDER=1><TR><TH>A</TH>") and "<TD>&nbsp;</TD>" in html


def test_render_json_drops_nulls():
    assert json.loads("".join(iter_rendered(ROWS, [], "json"))) == [
        {"A": 'say "hi"', "B": 1},
        {"A": "<x&y>", "B": True},
    ]


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 16])
def test_json_array_streams_in_any_chunking(chunk):
    data = json.dumps([{"i": i, "s": "é" * (i % 5)} for i in range(500)] + [1.25, -3, None, "x"]).encode()
    items = list(iter_json_array(data[i : i + chunk] for i in range(0, len(data), chunk)))
    assert len(items) == 504 and items[-4:] == [1.25, -3, None, "x"] and items[7]["s"] == "éé"


def test_json_array_errors():
    assert list(iter_json_array([b""])) == [] and list(iter_json_array([b" [ ] "])) == []
    with pytest.raises(TciaCorruptPayloadError, match="it starts with '<'"):
        list(iter_json_array([b"<html>oops</html>"]))
    with pytest.raises(TciaIncompleteResponseError, match="cut short"):
        list(iter_json_array([b'[{"a": 1}, {"b"']))
    with pytest.raises(TciaIncompleteResponseError, match="before the closing"):
        list(iter_json_array([b'[{"a": 1},']))


def test_retry_policy_delays_are_bounded_and_positive():
    policy = RetryPolicy(max_retries=3, backoff=1.0, max_delay=5.0)
    for attempt in range(10):
        delay = policy.delay(attempt)
        assert 0 < delay <= 5.0
    assert policy.delay(0, "2") == 2.0 and policy.delay(0, "999") == 5.0
    assert 0 < policy.delay(0, "Wed, 21 Oct 2015 07:28:00 GMT") <= 1.0
    assert [policy.can_retry(a) for a in range(5)] == [True, True, True, False, False]
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        RetryPolicy(max_retries=-1)


def test_retry_call_is_bounded_and_sleeps():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TciaIncompleteResponseError("cut")
        return "ok"

    log = logging.getLogger("test")
    policy = RetryPolicy(max_retries=2, backoff=0.5)
    assert (
        retry_call(policy, flaky, retry_on=(TciaIncompleteResponseError,), what="x", log=log, sleep=slept.append)
        == "ok"
    )
    assert len(calls) == 3 and len(slept) == 2 and all(s > 0 for s in slept)

    calls.clear()
    with pytest.raises(TciaIncompleteResponseError):
        retry_call(
            RetryPolicy(max_retries=1),
            flaky,
            retry_on=(TciaIncompleteResponseError,),
            what="x",
            log=log,
            sleep=slept.append,
        )
    assert len(calls) == 2
    with pytest.raises(ValueError):
        retry_call(policy, lambda: int("x"), retry_on=(TciaIncompleteResponseError,), what="x", log=log)


def test_redact_url():
    assert redact_url("http://h/p?a=1&api_key=SECRET&b=2") == "http://h/p?a=1&api_key=***&b=2"
    assert redact_url("http://h/p") == "http://h/p"
