"""Every entry of the endpoint table has all it needs, each piece its own failure naming what is missing where.

For every endpoint in :data:`airflow_provider_tcia.api.endpoints.ENDPOINTS`: the emulator answers it over HTTP
on every version of both API generations; ``docs/operators.md`` (query endpoints) and ``docs/emulator.md`` have
its row as ``scripts/endpoint_tables.py`` writes it; its operator is declared, exported from
``airflow_provider_tcia.operators`` and in a module the provider info lists; the README imports it. (The hook's
and the operators' signatures against the table are tested with the hook and the operators.)

Each check is a function returning what is missing for one endpoint, so the last tests can show, with an
endpoint added to the table and nothing else, that the checks name exactly the pieces left out.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
from typing import NamedTuple

import pytest
import requests

from airflow_provider_tcia.api import endpoints
from airflow_provider_tcia.api.endpoints import ENDPOINTS, Endpoint, Param
from airflow_provider_tcia.api.generations import ApiGeneration, LegacyApi, NbiaApi
from airflow_provider_tcia.api.routes import ROUTES, Route
from airflow_provider_tcia.api.simple_search import SimpleSearch, flatten
from airflow_provider_tcia.emulator.catalog import GBM_SERIES
from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("endpoint_tables", ROOT / "scripts" / "endpoint_tables.py")
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)

GENERATIONS: list[ApiGeneration] = [LegacyApi(v) for v in LegacyApi.versions] + [NbiaApi(v) for v in NbiaApi.versions]
#: A value the default dataset has rows for, by parameter name (only required parameters are sent).
SAMPLES = {
    "collection": "TCGA-GBM",
    "modality": "MR",
    "series_instance_uid": GBM_SERIES,
    "sop_instance_uid": "1.3.6.1.4.1.14519.5.2.1.7695.4001.254637948180506182312529390348",  # GBM_SERIES' first
    "date": "2000-01-01",
    "name": "sharedListApiUnitTest",
    "series_instance_uids": GBM_SERIES,  # (getSeriesMetadata's list: one UID)
    "doi": "https://doi.org/10.7937/K9/TCIA.2016.RNYFUYE9",  # TCGA-GBM's
}
#: Endpoints whose form is not one field per parameter: a sample form and how their answer's rows are read.
OWN_FORMS = {
    "getSimpleSearch": (
        tuple(SimpleSearch(collections="TCGA-GBM").form(0, 10)),
        lambda answer: list(flatten(answer.json())),
    ),
}
IMPORTS = re.compile(r"from airflow_provider_tcia\.operators import (\([^)]*\)|[^\n]+)")
GENERATOR = "python scripts/endpoint_tables.py"


class Missing(NamedTuple):
    """One piece an endpoint lacks and where to add it."""

    piece: str
    hint: str

    def __str__(self) -> str:
        return f"{self.piece}: {self.hint}"


def report(endpoint: Endpoint, missing: list[Missing]) -> str:
    return f"{endpoint.name} lacks:\n" + "\n".join(f"  - {m}" for m in missing)


# --- the checks -------------------------------------------------------------------------------------------
def emulator_gaps(endpoint: Endpoint, url: str, http: requests.Session) -> list[Missing]:
    """What the emulator at ``url`` fails to answer: each version of each generation asked the endpoint with
    its required parameters, as the hook asks; a query must answer rows."""
    unknown = [p.name for p in endpoint.required if p.name not in SAMPLES]
    if unknown:
        return [Missing("sample value", f"add {', '.join(unknown)} to SAMPLES in tests/test_endpoint_table.py")]
    params = {p.name: SAMPLES[p.name] for p in endpoint.required}
    missing = []
    if endpoint.one_of and not any(name in params for name in endpoint.one_of):
        params[endpoint.one_of[0]] = SAMPLES[endpoint.one_of[0]]
    for generation in GENERATIONS:
        if not generation.serves(endpoint):
            continue  # (an NBIA-only endpoint: a legacy connection refuses or computes it, sending nothing)
        if endpoint.kind == "query":
            asked = generation.query_request(endpoint, params)
        else:
            asked = generation.download_request(endpoint, params, md5=False)
        if endpoint.name in OWN_FORMS:  # (a form that is not one field per parameter)
            asked = dataclasses.replace(asked, params=OWN_FORMS[endpoint.name][0])
        if asked.method == "POST":
            answer = http.post(url + asked.path, data=asked.params, timeout=60)
        else:
            answer = http.get(url + asked.path, params=asked.params, timeout=60)
        where = f"{generation.name} {generation.version}"
        if answer.status_code == 404:
            hint = f"GET {asked.path} is a 404 (airflow_provider_tcia/api/routes.py routes what the table has)"
        elif answer.status_code != 200:
            hint = f"GET {asked.path} answered {answer.status_code} {_said(answer)!r}"
        elif endpoint.kind == "query" and not (
            answer.content.strip() if endpoint.answer == "text" else OWN_FORMS.get(endpoint.name, (0, _rows))[1](answer)
        ):
            hint = f"GET {asked.path} answered no rows for {params}"
        else:
            continue
        missing.append(
            Missing(
                f"emulator responder ({where})",
                f"{hint} — answer it in airflow_provider_tcia/emulator/responses.py (Responder._rows for a "
                "query's rows, emulator/views.py for their fields)",
            )
        )
    return missing


def _said(answer: requests.Response) -> str:
    """The first and the last line of an answer (an emulator error's last line is the exception)."""
    lines = answer.text.strip().splitlines() or [""]
    return (lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}")[:300]


def _rows(answer: requests.Response) -> list:
    try:
        rows = json.loads(answer.content or b"[]")
    except ValueError:
        return []
    return [r for r in rows if r] if isinstance(rows, list) else []


def docs_gaps(endpoint: Endpoint, doc: str, block: str, make_row) -> list[Missing]:
    """Whether ``doc``'s generated block has the endpoint's row, as the generator writes it."""
    text = (ROOT / doc).read_text()
    body = tables.block(text, block)
    if body is None:
        return [Missing(f"{doc} table", f"the <!-- endpoint-table: {block} --> block is gone; put it back")]
    try:
        expected = make_row(endpoint)
    except LookupError as error:  # no operator to name yet: at least the endpoint must have a row
        rows = [line for line in body.splitlines() if f"| {endpoint.name} |" in line or f"| {endpoint.name} (" in line]
        return [] if rows else [Missing(f"{doc} row", f"none for {endpoint.name} ({error}); then run {GENERATOR}")]
    if expected in body.splitlines():
        return []
    return [Missing(f"{doc} row", f"run {GENERATOR} (wanted: {expected})")]


def operator_gaps(endpoint: Endpoint) -> list[Missing]:
    """A query endpoint's operator: declared, exported, in a module the provider info lists."""
    if endpoint.kind != "query":
        return []
    operator = tables.query_operator(endpoint)
    if operator is None:
        return [
            Missing(
                "operator",
                f"declare `class ...(TciaQueryOperator)` with endpoint = {endpoint.name!r} in "
                "airflow_provider_tcia/operators/query.py (and in QUERY_OPERATORS)",
            )
        ]
    import airflow_provider_tcia.operators as package
    from airflow_provider_tcia.get_provider_info import get_provider_info

    missing = []
    name = operator.__name__
    if name not in package.__all__ or getattr(package, name, None) is not operator:
        missing.append(
            Missing(
                "operator export", f"import {name} in airflow_provider_tcia/operators/__init__.py and add it to __all__"
            )
        )
    modules = [m for entry in get_provider_info()["operators"] for m in entry["python-modules"]]
    if operator.__module__ not in modules:
        missing.append(
            Missing(
                "provider info",
                f"list {operator.__module__} under 'operators' in airflow_provider_tcia/get_provider_info.py",
            )
        )
    return missing


def readme_gaps(endpoint: Endpoint) -> list[Missing]:
    """A query endpoint's operator in the README's ``from airflow_provider_tcia.operators import (...)``."""
    if endpoint.kind != "query":
        return []
    operator = tables.query_operator(endpoint)
    imported = {n for block in IMPORTS.findall((ROOT / "README.md").read_text()) for n in re.findall(r"\w+", block)}
    if operator is not None and operator.__name__ in imported:
        return []
    what = operator.__name__ if operator else "its operator"
    hint = f"add {what} to `from airflow_provider_tcia.operators import (...)` in README.md's query operators section"
    return [Missing("README import list", hint)]


def all_gaps(endpoint: Endpoint, url: str, http: requests.Session) -> list[Missing]:
    return [
        *emulator_gaps(endpoint, url, http),
        *(
            docs_gaps(endpoint, "docs/operators.md", "operators", tables.operators_row)
            if endpoint.kind == "query"
            else []
        ),
        *docs_gaps(endpoint, "docs/emulator.md", "emulator", tables.emulator_row),
        *operator_gaps(endpoint),
        *readme_gaps(endpoint),
    ]


# --- every endpoint of the table ------------------------------------------------------------------------------
EVERY = pytest.mark.parametrize("endpoint", list(ENDPOINTS.values()), ids=list(ENDPOINTS))
QUERIES = pytest.mark.parametrize(
    "endpoint", list(endpoints.QUERY_ENDPOINTS), ids=[e.name for e in endpoints.QUERY_ENDPOINTS]
)


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


@pytest.mark.integration
@EVERY
def test_emulator_serves_it(endpoint, tcia_emulator_session, http):
    missing = emulator_gaps(endpoint, tcia_emulator_session.url, http)
    assert not missing, report(endpoint, missing)


@QUERIES
def test_docs_row(endpoint):
    missing = docs_gaps(endpoint, "docs/operators.md", "operators", tables.operators_row)
    assert not missing, report(endpoint, missing)


@EVERY
def test_emulator_docs_row(endpoint):
    missing = docs_gaps(endpoint, "docs/emulator.md", "emulator", tables.emulator_row)
    assert not missing, report(endpoint, missing)


@QUERIES
def test_operator_exported(endpoint):
    missing = operator_gaps(endpoint)
    assert not missing, report(endpoint, missing)


@QUERIES
def test_readme_import_list(endpoint):
    missing = readme_gaps(endpoint)
    assert not missing, report(endpoint, missing)


@pytest.mark.parametrize(("doc", "block"), list(tables.TABLES), ids=[doc for doc, _ in tables.TABLES])
def test_docs_table_is_current(doc, block):
    """The whole block: its header, the order of its rows, and no row of an endpoint the table no longer has."""
    text = (ROOT / doc).read_text()
    assert tables.block(text, block) == tables.TABLES[doc, block](), f"{doc} is out of date: run {GENERATOR}"


# --- the checks themselves ------------------------------------------------------------------------------------
WIDGETS = Endpoint(
    "getWidgetValues",
    "get_widget_values",
    "Set of all widget values",
    (Param("collection", "Collection", required=True, description="A collection name"),),
    "Widget",
    ("Collection",),
)


@pytest.fixture
def widgets(monkeypatch):
    """An endpoint added to the table and to nothing else."""
    monkeypatch.setitem(ENDPOINTS, WIDGETS.name, WIDGETS)
    return WIDGETS


@pytest.mark.integration
def test_a_new_entry_alone_is_missing_every_piece(widgets, tcia_emulator_session, http):
    missing = all_gaps(widgets, tcia_emulator_session.url, http)
    assert [m.piece for m in missing] == [
        *(f"emulator responder ({g.name} {g.version})" for g in GENERATIONS),
        "docs/operators.md row",
        "docs/emulator.md row",
        "operator",
        "README import list",
    ], report(widgets, missing)
    assert all("is a 404" in m.hint for m in missing[: len(GENERATIONS)])
    assert "getWidgetValues" in missing[len(GENERATIONS)].hint


@pytest.mark.integration
def test_a_routed_entry_without_a_responder_is_named(widgets, tcia_emulator_session, http, monkeypatch):
    """Routed (as the routes are built from the table at import) but with no responder: a 500 from the emulator."""
    for generation in GENERATIONS:
        monkeypatch.setitem(ROUTES, generation.path(widgets), Route(generation, widgets))
    missing = emulator_gaps(widgets, tcia_emulator_session.url, http)
    assert [m.piece for m in missing] == [f"emulator responder ({g.name} {g.version})" for g in GENERATIONS]
    assert all("answered 500" in m.hint and "no responder for getWidgetValues" in m.hint for m in missing)


def test_a_declared_operator_left_out_of_the_exports_and_the_readme(widgets, monkeypatch):
    from airflow_provider_tcia.operators import query

    operator = type("TciaGetWidgetValuesOperator", (query.TciaQueryOperator,), {"endpoint": widgets.name})
    operator.__module__ = "airflow_provider_tcia.operators.widgets"
    monkeypatch.setattr(query, operator.__name__, operator, raising=False)
    assert [m.piece for m in operator_gaps(widgets)] == ["operator export", "provider info"]
    assert [m.piece for m in readme_gaps(widgets)] == ["README import list"]
    row = tables.operators_row(widgets)
    assert row == "| `TciaGetWidgetValuesOperator` | getWidgetValues | v4, v1 | **`collection`** |"
    assert [m.piece for m in docs_gaps(widgets, "docs/operators.md", "operators", tables.operators_row)] == [
        "docs/operators.md row"
    ]


def test_a_complete_entry_lacks_nothing_offline():
    series = ENDPOINTS["getSeries"]
    assert docs_gaps(series, "docs/operators.md", "operators", tables.operators_row) == []
    assert operator_gaps(series) == readme_gaps(series) == []
