"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from airflow_provider_tcia import __version__
from airflow_provider_tcia.hooks import connection_form


def get_provider_info() -> dict:
    return {
        # Must equal the distribution's name, or `airflow providers list` fails.
        "package-name": "airflow-provider-tcia",
        "name": "The Cancer Imaging Archive (TCIA)",
        "description": "Query and download imaging data from The Cancer Imaging Archive (TCIA).",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "The Cancer Imaging Archive (TCIA)",
                "external-doc-url": "https://www.cancerimagingarchive.net/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "The Cancer Imaging Archive (TCIA)",
                "python-modules": ["airflow_provider_tcia.hooks.tcia"],
            }
        ],
        "operators": [
            {
                "integration-name": "The Cancer Imaging Archive (TCIA)",
                "python-modules": [
                    "airflow_provider_tcia.operators.query",
                    "airflow_provider_tcia.operators.download",
                    "airflow_provider_tcia.operators.manifest",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "The Cancer Imaging Archive (TCIA)",
                "python-modules": ["airflow_provider_tcia.sensors.tcia"],
            }
        ],
        "triggers": [
            {
                "integration-name": "The Cancer Imaging Archive (TCIA)",
                "python-modules": ["airflow_provider_tcia.triggers.tcia"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "tcia",
                "hook-class-name": "airflow_provider_tcia.hooks.tcia.TciaHook",
                "hook-name": "The Cancer Imaging Archive (TCIA)",
                # Read by Airflow 3.2+; older versions get the same fields from the hook's form widgets.
                "ui-field-behaviour": connection_form.ui_field_behaviour(),
                "conn-fields": connection_form.conn_fields(),
            }
        ],
    }
