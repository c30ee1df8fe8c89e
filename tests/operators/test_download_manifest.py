"""TciaDownloadSeriesOperator(manifest=...) against the bundled emulator over real sockets: a ``.tcia``, CSV or
TSV manifest on ``file://`` or S3 (moto) downloads its series on both APIs, and anything that is not a manifest
fails the task before a single request is sent (the emulator's request log stays empty)."""

from __future__ import annotations

import pytest

from airflow_provider_tcia.compat import AirflowFailException
from airflow_provider_tcia.operators.download import TciaDownloadSeriesOperator
from tests.downloads.test_tcia_manifest import NBIA_HEADER, PUBLIC_HEADER, REFUSED, put

pytestmark = pytest.mark.integration


def operator(**kwargs) -> TciaDownloadSeriesOperator:
    return TciaDownloadSeriesOperator(task_id="download", progress_interval=0, **kwargs)


def published(emulator) -> list[str]:
    data = emulator.publish("TCIA-MF-TEST", series_count=2, image_count=2, patient_id="MF-0001")
    return sorted(data["series_instance_uids"])


@pytest.mark.parametrize("api", ["legacy", "nbia"])
@pytest.mark.parametrize(
    ("file_name", "text"),
    [
        ("m.tcia", lambda uids: (PUBLIC_HEADER + "Series ID\n" + "\n".join(uids) + "\n").replace("\n", "\r\n")),
        ("m.csv", lambda uids: "\ufeffSeries UID,Subject ID\n" + "".join(f"{u},MF-0001\n" for u in uids)),
        ("m.tsv", lambda uids: "SeriesInstanceUID\n\n" + "\n".join(uids)),
    ],
    ids=["tcia", "csv", "tsv"],
)
@pytest.mark.parametrize("where", ["file", "s3"])
def test_a_manifest_downloads_its_series(
    tcia_emulator, use_emulator, run_operator, tmp_path, request, api, file_name, text, where
):
    use_emulator(tcia_emulator, api)
    uids = published(tcia_emulator)
    store = f"file://{tmp_path}/in" if where == "file" else request.getfixturevalue("s3_bucket") + "/in"
    url = put(store, file_name, text(uids).encode())
    results = run_operator(operator(manifest=url, destination=f"file://{tmp_path}/out"))
    assert sorted(r["series_instance_uid"] for r in results) == uids  # a list: a manifest is many series
    assert all(r["verified"] and not r["skipped"] for r in results)
    assert all((tmp_path / "out" / f"{u}.zip").is_file() for u in uids)


def test_a_manifest_in_the_nested_layout_uses_the_patients_it_names(
    tcia_emulator, use_emulator, run_operator, tmp_path
):
    use_emulator(tcia_emulator, "nbia")
    uids = published(tcia_emulator)
    url = put(f"file://{tmp_path}", "m.tcia", (NBIA_HEADER + "\n".join(uids)).encode())
    results = run_operator(operator(manifest=url, destination=f"file://{tmp_path}/out", nested=True))
    assert all("/out/MF-0001/" in r["path"] for r in results)


@pytest.mark.parametrize(("name", "file_name", "data", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_what_is_not_a_manifest_fails_before_anything_is_sent(
    tcia_emulator, use_emulator, run_operator, tmp_path, name, file_name, data, message
):
    use_emulator(tcia_emulator, "nbia")
    url = put(f"file://{tmp_path}", file_name, data)
    with pytest.raises(AirflowFailException, match="TciaBadRequestError") as err:
        run_operator(operator(manifest=url, destination=f"file://{tmp_path}/out"))
    assert message in str(err.value)
    assert tcia_emulator.requests() == []  # nothing was sent
    assert not (tmp_path / "out").exists()


def test_a_refused_manifest_on_s3_sends_nothing_either(tcia_emulator, use_emulator, run_operator, s3_bucket):
    use_emulator(tcia_emulator, "legacy")
    url = put(s3_bucket, "m.tcia", (NBIA_HEADER + "1.2.3\nnot-a-uid\n").encode())
    with pytest.raises(AirflowFailException, match="line 8='not-a-uid' is not a DICOM UID"):
        run_operator(operator(manifest=url, destination=f"{s3_bucket}/out"))
    assert tcia_emulator.requests() == []


def test_manifest_is_one_of_the_three_inputs(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    with pytest.raises(
        AirflowFailException, match=r"give exactly one of series_instance_uids .* got series_instance_uids and manifest"
    ):
        run_operator(
            operator(manifest="file:///m.tcia", series_instance_uids="1.2.3", destination=f"file://{tmp_path}")
        )
    assert "manifest" in TciaDownloadSeriesOperator.template_fields
    assert tcia_emulator.requests() == []


def test_a_manifest_given_as_series_from_is_pointed_to_manifest(tcia_emulator, use_emulator, run_operator, tmp_path):
    use_emulator(tcia_emulator, "nbia")
    with pytest.raises(AirflowFailException, match="is a TCIA manifest: pass it as manifest= instead"):
        run_operator(operator(series_from=f"file://{tmp_path}/m.tcia", destination=f"file://{tmp_path}/out"))
    assert tcia_emulator.requests() == []
