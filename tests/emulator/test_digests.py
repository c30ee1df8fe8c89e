"""The data model remembers each instance's MD5 and CRC-32 (as NBIA keeps MD5s in its database), so serving a
zip with ``md5hashes.csv`` hashes nothing; the ``bad_md5`` fault still corrupts the listing."""

from __future__ import annotations

import hashlib
import io
import zipfile
import zlib
from types import SimpleNamespace

import pytest
import requests

from airflow_provider_tcia.emulator import Emulator
from airflow_provider_tcia.emulator import dataset as dataset_module
from airflow_provider_tcia.emulator import responses as responses_module
from airflow_provider_tcia.emulator import zipstream as zipstream_module
from airflow_provider_tcia.emulator.catalog import default_catalog
from airflow_provider_tcia.emulator.dataset import Dataset
from tests.emulator.conftest import GBM_SERIES, NBIA_V4


def test_digests_match_the_files_and_are_remembered():
    data = Dataset(default_catalog)
    series = data.series(GBM_SERIES)
    digests = data.digests(series)
    assert len(digests) == series.image_count
    for instance in series.instances():
        body = b"".join(data.instance_file(instance))
        assert digests.md5_hex(instance.index) == hashlib.md5(body).hexdigest()
        assert digests.crc32(instance.index) == zlib.crc32(body)
    assert data.digests(series) is digests
    data.reset()
    assert data.digests(data.series(GBM_SERIES)) is not digests


def test_synthetic_series_digests_are_computed_when_added(monkeypatch):
    data = Dataset(default_catalog)
    series = data.add_synthetic_series(40 << 20, rows=256, columns=256)  # big enough for two threads
    stored = data.digests(series)

    def no_more(*_args):
        raise AssertionError("digests computed again")

    monkeypatch.setattr(Dataset, "_compute_digests", no_more)
    assert data.digests(series) is stored
    for index in (0, series.image_count // 2, series.image_count - 1):
        body = b"".join(data.instance_file(dataset_module.Instance(series, index)))
        assert stored.md5_hex(index) == hashlib.md5(body).hexdigest()
        assert stored.crc32(index) == zlib.crc32(body)


@pytest.fixture
def emulator_without_hashing(monkeypatch):
    """An emulator whose download path must not hash: hashlib.md5 fails once the series is added, and the
    zip writer's CRC-32 calls are counted (the third item: the files it had to checksum itself)."""
    with Emulator() as emu:
        added = emu.add_synthetic_series(2 << 20, rows=128, columns=128)

        def refuse(*_args, **_kwargs):
            raise AssertionError("hashed while serving")

        crc_inputs: list[int] = []

        def counted_crc32(data, value=0):
            crc_inputs.append(len(data))
            return zlib.crc32(data, value)

        monkeypatch.setattr(responses_module.hashlib, "md5", refuse, raising=True)
        monkeypatch.setattr(zipstream_module, "zlib", SimpleNamespace(crc32=counted_crc32))
        yield emu, added, crc_inputs
        monkeypatch.undo()


def test_md5_download_hashes_nothing_and_bad_md5_still_corrupts(emulator_without_hashing, monkeypatch):
    emu, added, crc_inputs = emulator_without_hashing
    uid = added["series_instance_uid"]
    url = emu.url + f"{NBIA_V4}/getImage"
    params = {"SeriesInstanceUID": uid, "IncludeMD5": "Yes"}
    body = requests.get(url, params=params, timeout=60).content
    monkeypatch.undo()
    # Only LICENSE and md5hashes.csv (one small piece each) were checksummed while serving, no DICOM file.
    assert len(crc_inputs) == 2 and max(crc_inputs) < added["total_size"] // added["image_count"]
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    lines = archive.read("md5hashes.csv").decode().splitlines()
    hashes = dict(line.split(",") for line in lines[1:])
    assert len(hashes) == added["image_count"]
    assert all(hashlib.md5(archive.read(n)).hexdigest() == h for n, h in hashes.items())

    emu.inject_fault("getImage", kind="bad_md5")
    bad = zipfile.ZipFile(io.BytesIO(requests.get(url, params=params, timeout=60).content))
    assert bad.testzip() is None
    bad_lines = bad.read("md5hashes.csv").decode().splitlines()
    assert bad_lines[0] == lines[0] and bad_lines[2:] == lines[2:]
    name, wrong = bad_lines[1].split(",")
    assert wrong != hashes[name] and len(wrong) == 32
