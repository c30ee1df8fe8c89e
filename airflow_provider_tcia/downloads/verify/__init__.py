"""Verification of what a download receives, done while the bytes stream past (one read of every byte).

:mod:`.zipstream` follows a zip's records as they arrive; :mod:`.hashing` computes the CRC-32 and MD5 of its
large entries on worker threads; :mod:`.fallback` checks a finished zip through its central directory when it
could not be followed inline; :mod:`.contents` says which entries are DICOM files and which names are safe, and
checks the files against ImageCount and ``md5hashes.csv``; :mod:`.dicom` checks a DICOM file's structure.
"""
