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


def test_replace_tree_swaps_a_local_folder_in_one_step(tmp_path):
    """While a folder is replaced, its path always holds a whole folder, the old or the new: never nothing.
    (On Linux the two are swapped atomically and the old one removed after; where they are not, the old one is
    renamed aside first, and a reader can find nothing there for an instant.)"""
    import os
    import sys
    import threading

    import pytest

    from airflow_provider_tcia.storage import PARTIAL_MARK, _exchange, replace_tree, temporary_sibling

    final = as_path(f"file://{tmp_path}/series")
    (tmp_path / "series").mkdir()
    for name in ("a.dcm", "b.dcm"):
        (tmp_path / "series" / name).write_text("old")
    probe_a, probe_b = tmp_path / "probe-a", tmp_path / "probe-b"
    probe_a.mkdir()
    probe_b.mkdir()
    if not _exchange(str(probe_a), str(probe_b)):
        assert not sys.platform.startswith("linux"), "renameat2(RENAME_EXCHANGE) should be there on Linux"
        pytest.skip("no atomic folder swap on this system: replace_tree renames aside, then in")
    missing: list[str] = []
    contents: set[str] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                os.listdir(tmp_path / "series")
                contents.add((tmp_path / "series" / "a.dcm").read_text())  # (one open: the folder there then)
            except FileNotFoundError as err:
                missing.append(str(err))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for round_ in range(200):
            tmp = temporary_sibling(final)
            (tmp_path / tmp.name).mkdir()
            for name in ("a.dcm", "b.dcm"):
                (tmp_path / tmp.name / name).write_text(f"revision {round_}")
            replace_tree(tmp, final)
    finally:
        stop.set()
        reader.join()
    assert missing == []
    assert len(contents) > 1 and {p.read_text() for p in (tmp_path / "series").iterdir()} == {"revision 199"}
    assert sorted(p.name for p in tmp_path.iterdir() if PARTIAL_MARK in p.name) == []
