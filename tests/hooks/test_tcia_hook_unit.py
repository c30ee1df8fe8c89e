"""TciaHook without a server: URL, parameter and API mapping, retries and errors (HTTP mocked)."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import re

import pendulum
import pytest

from airflow_provider_tcia.exceptions import (
    TciaAuthError,
    TciaBadRequestError,
    TciaConfigurationError,
    TciaCorruptPayloadError,
    TciaNotFoundError,
    TciaServerError,
)
from airflow_provider_tcia.hooks.config import parse_extras
from airflow_provider_tcia.hooks.tcia import TciaHook

KEY = "sekrit-key-0123456789"
ROOT = "http://tcia.test"


def use_connection(monkeypatch, conn_id: str = "tcia_default", **fields) -> None:
    conn = {"conn_type": "tcia", **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


@pytest.fixture
def no_sleep(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("airflow_provider_tcia.hooks.tcia.time.sleep", slept.append)
    return slept


@pytest.fixture
def legacy(monkeypatch):
    use_connection(monkeypatch, host=ROOT, password=KEY, extra={"api": "legacy", "retry_backoff": 0.01})
    hook = TciaHook()
    assert hook.config.generation.name == "legacy"  # read now: another fixture may change the env var
    return hook


@pytest.fixture
def nbia(monkeypatch):
    use_connection(monkeypatch, host=ROOT, extra={"api": "nbia", "retry_backoff": 0.01})
    hook = TciaHook()
    assert hook.config.generation.name == "nbia"
    return hook


# --- the connection --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "root"),
    [
        ({}, "https://services.cancerimagingarchive.net"),
        ({"environment": "test"}, "https://services-test.cancerimagingarchive.net"),
        ({"api": "nbia"}, "https://nbia.cancerimagingarchive.net"),
        ({"api": "nbia", "environment": "test"}, "https://nbia-stage.cancerimagingarchive.net"),
        ({"api": "nbia", "environment": "nlst"}, "https://nlst.cancerimagingarchive.net"),
        ({"extra__tcia__environment": "test"}, "https://services-test.cancerimagingarchive.net"),
    ],
)
def test_environment_picks_the_server(monkeypatch, extra, root):
    use_connection(monkeypatch, password=KEY, extra=extra)
    assert TciaHook().config.base_url == root


@pytest.mark.parametrize(
    ("fields", "root"),
    [
        ({"host": "http://127.0.0.1:8080"}, "http://127.0.0.1:8080"),
        ({"host": "http://127.0.0.1", "port": 8080}, "http://127.0.0.1:8080"),
        ({"host": "127.0.0.1", "port": 9000, "schema": "http"}, "http://127.0.0.1:9000"),
        ({"host": "proxy.example.org"}, "https://proxy.example.org"),
        ({"host": "https://proxy.example.org/tcia/"}, "https://proxy.example.org/tcia"),
    ],
)
def test_host_overrides_the_server_root(monkeypatch, fields, root):
    use_connection(monkeypatch, **fields)
    assert TciaHook().config.base_url == root


def test_connection_uri_form(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_TCIA_URI", f"tcia://:{KEY}@127.0.0.1:8080/http?api=nbia&api_version=v1")
    config = TciaHook("tcia_uri").config
    assert config.base_url == "http://127.0.0.1:8080"
    assert (config.generation.name, config.generation.version) == ("nbia", "v1")
    assert config.api_key == KEY


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ({"environment": "staging"}, "environment='staging'"),
        ({"api": "bindaas"}, "api='bindaas'"),
        ({"api_version": "v9"}, "api_version='v9'"),
        ({"api": "nbia", "api_version": "v2"}, "api_version='v2'"),
        ({"environment": "nlst"}, "environment='nlst'"),
        ({"key_location": "cookie"}, "key_location='cookie'"),
        ({"timeout": "soon"}, "timeout='soon'"),
        ({"max_retries": -1}, "max_retries=-1"),
        ({"proxies": "http://proxy"}, "proxies must be a mapping"),
        ({"proxies": '["http://proxy"]'}, "proxies must be a mapping"),
    ],
)
def test_bad_connection_extras_fail_before_any_request(monkeypatch, requests_mock, extra, complaint):
    use_connection(monkeypatch, host=ROOT, extra=extra)
    with pytest.raises(TciaConfigurationError, match=complaint.replace("(", r"\(")):
        TciaHook().get_collection_values()
    assert requests_mock.call_count == 0


def test_hook_arguments_override_extras(monkeypatch):
    use_connection(monkeypatch, host=ROOT, extra={"timeout": 30, "max_retries": 2})
    config = TciaHook(timeout=5, max_retries=0).config
    assert config.timeout == (5.0, 5.0)
    assert config.retry.max_retries == 0


# --- requests on each API --------------------------------------------------------------------------
def test_legacy_request_shape_and_key_in_header(legacy, requests_mock):
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getSeries", json=[{"SeriesInstanceUID": "1.2"}])
    rows = legacy.get_series(collection="TCGA-GBM", modality="MR")
    assert rows == [{"SeriesInstanceUID": "1.2"}]
    sent = requests_mock.last_request
    assert sent.qs == {"collection": ["tcga-gbm"], "modality": ["mr"], "format": ["json"]}
    assert "Collection=TCGA-GBM" in sent.url  # the API's own spelling and case
    assert sent.headers["api_key"] == KEY
    assert "api_key" not in sent.url


@pytest.mark.parametrize("name", ["key_location", "api_key_in"])
def test_legacy_key_in_query_when_asked(monkeypatch, requests_mock, name):
    use_connection(monkeypatch, host=ROOT, password=KEY, extra={name: "query"})
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getCollectionValues", json=[])
    TciaHook().get_collection_values()
    assert f"api_key={KEY}" in requests_mock.last_request.url
    assert "api_key" not in requests_mock.last_request.headers


def test_nbia_never_puts_a_key_in_the_query(monkeypatch, requests_mock):
    # NBIA v4 answers 400 to any unknown query parameter.
    use_connection(monkeypatch, host=ROOT, password=KEY, extra={"api": "nbia", "key_location": "query"})
    requests_mock.get(f"{ROOT}/nbia-api/services/v4/getCollectionValues", json=[])
    TciaHook().get_collection_values()
    assert "api_key" not in requests_mock.last_request.url


@pytest.mark.parametrize("version", ["v3", "v4"])
def test_legacy_versions(monkeypatch, requests_mock, version):
    use_connection(monkeypatch, host=ROOT, extra={"api_version": version})
    requests_mock.get(f"{ROOT}/services/{version}/TCIA/query/getCollectionValues", json=[{"Collection": "A"}])
    assert TciaHook().get_collection_values() == [{"Collection": "A"}]


@pytest.mark.parametrize(
    ("api", "path", "name"),
    [
        ("legacy", "/services/v2/TCIA/query/PatientsByModality", "PatientsByModality"),
        ("nbia", "/nbia-api/services/v4/getPatientByCollectionAndModality", "PatientsByModality"),
        ("nbia", "/nbia-api/services/v4/getPatientByCollectionAndModality", "getPatientByCollectionAndModality"),
    ],
)
def test_endpoint_names_are_mapped(monkeypatch, requests_mock, api, path, name):
    use_connection(monkeypatch, host=ROOT, extra={"api": api})
    requests_mock.get(ROOT + path, json=[{"PatientId": "P1", "Collection": "C"}])
    rows = TciaHook().query(name, collection="C", modality="MR")
    assert rows == [{"PatientID": "P1", "Collection": "C"}]


@pytest.mark.parametrize(
    ("api", "version", "date", "expected"),
    [
        ("legacy", "v2", "2024-01-31", ("Date", "2024-01-31")),
        ("legacy", "v2", pendulum.datetime(2024, 1, 31, 23, 0, tz="UTC"), ("Date", "2024-01-31")),
        ("legacy", "v2", dt.date(2024, 1, 31), ("Date", "2024-01-31")),
        # v4 selects on or after fromDate: the day after keeps the seed's "added after DATE".
        ("nbia", "v4", "2024-01-31", ("fromDate", "02-01-2024")),
        ("nbia", "v1", "2024-01-31T10:00:00+00:00", ("Date", "2024/01/31")),
    ],
)
def test_dates_are_sent_in_each_apis_format(monkeypatch, requests_mock, api, version, date, expected):
    use_connection(monkeypatch, host=ROOT, extra={"api": api, "api_version": version})
    requests_mock.get(requests_mock_any(), json=[])
    TciaHook().new_studies_in_patient_collection("TCGA-GBM", date)
    name, value = expected
    sent = requests_mock.last_request
    assert sent.path.endswith("/newstudiesinpatientcollection")
    assert (name, value) in _query_pairs(sent.url)


def test_shared_list_on_each_api(monkeypatch, requests_mock):
    use_connection(monkeypatch, host=ROOT, extra={"api": "legacy"})
    requests_mock.get(f"{ROOT}/services/v2/SharedList/query/ContentsByName", json=[{"SeriesInstanceUID": "1"}])
    assert TciaHook().get_shared_list("cart") == [{"SeriesInstanceUID": "1"}]

    use_connection(monkeypatch, host=ROOT, extra={"api": "nbia"})
    requests_mock.get(f"{ROOT}/nbia-api/services/v1/getContentsByName", json=[{"SeriesInstanceUID": "1"}])
    # NBIA's getContentsByName only speaks JSON: csv is rendered from its rows.
    text = TciaHook().get_shared_list("cart", format="csv")
    assert "format" not in requests_mock.last_request.qs
    assert text.splitlines()[0].startswith('"SeriesInstanceUID"')


def test_text_formats_return_the_servers_text(legacy, requests_mock):
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getCollectionValues", text="Collection\nTCGA-GBM\n")
    assert legacy.get_collection_values(format="CSV") == "Collection\nTCGA-GBM\n"
    assert requests_mock.last_request.qs["format"] == ["csv"]


def test_nbia_empty_body_is_no_rows(nbia, requests_mock):
    requests_mock.get(f"{ROOT}/nbia-api/services/v4/getSeries", text="")
    assert nbia.get_series(collection="nothing") == []


def test_rows_are_normalised(nbia, requests_mock):
    requests_mock.get(
        f"{ROOT}/nbia-api/services/v4/getSeriesSize", json=[{"TotalSizeInBytes": "16357620.0", "ObjectCount": 2}]
    )
    assert nbia.get_series_size("1.2.3") == [{"TotalSizeInBytes": 16357620, "ObjectCount": 2}]


def test_metadata_from_the_legacy_server_and_built_for_nbia(legacy, nbia, requests_mock):
    doc = {"QueryName": "getSeries", "Parameters": [], "Result": {"Attributes": []}}
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getSeries/metadata", json=doc)
    assert legacy.get_metadata("getSeries") == doc
    built = nbia.get_metadata("get_series")
    assert built["QueryName"] == "getSeries"
    assert [a["Name"] for a in built["Result"]["Attributes"]][:2] == ["SeriesInstanceUID", "StudyInstanceUID"]


def test_endpoint_methods_have_real_signatures():
    sig = inspect.signature(TciaHook.new_studies_in_patient_collection)
    assert list(sig.parameters) == ["self", "collection", "date", "patient_id", "format"]
    assert sig.parameters["patient_id"].default is None
    assert "NewStudiesInPatientCollection" in TciaHook.new_studies_in_patient_collection.__doc__


# --- bad input: clear errors, nothing sent ----------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda h: h.query("getSeriesSizes"), "unknown TCIA endpoint 'getSeriesSizes'"),
        (lambda h: h.query("getSeriesSize"), "getSeriesSize needs series_instance_uid"),
        (lambda h: h.patients_by_modality("TCGA-GBM", ""), "modality is empty"),
        (lambda h: h.new_patients_in_collection("TCGA-GBM", "last tuesday"), "date='last tuesday' is not a date"),
        (lambda h: h.get_series(collection="X", format="parquet"), "format='parquet' is not one of"),
        (lambda h: h.query("getSeries", colection="X"), "getSeries has no parameter 'colection'"),
        (lambda h: h.query("getImage", series_instance_uid="1"), "getImage is a download"),
        (lambda h: h.get_series(collection=["A", "B"]), "collection must be a string, not list"),
    ],
)
def test_bad_input_fails_before_sending(legacy, requests_mock, call, complaint):
    with pytest.raises(TciaBadRequestError, match=complaint.replace("(", r"\(")):
        call(legacy)
    assert requests_mock.call_count == 0


# --- errors and retries ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error"),
    [(400, TciaBadRequestError), (401, TciaAuthError), (403, TciaAuthError), (404, TciaNotFoundError)],
)
def test_client_errors_raise_at_once(legacy, requests_mock, no_sleep, status, error):
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getSeries", status_code=status, text="A parameter is missing")
    with pytest.raises(error) as info:
        legacy.get_series(collection="X")
    assert requests_mock.call_count == 1
    assert no_sleep == []
    message = str(info.value)
    assert f"HTTP {status}" in message and "getSeries(Collection='X'" in message
    assert "A parameter is missing" in message


def test_server_errors_and_429_are_retried_with_retry_after(legacy, requests_mock, no_sleep):
    url = f"{ROOT}/services/v2/TCIA/query/getCollectionValues"
    requests_mock.get(
        url,
        [
            {"status_code": 503, "text": "busy"},
            {"status_code": 429, "headers": {"Retry-After": "7"}, "text": "slow down"},
            {"status_code": 200, "json": [{"Collection": "A"}]},
        ],
    )
    assert legacy.get_collection_values() == [{"Collection": "A"}]
    assert requests_mock.call_count == 3
    assert len(no_sleep) == 2 and no_sleep[1] == 7.0
    assert all(s > 0 for s in no_sleep)


def test_retries_are_bounded(monkeypatch, requests_mock, no_sleep):
    use_connection(monkeypatch, host=ROOT, extra={"max_retries": 2, "retry_backoff": 0.01})
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getCollectionValues", status_code=502, text="bad gateway")
    with pytest.raises(TciaServerError, match="failed after 3 tries; last: HTTP 502"):
        TciaHook().get_collection_values()
    assert requests_mock.call_count == 3
    assert len(no_sleep) == 2


def test_connection_errors_are_retried(legacy, requests_mock, no_sleep):
    import requests

    url = f"{ROOT}/services/v2/TCIA/query/getCollectionValues"
    requests_mock.get(url, [{"exc": requests.ConnectionError("refused")}, {"json": [{"Collection": "A"}]}])
    assert legacy.get_collection_values() == [{"Collection": "A"}]
    assert len(no_sleep) == 1


def test_html_error_page_with_200_is_retried_then_reported(legacy, requests_mock, no_sleep):
    url = f"{ROOT}/services/v2/TCIA/query/getSeries"
    page = "<html><body>Service Unavailable</body></html>"
    requests_mock.get(url, text=page, headers={"Content-Type": "text/html"})
    with pytest.raises(TciaCorruptPayloadError, match="expected JSON but the body begins"):
        legacy.get_series(collection="X")
    assert requests_mock.call_count == legacy.config.retry.max_retries + 1


# --- the key stays secret --------------------------------------------------------------------------
def test_key_never_in_messages_or_logs(monkeypatch, requests_mock, no_sleep, caplog, capsys):
    use_connection(monkeypatch, host=ROOT, password=KEY, extra={"key_location": "query", "max_retries": 1})
    url = f"{ROOT}/services/v2/TCIA/query/getSeries"
    requests_mock.get(url, status_code=500, text=f"internal error for key {KEY}")
    caplog.set_level(logging.DEBUG)
    # requests_mock's own adapter logs the raw URL it was given; it is not in the real request path.
    caplog.set_level(logging.INFO, logger="requests_mock")
    with pytest.raises(TciaServerError) as info:
        TciaHook().get_series(collection="X")
    message = str(info.value)
    assert KEY not in message
    assert "api_key=***" in message  # the logged URL says a key was sent, not which
    assert "internal error for key ***" in message
    assert (info.value.__cause__ is None and info.value.__context__ is None) or KEY not in repr(info.value.__context__)
    # requests_mock's own adapter logs the raw URL it was given; it is not in the real request path.
    real = [r for r in caplog.records if not r.name.startswith("requests_mock")]
    assert all(KEY not in r.getMessage() for r in real)
    # The hook logs through Airflow's logging: structlog to the console on Airflow 3, stdlib logging on 2.11.
    out, err = capsys.readouterr()
    logged = "".join(r.getMessage() for r in real) + out + err
    assert "TCIA getSeries: GET" in logged
    assert KEY not in logged


def test_http_library_loggers_never_print_the_key(caplog):
    from airflow_provider_tcia.api.redact import register_secret

    register_secret(KEY)
    for name in ("urllib3.connectionpool", "httpx"):
        caplog.set_level(logging.DEBUG, logger=name)
        logging.getLogger(name).info('HTTP Request: GET %s "HTTP/1.1 200 OK"', f"http://x/q?api_key={KEY}")
    assert KEY not in caplog.text
    assert caplog.text.count("api_key=***") == 2


def test_bad_request_message_redacts_an_echoed_key(legacy, requests_mock):
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getSeries", status_code=401, text=f"bad key {KEY}")
    with pytest.raises(TciaAuthError) as info:
        legacy.get_series()
    assert KEY not in str(info.value)
    assert "check the API key" in str(info.value)


# --- test_connection -------------------------------------------------------------------------------
def test_test_connection(legacy, requests_mock):
    requests_mock.get(
        f"{ROOT}/services/v2/TCIA/query/getCollectionValues", json=[{"Collection": "A"}, {"Collection": "B"}]
    )
    ok, message = legacy.test_connection()
    assert ok and "2 collections" in message and requests_mock.call_count == 1
    requests_mock.get(f"{ROOT}/services/v2/TCIA/query/getCollectionValues", status_code=401, text="nope")
    ok, message = legacy.test_connection()
    assert not ok and "HTTP 401" in message and KEY not in message


def requests_mock_any():
    import re

    return re.compile(".*")


def _query_pairs(url: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(url).query)


def test_verify_and_proxies_reach_both_transports(monkeypatch):
    from airflow_provider_tcia.hooks.tcia import _proxy

    proxies = {"https": "http://proxy.internal:3128"}
    use_connection(monkeypatch, extra={"verify": "/etc/ssl/tcia-ca.pem", "proxies": proxies})
    hook = TciaHook()
    assert hook.session.verify == "/etc/ssl/tcia-ca.pem"
    assert hook.session.proxies["https"] == "http://proxy.internal:3128"
    assert _proxy(hook.config) == "http://proxy.internal:3128"  # what the async side gives httpx
    use_connection(monkeypatch, extra={"verify": "false"})
    assert TciaHook().session.verify is False


def test_extras_are_read_without_masking_every_value(monkeypatch, caplog):
    """Connection.extra_dejson (Airflow 3.3) registers every extra value as a secret: "nbia" warned as too short
    in every task, and "legacy" or "production" would vanish from every log line. The hook parses the extras
    itself and masks only what is secret in them: a proxy's password (and the key, the password field)."""
    from airflow.providers.common.compat.sdk import redact

    proxy = "http://me:proxy-pass-4711@proxy.internal:3128"
    extra = {"api": "nbia", "environment": "production", "key_location": "header", "proxies": {"https": proxy}}
    use_connection(monkeypatch, host=ROOT, password=KEY, extra=extra)
    caplog.set_level(logging.WARNING)
    config = TciaHook().config
    assert config.generation.name == "nbia" and config.proxies == {"https": proxy}
    assert redact("nbia API, production server, key in the header") == "nbia API, production server, key in the header"
    assert "proxy-pass-4711" not in redact(f"via {proxy}")
    assert KEY not in redact(f"key {KEY}")
    assert "too short" not in caplog.text


