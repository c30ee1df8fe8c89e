"""A bundled emulator of TCIA's REST APIs: a real HTTP server on loopback, the way moto emulates AWS.

It speaks the key-based query API (``/services/v2|v3|v4/TCIA/query/<endpoint>``) and NBIA
(``/nbia-api/services/v1|v4/<endpoint>``) over one deterministic dataset, serves real DICOM in its zips,
and can publish data, inject faults and log requests while it runs. See ``docs/emulator.md``.

Layers (moto-like): :mod:`.dataset`/:mod:`.catalog` (the data, no HTTP), :mod:`.dicom`/:mod:`.zipstream`
(payloads), :mod:`.views`/:mod:`.responses` (translation to each API generation), :mod:`.faults` (what goes
wrong, applied around the responders), :mod:`.server`/:mod:`.admin` (HTTP), :mod:`.control` (driving it).
"""

from __future__ import annotations

from airflow_provider_tcia.emulator.app import Emulator, run_emulator
from airflow_provider_tcia.emulator.control import Control, EmulatorControlError, LocalControl, RemoteControl

__all__ = ["Control", "Emulator", "EmulatorControlError", "LocalControl", "RemoteControl", "run_emulator"]
