"""The ``tcia`` connection's form in Airflow's UI, derived from what :class:`TciaConfig` reads.

One list of fields (:data:`EXTRA_FIELDS`), built from the configuration's own choices and defaults, gives
both shapes Airflow knows:

* the declarative ``conn-fields`` / ``ui-field-behaviour`` of the provider info (read by Airflow 3.2+);
* the hook's ``get_connection_form_widgets`` / ``get_ui_field_behaviour`` (Airflow 2.11, 3.0 and 3.1),
  as wtforms fields — with Flask-AppBuilder's widgets where it is installed (2.11's UI), without where
  Airflow 3.0/3.1 only reads the fields' metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_tcia.api.generations import GENERATIONS
from airflow_provider_tcia.hooks import config as cfg


@dataclass(frozen=True)
class ExtraField:
    """One extra of the ``tcia`` connection, as the form shows it."""

    name: str
    label: str
    description: str
    type: str
    """``string``, ``number``, ``integer`` or ``boolean``."""
    default: Any = None
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def schema(self) -> dict[str, Any]:
        # Optional fields may be left empty (null); a dropdown always has a value, its default.
        schema: dict[str, Any] = {"type": self.type if self.enum else [self.type, "null"]}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.default is not None:
            schema["default"] = self.default
        for key in ("minimum", "maximum"):
            if getattr(self, key) is not None:
                schema[key] = getattr(self, key)
        return schema

    def placeholder(self) -> str:
        if isinstance(self.default, bool):
            return f"default: {str(self.default).lower()}"
        return f"default: {self.default:g}" if isinstance(self.default, float) else f"default: {self.default}"


def _versions() -> str:
    return "; ".join(
        f"{name}: {', '.join(gen.versions)} (default {gen.versions[0]})" for name, gen in GENERATIONS.items()
    )


def _environments() -> tuple[str, ...]:
    names: list[str] = []
    for gen in GENERATIONS.values():
        names += [name for name in gen.servers if name not in names]
    return tuple(names)


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "environment",
        "Environment",
        "production or test (the legacy test server / NBIA stage); nlst: NBIA's NLST host",
        "string",
        default=cfg.DEFAULT_ENVIRONMENT,
        enum=_environments(),
    ),
    ExtraField(
        "api",
        "API generation",
        "legacy: the key-based query API (/services/v2/TCIA/query); nbia: TCIA's current API (v4)",
        "string",
        default=cfg.DEFAULT_API,
        enum=tuple(GENERATIONS),
    ),
    ExtraField("api_version", "API version", f"empty for the API's default. {_versions()}", "string"),
    ExtraField(
        "key_location",
        "Send the API key in",
        "the api_key header (recommended) or the api_key query parameter",
        "string",
        default=cfg.DEFAULT_KEY_LOCATION,
        enum=cfg.KEY_LOCATIONS,
    ),
    ExtraField(
        "timeout",
        "Timeout (seconds)",
        f"read timeout of each request; the connect timeout is at most {cfg.DEFAULT_CONNECT_TIMEOUT:g} s",
        "number",
        default=cfg.DEFAULT_READ_TIMEOUT,
        minimum=1,
    ),
    ExtraField(
        "max_retries",
        "Max retries",
        "retries on connection errors, timeouts, 429 and 5xx",
        "integer",
        default=cfg.DEFAULT_MAX_RETRIES,
        minimum=0,
        maximum=20,
    ),
    ExtraField(
        "retry_backoff",
        "Retry backoff (seconds)",
        "the first retry's base delay, doubled on each further retry (jittered)",
        "number",
        default=cfg.DEFAULT_RETRY_BACKOFF,
        minimum=0.001,
    ),
    ExtraField(
        "verify",
        "Verify TLS",
        "verify the server's TLS certificate (a CA bundle path can be given in the extra JSON)",
        "boolean",
        default=True,
    ),
    ExtraField(
        "proxies",
        "Proxies",
        'a JSON mapping of scheme to proxy URL, e.g. {"https": "http://proxy:3128"}',
        "string",
    ),
)

HIDDEN_FIELDS = ["schema", "login"]
RELABELING = {"password": "API Key", "host": "Server root (optional)", "port": "Port"}
# The port is shown, not folded into the host: Airflow 3.3.1 and 3.3.2's Test button refuses a connection whose
# stored port is empty (apache/airflow#69957; fixed upstream by #73298), so the documented way to enter one gives the port apart.
PLACEHOLDERS = {
    "host": "leave empty for TCIA's own servers; http://127.0.0.1 for the emulator",
    "port": "443 for TCIA's own servers; 8780 for the emulator",
    "password": "the legacy API's key (not needed for NBIA)",
}


def conn_fields() -> dict[str, Any]:
    """The provider info's declarative ``conn-fields`` (Airflow 3.2+)."""
    return {f.name: {"label": f.label, "description": f.description, "schema": f.schema()} for f in EXTRA_FIELDS}


def ui_field_behaviour() -> dict[str, Any]:
    """The standard fields' behaviour, in the provider info's spelling (``hidden-fields`` …)."""
    placeholders = dict(PLACEHOLDERS)
    placeholders.update({f.name: f.placeholder() for f in EXTRA_FIELDS if f.default is not None and not f.enum})
    return {"hidden-fields": list(HIDDEN_FIELDS), "relabeling": dict(RELABELING), "placeholders": placeholders}


def hook_ui_field_behaviour() -> dict[str, Any]:
    """:func:`ui_field_behaviour` in the hook method's spelling (``hidden_fields`` …)."""
    return {key.replace("-", "_"): value for key, value in ui_field_behaviour().items()}


def form_widgets() -> dict[str, Any]:
    """The extras as wtforms fields, for Airflow versions without declarative forms (2.11, 3.0, 3.1)."""
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import NumberRange, Optional, any_of

    try:  # Airflow 2.11's UI renders them with Flask-AppBuilder; 3.0/3.1 read only their metadata.
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    except ImportError:
        widget = None
    else:
        widget = BS3TextFieldWidget()

    widgets: dict[str, Any] = {}
    for f in EXTRA_FIELDS:
        validators: list[Any] = [] if f.enum else [Optional()]
        if f.enum:
            validators.append(any_of(list(f.enum)))
        if f.type == "boolean":
            widgets[f.name] = BooleanField(f.label, description=f.description, default=f.default)
            continue
        default = f.default
        if f.type == "integer":
            field_class: Any = IntegerField
            validators.append(NumberRange(min=f.minimum, max=f.maximum))
        else:
            # wtforms has no float field Airflow accepts: a number is typed as text and checked by TciaConfig.
            field_class = StringField
            default = None if default is None else f"{default:g}" if f.type == "number" else str(default)
        kwargs: dict[str, Any] = {"description": f.description, "validators": validators, "default": default}
        if widget is not None:
            kwargs["widget"] = widget
        widgets[f.name] = field_class(f.label, **kwargs)
    return widgets
