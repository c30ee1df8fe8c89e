"""TciaWriteManifestOperator(patient_ids=…, study_instance_uids=…) against the bundled emulator over real sockets,
on both APIs: NBIA's getManifestFromPatientStudySeries (the union of the patients' and studies' series) or, on the
legacy API, the same selection built here from getSeries by PatientID and by StudyInstanceUID; written to
``file://`` and S3 (moto) atomically; the round trip through the download operator and tcia_utils'
``manifestToList``; refusals before anything is sent."""

from __future__ import annotations

import pytest

from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.storage import as_path
from tests.operators.test_manifest_operator import (
    APIS,
    HEADER_KEYS,
    endpoints,
    lines_of,
    read_back,
    uids_in,
    writer,
)

pytestmark = pytest.mark.integration

COLLECTION = "TCIA-MW-PSS"
OTHER = "TCIA-MW-PSS-OTHER"
ENDPOINT = "getManifestFromPatientStudySeries"


def publish(emulator) -> dict[str, list[str]]:
    """Patient MW-P1: two series in one study, one in another, and one series in another collection under the same
    PatientID; patient MW-P2: two series in one study. The UIDs, by what they belong to."""
    a = emulator.publish(COLLECTION, patient_id="MW-P1", series_count=2, image_count=1)
    b = emulator.publish(COLLECTION, patient_id="MW-P1", series_count=1, image_count=1)
    elsewhere = emulator.publish(OTHER, patient_id="MW-P1", series_count=1, image_count=1)
    p2 = emulator.publish(COLLECTION, patient_id="MW-P2", series_count=2, image_count=1)
    return {
        "MW-P1": [*a["series_instance_uids"], *b["series_instance_uids"], *elsewhere["series_instance_uids"]],
        "P2-STUDY": list(p2["series_instance_uids"]),
        "p2_study": [p2["study_instance_uid"]],
        "b_study": [b["study_instance_uid"]],
    }


def get_series_union(hook, patients=(), studies=()) -> set[str]:
    """The series getSeries lists for any of the patients and studies (what the manifest must list)."""
    rows = [r for p in patients for r in hook.get_series(patient_id=p)]
    rows += [r for s in studies for r in hook.get_series(study_instance_uid=s)]
    return {r["SeriesInstanceUID"] for r in rows}


# --- writing, both APIs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("where", ["file", "s3"])
def test_a_manifest_of_patients_and_studies(tcia_emulator, use_emulator, run_operator, tmp_path, request, api, where):
    hook = use_emulator(tcia_emulator, api)
    data = publish(tcia_emulator)
    expected = get_series_union(hook, ["MW-P1"], data["p2_study"])
    assert expected == {*data["MW-P1"], *data["P2-STUDY"]}  # MW-P1 in both collections
    root = f"file://{tmp_path}" if where == "file" else request.getfixturevalue("s3_bucket")
    url = f"{root}/out/patients.tcia"
    tcia_emulator.clear_requests()

    result = run_operator(writer(output_path=url, patient_ids=["MW-P1"], study_instance_uids=data["p2_study"]))

    made_by = ENDPOINT if api == "nbia" else "local"
    assert result == {"path": url, "format": "tcia", "series": len(expected), "source": made_by}
    lines = lines_of(url)
    assert [line.split("=", 1)[0] for line in lines[:6]] == [*HEADER_KEYS, "ListOfSeriesToDownload"]
    assert lines[1] == "includeAnnotation=true"
    assert set(lines[6:-1]) == expected and len(lines[6:-1]) == len(expected) and lines[-1] == ""
    sent = tcia_emulator.requests()
    if api == "nbia":
        assert [(r["method"], r["endpoint"]) for r in sent] == [("POST", ENDPOINT)]
        assert sent[0]["form"] == [  # no anyOrAll (NBIA ignores it), no seriesUIDs
            ["patientIDs", "MW-P1"],
            ["studyUIDs", data["p2_study"][0]],
            ["includeAnnotation", "true"],
        ]
        assert lines[3].startswith("databasketId=manifest-")  # NBIA's own header
    else:
        assert [(r["method"], r["endpoint"]) for r in sent] == [("GET", "getSeries"), ("GET", "getSeries")]
        assert lines[3] == "databasketId=patients.tcia"
    assert [p.name for p in as_path(url).parent.iterdir()] == ["patients.tcia"]  # nothing temporary left


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"patient_ids": "MW-P2"}, "P2-STUDY"),  # one patient, as a plain string
        ({"study_instance_uids": "b_study"}, "b_study"),  # studies alone
        ({"patient_ids": ["MW-P2", "MW-P2", " MW-P2 "]}, "P2-STUDY"),  # repeats dropped
    ],
)
def test_patients_or_studies_alone_as_csv(tcia_emulator, use_emulator, run_operator, tmp_path, api, kwargs, key):
    hook = use_emulator(tcia_emulator, api)
    data = publish(tcia_emulator)
    if "study_instance_uids" in kwargs:
        kwargs = {"study_instance_uids": data[kwargs["study_instance_uids"]]}
        expected = get_series_union(hook, studies=data["b_study"])
    else:
        expected = get_series_union(hook, patients=["MW-P2"])
        assert expected == set(data[key])
    tcia_emulator.clear_requests()
    url = f"file://{tmp_path}/alone.csv"

    result = run_operator(writer(output_path=url, include_annotation=False, **kwargs))

    assert result["series"] == len(expected) and result["format"] == "csv"
    assert set(uids_in(url)) == expected and lines_of(url)[0] == "SeriesInstanceUID"
    sent = tcia_emulator.requests()
    if api == "nbia":
        assert [r["endpoint"] for r in sent] == [ENDPOINT]
        form = dict(sent[0]["form"])
        assert form["includeAnnotation"] == "false" and set(form) <= {"patientIDs", "studyUIDs", "includeAnnotation"}
        assert len(form) == 2  # only the list given
    else:
        assert [r["endpoint"] for r in sent] == ["getSeries"]  # the repeats asked once


