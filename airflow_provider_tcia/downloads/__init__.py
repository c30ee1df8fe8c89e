"""Downloading series and images: streamed, verified while they stream, moved into place atomically.

Where each job lives:

* :mod:`.series` — many series at once (getImage): retries, skipping what is already there, publishing;
* :mod:`.images` — single images (getSingleImage), verified by MD5 or DICOM structure;
* :mod:`.pool` — the thread pool both run on, and the one error for the items that failed;
* :mod:`.layout` — what lands at a destination (:class:`~.layout.DownloadPlan`), and how a reader finds the
  verified series there and opens their DICOM files (:func:`~.layout.verified_series`,
  :func:`~.layout.dicom_members`);
* :mod:`.inputs` — which series an operator was given (UIDs, getSeries rows, a file of them);
* :mod:`.manifest` — the manifest beside each series: what was verified, and the marker of a finished one;
* :mod:`.progress` — progress lines in the task log;
* :mod:`.verify` — the checks themselves: the streaming zip reader (:mod:`.verify.zipstream`), its hash workers
  (:mod:`.verify.hashing`), the whole-file fallback (:mod:`.verify.fallback`), the content checks against
  ``md5hashes.csv`` and ImageCount with the entries' names (:mod:`.verify.contents`), and the DICOM structure
  check (:mod:`.verify.dicom`).

Writing to storage without a partial object ever visible is :mod:`airflow_provider_tcia.storage`.
"""
