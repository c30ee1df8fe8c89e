"""The storage primitives (``storage.py``) on real object storage: on S3 (moto's server), ``atomic_writer``
publishes only complete objects."""

from __future__ import annotations

from airflow_provider_tcia.storage import as_path, atomic_writer


def test_atomic_writer_on_s3_publishes_only_complete_objects(s3_bucket):
    final = as_path(f"{s3_bucket}/out/rows.json")
    with atomic_writer(final) as fh:
        fh.write(b'[{"a": 1}]')
    assert final.read_bytes() == b'[{"a": 1}]'
    try:
        with atomic_writer(final) as fh:
            fh.write(b"partial")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert final.read_bytes() == b'[{"a": 1}]'
    assert [p.name for p in final.parent.iterdir()] == ["rows.json"]