@pytest.mark.parametrize("api", APIS)
def test_rows_of_get_patient_and_get_patient_study_are_taken(tcia_emulator, use_emulator, run_operator, tmp_path, api):
    hook = use_emulator(tcia_emulator, api)
    data = publish(tcia_emulator)
    patients = [r for r in hook.get_patient(collection=COLLECTION) if "MW-P2" in r.values()]
    studies = [r for r in hook.get_patient_study(collection=COLLECTION) if r["StudyInstanceUID"] in data["b_study"]]
    assert len(patients) == 1 and len(studies) == 1
    result = run_operator(
        writer(output_path=f"file://{tmp_path}/rows.tcia", patient_ids=patients, study_instance_uids=studies)
    )
    assert set(uids_in(result["path"])) == get_series_union(hook, ["MW-P2"], data["b_study"])


@pytest.mark.parametrize("api", APIS)
def test_a_one_character_patient_id_is_not_dropped_by_nbia(tcia_emulator, use_emulator, run_operator, tmp_path, api):
    """NBIA ignores a field shorter than two characters, and with nothing left lists every series it holds: the
    operator sends a lone one-character PatientID twice, and the manifest lists that patient's series only."""
    hook = use_emulator(tcia_emulator, api)
    published = tcia_emulator.publish(COLLECTION, patient_id="7", series_count=2, image_count=1)
    tcia_emulator.clear_requests()

    result = run_operator(writer(output_path=f"file://{tmp_path}/seven.tcia", patient_ids=7))

    assert sorted(uids_in(result["path"])) == sorted(published["series_instance_uids"])
    assert set(uids_in(result["path"])) == get_series_union(hook, ["7"])
    if api == "nbia":
        assert dict(tcia_emulator.requests()[0]["form"])["patientIDs"] == "7,7"


def test_templated_patients_and_studies_are_rendered_then_checked(tcia_emulator, use_emulator, run_operator, tmp_path):
    hook = use_emulator(tcia_emulator, "nbia")
    data = publish(tcia_emulator)
    op = writer(
        output_path=f"file://{tmp_path}/{{{{ params.name }}}}.tcia",
        patient_ids="{{ params.patient }}",
        study_instance_uids=["{{ params.study }}"],
    )
    op.render_template_fields({"params": {"patient": "MW-P2", "study": data["b_study"][0], "name": "t"}})
    assert op.patient_ids == "MW-P2" and op.study_instance_uids == data["b_study"]
    result = run_operator(op)
    assert result["path"] == f"file://{tmp_path}/t.tcia"
    assert set(uids_in(result["path"])) == get_series_union(hook, ["MW-P2"], data["b_study"])


