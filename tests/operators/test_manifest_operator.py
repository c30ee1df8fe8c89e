"""TciaWriteManifestOperator against the bundled emulator over real sockets, on both APIs: NBIA's manifest
endpoints (getManifestForCollection, getManifestText, getManifestForSimpleSearch: POST forms answered with a
manifest in ManifestMaker's order) or a manifest built here from getSeries, written to ``file://`` and S3 (moto)
atomically; the round trip through the download operator and tcia_utils' ``manifestToList``; refusals before
anything is sent."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_tcia.api.simple_search import SimpleSearch
from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.downloads.tcia_manifest import iter_manifest, manifest_file
from airflow_provider_tcia.emulator.search import key_of
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from airflow_provider_tcia.operators.manifest import TciaWriteManifestOperator
from airflow_provider_tcia.storage import PARTIAL_MARK, as_path

pytestmark = pytest.mark.integration

APIS = ["legacy", "nbia"]
COLLECTION = "TCIA-MW-TEST"
HEADER_KEYS = ["downloadServerUrl", "includeAnnotation", "noOfrRetry", "databasketId", "manifestVersion"]


def writer(**kwargs) -> TciaWriteManifestOperator:
    return TciaWriteManifestOperator(task_id="manifest", **kwargs)


def publish(emulator, series: int = 3) -> list[str]:
    data = emulator.publish(COLLECTION, series_count=series, image_count=1, patient_id="MW-0001")
    return list(data["series_instance_uids"])


def endpoints(emulator) -> list[tuple[str, str]]:
    return [(r["method"], r["endpoint"]) for r in emulator.requests()]


def lines_of(url: str) -> list[str]:
    return as_path(url).read_text().split("\n")


def uids_in(url: str) -> list[str]:
    return [r.series_instance_uid for r in iter_manifest(*manifest_file(url))]


def read_back(run_operator, manifest: dict, tmp_path) -> tuple[list[str], list[dict]]:
    """The series the manifest written at ``tmp_path/round.tcia`` lists as tcia_utils' ``manifestToList`` reads
    it, and our download operator's summaries of them (downloaded from it, into ``tmp_path/data``)."""
    from tcia_utils import nbia

    by_tcia_utils = nbia.manifestToList(str(tmp_path / "round.tcia"))
    downloaded = run_operator(
        TciaDownloadSeriesOperator(
            task_id="download", manifest=manifest, destination=f"file://{tmp_path}/data", progress_interval=0
        )
    )
    return by_tcia_utils, downloaded