@pytest.mark.parametrize(("extra", "complaint"), [("{not json", "is not JSON"), ("[1, 2]", "must be a JSON object")])
def test_an_extra_that_is_not_a_json_object_fails_clearly(extra, complaint):
    # (Airflow itself refuses some of these before the hook sees them, differently on each version.)
    with pytest.raises(TciaConfigurationError, match=complaint):
        parse_extras(extra)
    assert parse_extras(None) == parse_extras("") == {}


@pytest.mark.parametrize(
    ("fields", "root"),
    [
        # The UI's way once the Port field is shown: host and port apart (Airflow 3.3.1 and 3.3.2's Test needs a port).
        ({"host": "http://127.0.0.1", "port": 8780}, "http://127.0.0.1:8780"),
        ({"host": "http://127.0.0.1:8780", "port": 8780}, "http://127.0.0.1:8780"),
        ({"port": 443}, "https://services.cancerimagingarchive.net"),
        ({"port": 443, "extra": {"api": "nbia"}}, "https://nbia.cancerimagingarchive.net"),
    ],
)
def test_the_port_field_is_honoured(monkeypatch, fields, root):
    use_connection(monkeypatch, **fields)
    assert TciaHook().config.base_url == root


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"host": "http://127.0.0.1:8780", "port": 9000}, "names port 8780 but its port field says 9000"),
        ({"port": 8780}, "port=8780 has no host: TCIA's own servers listen on 443"),
        ({"host": "ftp://127.0.0.1"}, "must be an http or https URL"),
    ],
)
def test_contradictory_ports_are_refused(monkeypatch, fields, complaint):
    from airflow_provider_tcia.exceptions import TciaConfigurationError

    use_connection(monkeypatch, **fields)
    with pytest.raises(TciaConfigurationError, match=re.escape(complaint)):
        _ = TciaHook().config
