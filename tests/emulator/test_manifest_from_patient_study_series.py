"""The emulator's getManifestFromPatientStudySeries over HTTP, answered as NBIA's server code answers it
(``emulator/manifests.py`` names the files read): the union of the patients', studies' and series' series
whatever ``anyOrAll`` says, each once; a field shorter than two characters ignored; nothing given: every series;
``includeAnnotation`` defaulting to ``true``; NBIA's ``application/x-nbia-manifest-file``; its refusals."""

from __future__ import annotations

import pytest

from tests.emulator.conftest import BRCA_STUDY, GBM_STUDY, LIDC_DX, NBIA_V1, NBIA_V4

URL = f"{NBIA_V4}/getManifestFromPatientStudySeries"
HEADER_KEYS = ["downloadServerUrl", "includeAnnotation", "noOfrRetry", "databasketId", "manifestVersion"]
BRCA_PATIENT = "TCGA-AR-A1AQ"


def post(emu, http, data, **kwargs):
    return http.post(emu.url + URL, data=data, timeout=10, **kwargs)


def listed(answer) -> list[str]:
    """The UIDs of a manifest answer (after its six header lines; every line ends with \\n)."""
    lines = answer.text.split("\n")
    assert [line.split("=", 1)[0] for line in lines[:6]] == [*HEADER_KEYS, "ListOfSeriesToDownload"]
    assert lines[5] == "ListOfSeriesToDownload=" and lines[-1] == ""
    return lines[6:-1]


def series_of(emu, http, **params) -> list[str]:
    """What NBIA v4's getSeries lists for ``params`` (an empty body: none)."""
    answer = http.get(f"{emu.url}{NBIA_V4}/getSeries", params=params, timeout=10)
    assert answer.status_code == 200
    return [row["SeriesInstanceUID"] for row in answer.json()] if answer.content.strip() else []


def every_series(emu, http) -> list[str]:
    collections = http.get(f"{emu.url}{NBIA_V4}/getCollectionValues", timeout=10).json()
    return [uid for c in collections for uid in series_of(emu, http, Collection=c["Collection"])]


def test_the_union_of_patients_studies_and_series_in_manifest_makers_layout(emu, http):
    patient = series_of(emu, http, PatientID=BRCA_PATIENT)
    study = series_of(emu, http, StudyInstanceUID=GBM_STUDY)
    assert patient and study and LIDC_DX not in patient + study
    form = {"patientIDs": BRCA_PATIENT, "studyUIDs": GBM_STUDY, "seriesUIDs": LIDC_DX}

    answer = post(emu, http, form)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/x-nbia-manifest-file")  # NBIA's own type
    lines = answer.text.split("\n")
    assert lines[0] == "downloadServerUrl=https://nbia.cancerimagingarchive.net/nbia-download/servlet/DownloadServlet"
    assert lines[1] == "includeAnnotation=true"  # left out: true
    assert lines[2] == "noOfrRetry=4" and lines[4] == "manifestVersion=3.0"
    assert lines[3].startswith("databasketId=manifest-") and lines[3].endswith(".tcia")
    assert int(lines[3].removeprefix("databasketId=manifest-").removesuffix(".tcia")) > 0  # milliseconds
    uids = listed(answer)
    assert sorted(uids) == sorted({*patient, *study, LIDC_DX}) and len(uids) == len(set(uids))


@pytest.mark.parametrize("any_or_all", ["all", "any", "AND", "nonsense"])
def test_any_or_all_is_read_and_never_used_the_lists_are_always_ored(emu, http, any_or_all):
    """A patient and a study of *another* patient: "all" would leave nothing; NBIA lists both."""
    form = {"patientIDs": BRCA_PATIENT, "studyUIDs": GBM_STUDY}
    union = listed(post(emu, http, form))
    assert listed(post(emu, http, {**form, "anyOrAll": any_or_all})) == union
    assert sorted(union) == sorted(
        series_of(emu, http, PatientID=BRCA_PATIENT) + series_of(emu, http, StudyInstanceUID=GBM_STUDY)
    )


