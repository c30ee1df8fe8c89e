"""Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from airflow_provider_tcia import __version__


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
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"password": "API Key", "host": "Server root (optional)"},
                    "placeholders": {
                        "host": "leave empty for TCIA's own servers; e.g. http://127.0.0.1:8080 for the emulator",
                        "password": "the legacy API's key (not needed for NBIA)",
                    },
                },
                "conn-fields": {
                    "environment": {
                        "label": "Environment",
                        "description": "production or test (the legacy test server / NBIA stage); nlst: NBIA's NLST host",
                        "schema": {
                            "type": "string",
                            "enum": ["production", "test", "nlst"],
                            "default": "production",
                        },
                    },
                    "api": {
                        "label": "API generation",
                        "description": "legacy: the key-based query API (/services/v2/TCIA/query); nbia: TCIA's current API (v4)",
                        "schema": {"type": "string", "enum": ["legacy", "nbia"], "default": "legacy"},
                    },
                    "api_version": {
                        "label": "API version",
                        "description": "legacy: v2 (default), v3 or v4; nbia: v4 (default) or v1",
                        "schema": {"type": ["string", "null"], "enum": ["v2", "v3", "v4", "v1", None]},
                    },
                    "key_location": {
                        "label": "Send the API key in",
                        "description": "the api_key header (recommended) or the api_key query parameter",
                        "schema": {"type": "string", "enum": ["header", "query"], "default": "header"},
                    },
                    "timeout": {
                        "label": "Timeout (seconds)",
                        "description": "connect and read timeout of each request",
                        "schema": {"type": ["number", "null"], "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "retries on connection errors, timeouts, 429 and 5xx",
                        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "verify the server's TLS certificate",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                },
            }
        ],
    }
