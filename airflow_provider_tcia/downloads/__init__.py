"""Downloading series and images: streamed, verified while they stream, moved into place atomically.

Where each job lives:

* :mod:`.series` — many series at once (getImage): retries, skipping what is already there, publishing;
* :mod:`.images` — single images (getSingleImage), verified by MD5 or DICOM structure;
* :mod:`.inputs` — which series an operator was given (UIDs, getSeries rows, a file of them);
* :mod:`.manifest` — the manifest beside each series: what was verified, and the marker of a finished one;
* :mod:`.progress` — progress lines in the task log;
* :mod:`.verify` — the checks themselves: the streaming zip reader, its hash workers, the whole-file fallback,
  the content checks against ``md5hashes.csv`` and ImageCount, and the DICOM structure check.

Writing to storage without a partial object ever visible is :mod:`airflow_provider_tcia.storage`.
"""