# --- the round trip -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
def test_round_trip_our_download_operator_and_tcia_utils_read_the_series_get_series_lists(
    tcia_emulator, use_emulator, run_operator, tmp_path, api
):
    hook = use_emulator(tcia_emulator, api)
    data = publish(tcia_emulator)
    url = f"file://{tmp_path}/round.tcia"
    manifest = run_operator(writer(output_path=url, patient_ids=["MW-P2"], study_instance_uids=data["b_study"]))

    by_tcia_utils, downloaded = read_back(run_operator, manifest, tmp_path)
    by_us = [r["series_instance_uid"] for r in downloaded]
    assert by_tcia_utils == by_us == uids_in(url)
    assert sorted(by_us) == sorted(get_series_union(hook, ["MW-P2"], data["b_study"]))
    assert len(by_us) == 3 and all(r["verified"] for r in downloaded)


# --- failures: nothing sent, nothing left ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patient_ids": ""}, "patient_ids is an empty string"),
        ({"patient_ids": ["MW-P1", "  "]}, r"patient_ids\[1\] is an empty string"),
        ({"patient_ids": ["MW-P1,MW-P2"]}, r"patient_ids\[0\]='MW-P1,MW-P2' holds a comma"),
        ({"patient_ids": []}, "patient_ids is empty"),
        ({"patient_ids": ["MW-P1"], "study_instance_uids": []}, "study_instance_uids is empty"),
        ({"study_instance_uids": ["1.2.3", "MW-P1"]}, r"study_instance_uids\[1\]='MW-P1' is not a DICOM UID"),
        ({"patient_ids": [{"Collection": COLLECTION}]}, r"patient_ids\[0\] is a row without PatientID or PatientId"),
        ({"patient_ids": 3.5}, "patient_ids must be a value, a list of them or rows, not float"),
        ({"patient_ids": [None]}, r"patient_ids\[0\] must be a string, not NoneType"),
        ({"collection": COLLECTION, "patient_ids": ["MW-P1"]}, "got collection and patient_ids"),
        (
            {"series_instance_uids": ["1.2.3"], "study_instance_uids": ["1.2.3"]},
            "got series_instance_uids and study_instance_uids",
        ),
        ({"simple_search": {"modalities": "CT"}, "patient_ids": "MW-P1"}, "got simple_search and patient_ids"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("api", APIS)
def test_bad_input_fails_before_anything_is_sent(
    tcia_emulator, use_emulator, run_operator, tmp_path, api, kwargs, message
):
    use_emulator(tcia_emulator, api)
    with pytest.raises(AirflowFailException, match=message):
        run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", **kwargs))
    assert tcia_emulator.requests() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("api", APIS)
def test_patients_and_studies_without_series_fail_and_write_nothing(
    tcia_emulator, use_emulator, run_operator, tmp_path, api
):
    use_emulator(tcia_emulator, api)
    publish(tcia_emulator)
    tcia_emulator.clear_requests()
    with pytest.raises(AirflowFailException) as failed:
        run_operator(
            writer(
                output_path=f"file://{tmp_path}/m.tcia",
                patient_ids=["NOPE-0001"],
                study_instance_uids=["1.2.826.0.1.3680043.2.1125.9"],
            )
        )
    message = str(failed.value)
    assert "patients ['NOPE-0001'] and studies ['1.2.826.0.1.3680043.2.1125.9']" in message
    if api == "nbia":
        assert f"{ENDPOINT} answered a manifest without series" in message
        assert endpoints(tcia_emulator) == [("POST", ENDPOINT)]  # asked once: not retried
    else:
        assert "getSeries lists no series of" in message
        assert endpoints(tcia_emulator) == [("GET", "getSeries"), ("GET", "getSeries")]
    assert list(tmp_path.iterdir()) == []


def test_an_answer_cut_off_is_asked_again_and_only_a_whole_manifest_is_published(
    tcia_emulator, use_emulator, run_operator, tmp_path
):
    use_emulator(tcia_emulator, "nbia", max_retries=2)
    data = publish(tcia_emulator)
    tcia_emulator.inject_fault(ENDPOINT, "reset", count=1, after_bytes=300)
    result = run_operator(writer(output_path=f"file://{tmp_path}/m.tcia", patient_ids="MW-P1"))
    assert sorted(uids_in(result["path"])) == sorted(data["MW-P1"])
    assert [e for _, e in endpoints(tcia_emulator)].count(ENDPOINT) == 2

    tcia_emulator.inject_fault(ENDPOINT, "reset", count=3, after_bytes=300)
    with pytest.raises(Exception, match=ENDPOINT):
        run_operator(writer(output_path=f"file://{tmp_path}/again.tcia", patient_ids="MW-P1"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tcia"]  # nothing of the failed one
