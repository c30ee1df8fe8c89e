"""Write the endpoint tables of ``docs/operators.md`` and ``docs/emulator.md`` from the endpoint table.

``python scripts/endpoint_tables.py`` rewrites each block between ``<!-- endpoint-table: NAME -->`` and
``<!-- /endpoint-table -->``; with ``--check`` it writes nothing and exits 1 if a block is out of date.
``tests/test_endpoint_table.py`` checks the same, row by row.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from a checkout

from airflow_provider_tcia.api.endpoints import ENDPOINTS, Endpoint  # noqa: E402
from airflow_provider_tcia.api.generations import LegacyApi, NbiaApi  # noqa: E402

#: A generated block: ``<!-- endpoint-table: NAME (a note for the reader) -->``, the table, ``<!-- /endpoint-table -->``.
BLOCK = re.compile(r"(<!-- endpoint-table: (?P<name>[\w-]+)[^>]*-->\n)(?P<body>.*?)(<!-- /endpoint-table -->)", re.S)


def query_operator(endpoint: Endpoint) -> type | None:
    """The operator class declared for a query endpoint in ``operators/query.py``, or None."""
    from airflow_provider_tcia.operators import query

    found = [
        cls
        for cls in vars(query).values()
        if isinstance(cls, type)
        and issubclass(cls, query.TciaQueryOperator)
        and cls.__dict__.get("endpoint") == endpoint.name
    ]
    return found[0] if found else None


def nbia_paths(endpoint: Endpoint) -> list[str]:
    """NBIA's paths of an endpoint below ``/nbia-api/services/``, v4's first (an endpoint v4 lacks: v1's)."""
    paths = [NbiaApi(v).path(endpoint).removeprefix("/nbia-api/services/") for v in NbiaApi.versions]
    return list(dict.fromkeys(paths))


def legacy_path(endpoint: Endpoint) -> str:
    """The seed API's path of an endpoint below ``/services/<version>/`` (the same on every version)."""
    v = LegacyApi.versions[0]
    return LegacyApi(v).path(endpoint).removeprefix(f"/services/{v}/")


def _endpoint_cell(endpoint: Endpoint) -> str:
    if endpoint.nbia_only:
        if endpoint.legacy_from:
            return f"{endpoint.name} (NBIA only; legacy: computed from {', '.join(endpoint.legacy_from)})"
        return f"{endpoint.name} (NBIA only; refused on legacy)"
    others = [a for a in endpoint.aliases if a != endpoint.nbia_name]
    return f"{endpoint.name} (or {', '.join(others)})" if others else endpoint.name


def _nbia_cell(endpoint: Endpoint) -> str:
    versions = [path.split("/", 1)[0] for path in nbia_paths(endpoint)]
    cell = ", ".join(versions) if len(versions) > 1 else f"{versions[0]} only"
    if endpoint.nbia_name:
        cell = f"`{endpoint.nbia_name}`, {cell}"
    if endpoint.nbia_v1_name:
        cell = f"{cell} (v1: `{endpoint.nbia_v1_name}`)"
    if endpoint.http_method == "POST":
        cell = f"{cell}, POST form"
    if endpoint.answer == "text":
        return f"{cell}, text/plain"
    return cell if endpoint.nbia_formats else f"{cell}, JSON only"


def _params_cell(endpoint: Endpoint) -> str:
    cell = ", ".join(f"**`{p.name}`**" if p.required else f"`{p.name}`" for p in endpoint.params) or "—"
    return f"{cell} (exactly one of {', '.join(f'`{n}`' for n in endpoint.one_of)})" if endpoint.one_of else cell


def _row(*cells: str) -> str:
    return f"| {' | '.join(cells)} |"


def _table(header: tuple[str, ...], rows: list[str]) -> str:
    return "\n".join([_row(*header), _row(*("---",) * len(header)).replace(" ", ""), *rows]) + "\n"


def operators_row(endpoint: Endpoint) -> str:
    """The row of a query endpoint in ``docs/operators.md``; a clear error if it has no operator yet."""
    operator = query_operator(endpoint)
    if operator is None:
        raise LookupError(f"{endpoint.name} has no operator in airflow_provider_tcia/operators/query.py")
    return _row(f"`{operator.__name__}`", _endpoint_cell(endpoint), _nbia_cell(endpoint), _params_cell(endpoint))


def operators_table() -> str:
    header = (
        "operator",
        f"endpoint (legacy API {', '.join(LegacyApi.versions)})",
        "NBIA",
        "parameters (**required**)",
    )
    return _table(header, [operators_row(e) for e in ENDPOINTS.values() if e.kind == "query"])


def emulator_row(endpoint: Endpoint) -> str:
    """The row of an endpoint in ``docs/emulator.md``."""
    answer = f"{endpoint.result} rows" if endpoint.kind == "query" else endpoint.description
    if endpoint.answer == "text":
        answer = f"{endpoint.result} (text/plain)"
    elif endpoint.kind == "query" and not endpoint.nbia_formats:
        answer += " (NBIA: JSON only)"
    if endpoint.http_method == "POST":
        answer += ", POST form"
    nbia = ", ".join(f"`{p}`" for p in nbia_paths(endpoint))
    legacy = "— (NBIA only)" if endpoint.nbia_only else f"`{legacy_path(endpoint)}`"
    return _row(endpoint.name, legacy, nbia, answer)


def emulator_table() -> str:
    versions = "\\|".join(LegacyApi.versions)
    header = ("endpoint", f"seed API, below `/services/{versions}/`", "NBIA, below `/nbia-api/services/`", "answer")
    return _table(header, [emulator_row(e) for e in ENDPOINTS.values()])


#: The generated tables: (document, block name) -> the table.
TABLES: dict[tuple[str, str], Callable[[], str]] = {
    ("docs/operators.md", "operators"): operators_table,
    ("docs/emulator.md", "emulator"): emulator_table,
}


def block(text: str, name: str) -> str | None:
    """The body of the block called ``name`` in ``text``, or None."""
    for found in BLOCK.finditer(text):
        if found["name"] == name:
            return found["body"]
    return None


def rewritten(text: str, name: str, table: str) -> str:
    """``text`` with the block called ``name`` replaced by ``table``; an error if there is no such block."""
    if block(text, name) is None:
        raise LookupError(f"no <!-- endpoint-table: {name} --> ... <!-- /endpoint-table --> block")
    return BLOCK.sub(lambda m: m[1] + table + m[4] if m["name"] == name else m[0], text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a table is out of date")
    args = parser.parse_args(argv)
    stale = []
    for (doc, name), make in TABLES.items():
        path = REPO / doc
        text = path.read_text()
        new = rewritten(text, name, make())
        if new != text:
            stale.append(doc)
            if not args.check:
                path.write_text(new)
    verb = "out of date" if args.check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "endpoint tables up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