# --- the emulator's manifest endpoints, as NBIA answers them -----------------------------------------------
def test_the_emulator_serves_nbia_manifests_as_text_in_manifest_makers_order(tcia_emulator):
    uids = publish(tcia_emulator)
    base = f"{tcia_emulator.url}/nbia-api/services/v4"
    answer = requests.post(f"{base}/getManifestForCollection", data={"collection": COLLECTION}, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    lines = answer.text.split("\n")
    assert [line.split("=", 1)[0] for line in lines[:6]] == [*HEADER_KEYS, "ListOfSeriesToDownload"]
    assert lines[0] == "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet"
    assert lines[1] == "includeAnnotation=true" and lines[2] == "noOfrRetry=4" and lines[4] == "manifestVersion=3.0"
    assert lines[3].startswith(f"databasketId={COLLECTION}-") and lines[3].endswith(".tcia")
    assert sorted(lines[6:-1]) == sorted(uids) and lines[-1] == ""  # every line ends with \n

    text = requests.post(
        f"{base}/getManifestText",
        data=[("list", uids[1]), ("list", uids[0]), ("includeAnnotation", "FALSE")],
        timeout=10,
    )
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert text.text.split("\n")[1] == "includeAnnotation=false"
    assert text.text.split("\n")[3].startswith("databasketId=manifest-")
    assert text.text.endswith(f"ListOfSeriesToDownload=\n{uids[1]}\n{uids[0]}\n")  # as sent, one field a line

    assert requests.post(f"{base}/getManifestText", data={"list": uids[0]}, timeout=10).status_code == 500
    refused = requests.post(f"{base}/getManifestText", data={"list": uids[0], "format": "csv"}, timeout=10)
    assert refused.status_code == 400 and "Invalid form parameter: 'format'" in refused.text
    assert requests.get(f"{base}/getManifestForCollection?collection={COLLECTION}", timeout=10).status_code == 405
    v1 = f"{tcia_emulator.url}/nbia-api/services/v1/getManifestText"
    assert requests.post(v1, data={"list": uids[0], "includeAnnotation": "true"}, timeout=10).status_code == 404
    unknown = requests.post(f"{base}/getManifestForCollection", data={"collection": "NOPE"}, timeout=10)
    assert unknown.text.endswith("ListOfSeriesToDownload=\n")


# --- writing, both APIs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("where", ["file", "s3"])
def test_a_collections_manifest(tcia_emulator, use_emulator, run_operator, tmp_path, request, api, where):
    hook = use_emulator(tcia_emulator, api)
    uids = publish(tcia_emulator)
    root = f"file://{tmp_path}" if where == "file" else request.getfixturevalue("s3_bucket")
    url = f"{root}/out/collection.tcia"
    tcia_emulator.clear_requests()

    result = run_operator(writer(output_path=url, collection=COLLECTION))

    made_by = "getManifestForCollection" if api == "nbia" else "local"
    assert result == {"path": url, "format": "tcia", "series": 3, "source": made_by}
    lines = lines_of(url)
    assert [line.split("=", 1)[0] for line in lines[:6]] == [*HEADER_KEYS, "ListOfSeriesToDownload"]
    assert (
        sorted(lines[6:-1])
        == sorted(uids)
        == sorted(r["SeriesInstanceUID"] for r in hook.get_series(collection=COLLECTION))
    )
    if api == "nbia":
        assert endpoints(tcia_emulator)[0] == ("POST", "getManifestForCollection")
        assert lines[3].startswith(f"databasketId={COLLECTION}-")  # NBIA's own header
    else:
        assert endpoints(tcia_emulator)[0] == ("GET", "getSeries")
        assert lines[3] == "databasketId=collection.tcia"
    assert [p.name for p in as_path(url).parent.iterdir()] == ["collection.tcia"]  # nothing temporary left


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fmt", ["tcia", "csv", "tsv"])
def test_a_manifest_of_given_series_and_rows(tcia_emulator, use_emulator, run_operator, tmp_path, api, fmt):
    hook = use_emulator(tcia_emulator, api)
    uids = publish(tcia_emulator)
    rows = hook.get_series(collection=COLLECTION)
    given = [rows[1], uids[0], rows[0]]  # a row, a UID, and a row for the same series again
    tcia_emulator.clear_requests()
    url = f"file://{tmp_path}/given.{fmt}"

    result = run_operator(writer(output_path=url, series_instance_uids=given, include_annotation=False))

    expected = [rows[1]["SeriesInstanceUID"], uids[0]] if rows[0]["SeriesInstanceUID"] == uids[0] else None
    expected = expected or list(dict.fromkeys([rows[1]["SeriesInstanceUID"], uids[0], rows[0]["SeriesInstanceUID"]]))
    assert result["series"] == len(expected) and result["format"] == fmt
    assert uids_in(url) == expected  # in the order given, without repeats
    if fmt == "tcia":
        assert lines_of(url)[1] == "includeAnnotation=false"
    else:
        assert lines_of(url)[0] == "SeriesInstanceUID"
    assert endpoints(tcia_emulator) == ([("POST", "getManifestText")] if api == "nbia" else [])


def test_a_manifest_from_a_file_getseries_wrote(tcia_emulator, use_emulator, run_operator, tmp_path):
    from airflow_provider_tcia.operators import TciaGetSeriesOperator

    use_emulator(tcia_emulator, "nbia")
    uids = publish(tcia_emulator)
    written = run_operator(
        TciaGetSeriesOperator(task_id="series", collection=COLLECTION, output_path=f"file://{tmp_path}/series.jsonl")
    )
    result = run_operator(writer(output_path=f"file://{tmp_path}/from-file.tcia", series_from=written))
    assert result["series"] == 3 and sorted(uids_in(result["path"])) == sorted(uids)


# --- the round trip -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("source", ["collection", "series"])
def test_round_trip_our_download_operator_and_tcia_utils_read_the_same_series(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, source
):
    use_emulator(tcia_emulator, api)
    uids = publish(tcia_emulator, series=2)
    url = f"file://{tmp_path}/round.tcia"
    kwargs = {"collection": COLLECTION} if source == "collection" else {"series_instance_uids": uids}
    manifest = run_operator(writer(output_path=url, **kwargs))

    by_tcia_utils, downloaded = read_back(run_operator, manifest, tmp_path)
    by_us = [r["series_instance_uid"] for r in downloaded]
    assert by_tcia_utils == by_us == uids_in(url)
    assert sorted(by_us) == sorted(uids) and all(r["verified"] for r in downloaded)


# --- failures: nothing sent, nothing left ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_path": "OUT/m.json", "collection": COLLECTION}, "its suffix says which manifest to write"),
        ({"collection": COLLECTION, "series_instance_uids": ["1.2.3"]}, "got collection and series_instance_uids"),
        ({}, "give exactly one of collection"),
        ({"series_instance_uids": ["1.2.3", "LIDC-IDRI-0001"]}, r"series_instance_uids\[1\]='LIDC-IDRI-0001' is not a DICOM UID"),
        ({"series_instance_uids": []}, "is empty"),
        ({"collection": "  "}, "collection must be a collection name"),
        ({"output_path": "relative/m.tcia", "collection": COLLECTION}, "is relative"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("api", APIS)
def test_bad_input_fails_before_anything_is_sent(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, kwargs, message
):
    use_emulator(tcia_emulator, api)
    kwargs = {"output_path": f"file://{tmp_path}/m.tcia", **kwargs}
    if kwargs["output_path"].startswith("OUT"):
        kwargs["output_path"] = kwargs["output_path"].replace("OUT", f"file://{tmp_path}")
    with pytest.raises(AirflowFailException, match=message):
        run_operator(writer(**kwargs))
    assert tcia_emulator.requests() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("api", APIS)
def test_a_collection_without_series_writes_nothing(tcia_emulator, use_emulator, run_operator, tmp_path, api):
    use_emulator(tcia_emulator, api)
    with pytest.raises(AirflowFailException, match="NOPE"):
        run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", collection="NOPE"))
    assert list(tmp_path.iterdir()) == []


def test_an_answer_cut_off_is_asked_again_and_only_a_whole_manifest_is_published(
    tcia_emulator, use_emulator, run_operator, tmp_path
):
    use_emulator(tcia_emulator, "nbia", max_retries=2)
    uids = publish(tcia_emulator, series=3)
    tcia_emulator.inject_fault("getManifestForCollection", "reset", count=2, after_bytes=300)
    result = run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", collection=COLLECTION))
    assert sorted(uids_in(result["path"])) == sorted(uids)
    assert [e for _, e in endpoints(tcia_emulator)].count("getManifestForCollection") == 3

    tcia_emulator.inject_fault("getManifestForCollection", "reset", count=3, after_bytes=300)
    with pytest.raises(Exception, match="getManifestForCollection"):
        run_operator(writer(output_path=f"file://{tmp_path}/again.tcia", collection=COLLECTION))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tcia"]  # nothing of the failed one
    assert not any(PARTIAL_MARK in p.name for p in tmp_path.iterdir())


def test_an_answer_that_is_no_manifest_is_refused(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia", max_retries=0)
    publish(tcia_emulator)
    tcia_emulator.inject_fault("getManifestForCollection", "html_error", count=1)
    with pytest.raises(Exception, match="getManifestForCollection"):
        run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", collection=COLLECTION))
    assert list(tmp_path.iterdir()) == []


# --- a simple search's manifest (getManifestForSimpleSearch, NBIA v4 only) ---------------------------------------
def searched_uids(hook, criteria: SimpleSearch, collections: list[str]) -> set[str]:
    """The SeriesInstanceUIDs of the series ``hook.iter_simple_search`` matches, its database keys resolved
    through the emulator's own key of each series getSeries lists."""
    keys = {row["SeriesIdentifier"] for row in hook.iter_simple_search(criteria) if "SeriesIdentifier" in row}
    listed = [r["SeriesInstanceUID"] for c in collections for r in hook.get_series(collection=c)]
    return {uid for uid in listed if key_of(uid) in keys}


def publish_search_data(emulator) -> tuple[list[str], list[str]]:
    """Three CT series of one patient and two MR series of another in COLLECTION: (the CT UIDs, the MR UIDs)."""
    ct = emulator.publish(COLLECTION, series_count=3, image_count=1, patient_id="MW-0001", modality="CT")
    mr = emulator.publish(COLLECTION, series_count=2, image_count=1, patient_id="MW-0002", modality="MR")
    return list(ct["series_instance_uids"]), list(mr["series_instance_uids"])


def test_the_emulator_serves_a_simple_searchs_manifest_as_nbia_does(tcia_emulator):
    _, mr = publish_search_data(tcia_emulator)
    url = f"{tcia_emulator.url}/nbia-api/services/v4/getManifestForSimpleSearch"
    form = SimpleSearch(collections=COLLECTION, modalities="MR").form(start=0, size=1_000_000)
    answer = requests.post(url, data=form, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/x-nbia-manifest-file")  # NBIA's own type
    lines = answer.text.split("\n")
    assert [line.split("=", 1)[0] for line in lines[:6]] == [*HEADER_KEYS, "ListOfSeriesToDownload"]
    assert lines[1] == "includeAnnotation=false"  # always, whatever the search
    assert lines[3].startswith("databasketId=manifest-") and lines[3].endswith(".tcia")
    assert sorted(lines[6:-1]) == sorted(mr) and lines[-1] == ""  # real UIDs, not NBIA's database keys

    # start/size page the patients, as getSimpleSearch does: the second patient (by subject) alone
    page = requests.post(url, data=SimpleSearch(collections=COLLECTION).form(start=1, size=1), timeout=10)
    assert sorted(page.text.split("\n")[6:-1]) == sorted(mr)
    nothing = requests.post(url, data=SimpleSearch(collections="NOPE").form(start=0, size=10), timeout=10)
    assert nothing.status_code == 200 and nothing.text.endswith("ListOfSeriesToDownload=\n")

    refused = requests.post(url, data=[*form, ("includeAnnotation", "true")], timeout=10)
    assert refused.status_code == 400 and "Invalid form parameter: 'includeAnnotation'" in refused.text
    no_size = [(k, v) for k, v in form if k != "size"]
    assert requests.post(url, data=no_size, timeout=10).status_code == 500  # NBIA reads size unconditionally
    assert requests.get(url, params=form, timeout=10).status_code == 405
    v1 = f"{tcia_emulator.url}/nbia-api/services/v1/getManifestForSimpleSearch"
    assert requests.post(v1, data=form, timeout=10).status_code == 404


@pytest.mark.parametrize("fmt", ["tcia", "csv"])
def test_a_simple_searchs_manifest_lists_exactly_the_series_it_matches(
    tcia_emulator, use_emulator, run_operator, tmp_path, fmt
):
    hook = use_emulator(tcia_emulator, "nbia")
    ct, mr = publish_search_data(tcia_emulator)
    criteria = {"collections": [COLLECTION, "TCGA-GBM"], "modalities": ["MR"]}
    expected = searched_uids(hook, SimpleSearch.from_mapping(criteria), [COLLECTION, "TCGA-GBM"])
    assert set(mr) <= expected and not set(ct) & expected  # (the emulator's data: MR series of both collections)
    assert len(expected) > len(mr)
    tcia_emulator.clear_requests()
    url = f"file://{tmp_path}/search.{fmt}"

    result = run_operator(writer(output_path=url, simple_search=criteria, include_annotation=False))

    assert result == {"path": url, "format": fmt, "series": len(expected), "source": "getManifestForSimpleSearch"}
    assert set(uids_in(url)) == expected and len(uids_in(url)) == len(expected)  # read back by our parser
    requests_sent = tcia_emulator.requests()
    assert [(r["method"], r["endpoint"]) for r in requests_sent] == [("POST", "getManifestForSimpleSearch")]
    form = dict(requests_sent[0]["form"])
    assert form["start"] == "0" and form["size"] == "1000000" and "includeAnnotation" not in form
    if fmt == "tcia":
        assert lines_of(url)[1] == "includeAnnotation=false"
        assert lines_of(url)[3].startswith("databasketId=manifest-")  # NBIA's own header
    else:
        assert lines_of(url)[0] == "SeriesInstanceUID"
    assert [p.name for p in tmp_path.iterdir()] == [f"search.{fmt}"]


def test_a_simple_searchs_manifest_keeps_the_include_annotation_asked_for(
    tcia_emulator, use_emulator, run_operator, tmp_path
):
    """NBIA's answer always says includeAnnotation=false; the manifest written says what the task was given."""
    use_emulator(tcia_emulator, "nbia")
    ct, _ = publish_search_data(tcia_emulator)
    search = SimpleSearch(collections=COLLECTION, modalities="CT")
    result = run_operator(writer(output_path=f"file://{tmp_path}/ct.tcia", simple_search=search))
    assert lines_of(result["path"])[1] == "includeAnnotation=true"  # the default, True
    assert sorted(uids_in(result["path"])) == sorted(ct)


def test_a_templated_simple_search_is_rendered_then_checked(tcia_emulator, use_emulator, run_operator, tmp_path):
    hook = use_emulator(tcia_emulator, "nbia")
    _, mr = publish_search_data(tcia_emulator)
    op = writer(
        output_path=f"file://{tmp_path}/{{{{ params.name }}}}.tcia",
        simple_search={"collections": "{{ params.collection }}", "modalities": ["{{ params.modality }}"]},
    )
    op.render_template_fields({"params": {"collection": COLLECTION, "modality": "MR", "name": "mr"}})
    assert op.simple_search == {"collections": COLLECTION, "modalities": ["MR"]}
    result = run_operator(op)
    expected = searched_uids(hook, SimpleSearch(collections=COLLECTION, modalities="MR"), [COLLECTION])
    assert sorted(uids_in(result["path"])) == sorted(expected) == sorted(mr)

    as_json = writer(
        output_path=f"file://{tmp_path}/json.tcia", simple_search=json.dumps({"collections": [COLLECTION]})
    )
    assert run_operator(as_json)["series"] == 5  # the JSON text `{{ params.search | tojson }}` renders


def test_a_simple_search_matching_nothing_fails_and_writes_nothing(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    publish_search_data(tcia_emulator)
    with pytest.raises(AirflowFailException) as failed:
        run_operator(
            writer(
                output_path=f"file://{tmp_path}/m.tcia", simple_search={"collections": COLLECTION, "modalities": "PT"}
            )
        )
    message = str(failed.value)
    assert "getManifestForSimpleSearch answered a manifest without series" in message
    assert f"getSimpleSearch(collections=['{COLLECTION}'], modalities=['PT'])" in message
    assert endpoints(tcia_emulator) == [("POST", "getManifestForSimpleSearch")]  # asked once: not retried
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({}, "needs at least one criterion"),
        ({"collection": COLLECTION}, "getSimpleSearch has no criterion collection"),
        ({"collections": [COLLECTION, ""]}, "holds an empty string"),
        ({"series_instance_uids": "MW-0001"}, "is not a DICOM UID"),
        ({"date_range": ["2005-01-01", "2001-01-01"]}, "starts after it ends"),
        ({"collections": COLLECTION, "sort_field": "age"}, "sort_field='age'"),
        (["TCGA-GBM"], "simple_search must be a SimpleSearch, a mapping of its criteria"),
        ("collections=TCGA-GBM", "simple_search as text must be a JSON object"),
    ],
)
@pytest.mark.parametrize("api", APIS)
def test_bad_search_criteria_are_refused_before_anything_is_sent(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, search, message
):
    use_emulator(tcia_emulator, api)
    with pytest.raises(AirflowFailException, match=message):
        run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", simple_search=search))
    assert tcia_emulator.requests() == []
    assert list(tmp_path.iterdir()) == []


def test_a_simple_search_and_another_source_are_refused(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    with pytest.raises(AirflowFailException, match="got collection and simple_search"):
        run_operator(
            writer(output_path=f"file://{tmp_path}/m.tcia", collection=COLLECTION, simple_search={"modalities": "CT"})
        )
    assert tcia_emulator.requests() == []


def test_a_legacy_connection_refuses_a_simple_search_before_sending(
    tcia_emulator, use_emulator, run_operator, tmp_path
):
    use_emulator(tcia_emulator, "legacy")
    with pytest.raises(AirflowFailException) as refused:
        run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", simple_search={"collections": COLLECTION}))
    assert str(refused.value).endswith(
        "getManifestForSimpleSearch is served only by NBIA, TCIA's current API; this connection uses the legacy "
        "API (v2). Use a tcia connection with api=nbia in its extras; nothing was sent"
    )
    assert tcia_emulator.requests() == []
    assert list(tmp_path.iterdir()) == []


def test_a_simple_search_answer_cut_off_is_asked_again(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia", max_retries=2)
    ct, mr = publish_search_data(tcia_emulator)
    tcia_emulator.inject_fault("getManifestForSimpleSearch", "reset", count=1, after_bytes=300)
    result = run_operator(writer(output_path=f"file://{tmp_path}/m.csv", simple_search={"collections": COLLECTION}))
    assert sorted(uids_in(result["path"])) == sorted(ct + mr)
    assert [e for _, e in endpoints(tcia_emulator)].count("getManifestForSimpleSearch") == 2