def test_a_series_matched_twice_is_listed_once_and_lists_split_on_commas_and_blanks(emu, http):
    patient = series_of(emu, http, PatientID=BRCA_PATIENT)
    study = series_of(emu, http, StudyInstanceUID=BRCA_STUDY)
    assert set(study) < set(patient)  # one of the patient's studies
    form = {"patientIDs": f"{BRCA_PATIENT} ,  NOPE-0001,", "studyUIDs": BRCA_STUDY, "seriesUIDs": study[0]}
    uids = listed(post(emu, http, form))
    assert sorted(uids) == sorted(patient)  # each once; the trailing comma's empty piece dropped

    first_only = post(emu, http, [("patientIDs", "NOPE-0001"), ("patientIDs", BRCA_PATIENT)])
    assert listed(first_only) == []  # a repeated field: its first value (a String @FormParam)


def test_a_field_shorter_than_two_characters_is_ignored_and_nothing_given_lists_every_series(emu, http):
    study = series_of(emu, http, StudyInstanceUID=GBM_STUDY)
    assert sorted(listed(post(emu, http, {"patientIDs": "X", "studyUIDs": GBM_STUDY}))) == sorted(study)
    everything = sorted(every_series(emu, http))
    assert len(everything) > 50
    assert sorted(listed(post(emu, http, {"patientIDs": "X"}))) == everything  # as if left out
    assert sorted(listed(post(emu, http, {}))) == everything  # Hibernate's empty disjunction: 1=1
    assert sorted(listed(post(emu, http, {"includeAnnotation": "false", "anyOrAll": "all"}))) == everything


def test_nothing_found_is_the_header_alone(emu, http):
    answer = post(emu, http, {"patientIDs": "NOPE-0001", "studyUIDs": "1.2.3.4"})
    assert answer.status_code == 200 and listed(answer) == []
    assert answer.text.endswith("ListOfSeriesToDownload=\n")


@pytest.mark.parametrize(
    ("value", "expected"), [("FALSE", "false"), ("true", "true"), ("", "true"), ("yes", "false"), ("TRUE", "true")]
)
def test_include_annotation_as_manifest_maker_writes_it(emu, http, value, expected):
    answer = post(emu, http, {"studyUIDs": GBM_STUDY, "includeAnnotation": value})
    assert answer.text.split("\n")[1] == f"includeAnnotation={expected}"


def test_refusals_as_nbia_gives_them(emu, http):
    refused = post(emu, http, {"patientIDs": BRCA_PATIENT, "collection": "TCGA-BRCA"})
    assert refused.status_code == 400
    assert refused.text == (
        "Invalid form parameter: 'collection'. Allowed parameters are: "
        "[patientIDs, studyUIDs, seriesUIDs, anyOrAll, includeAnnotation]"
    )
    in_query = post(emu, http, {"patientIDs": BRCA_PATIENT}, params={"format": "csv"})
    assert in_query.status_code == 400 and "Invalid form parameter: 'format'" in in_query.text
    commas_only = post(emu, http, {"patientIDs": ",,", "studyUIDs": GBM_STUDY})
    assert commas_only.status_code == 500  # an empty `in ()`: the database refuses it
    assert commas_only.text == "Server was not able to process your request"
    assert http.get(emu.url + URL, params={"patientIDs": BRCA_PATIENT}, timeout=10).status_code == 405
    v1 = http.post(
        f"{emu.url}{NBIA_V1}/getManifestFromPatientStudySeries", data={"patientIDs": BRCA_PATIENT}, timeout=10
    )
    assert v1.status_code == 404  # v4 only
    legacy = http.post(f"{emu.url}/services/v2/TCIA/query/getManifestFromPatientStudySeries", timeout=10)
    assert legacy.status_code == 404
