"""The typed public API against the endpoint table: the table stays the single source of truth.

Every query endpoint has one explicit hook method (:class:`~airflow_provider_tcia.hooks.queries.TciaQueryMethods`)
and one operator class with an explicit ``__init__`` (:mod:`airflow_provider_tcia.operators.query`), so type
checkers and IDEs see their real signatures. These tests compare them with :data:`ENDPOINTS` — names, order,
required or optional, annotations, defaults, docstrings — and a missing or stale one fails naming it, with the
code to paste (:func:`hook_method_source`, :func:`operator_source`).
"""

from __future__ import annotations

import inspect
import typing

import pytest

from airflow_provider_tcia.api.endpoints import ENDPOINTS, QUERY_ENDPOINTS, Endpoint, Param
from airflow_provider_tcia.hooks.queries import TciaQueryMethods
from airflow_provider_tcia.hooks.tcia import TciaHook
from airflow_provider_tcia.operators import query as query_module
from airflow_provider_tcia.operators.query import QUERY_OPERATORS, TciaQueryOperator

ROWS = "list[dict[str, Any]]"
FORMAT_DOC = ":param format: ``json`` (rows, the default), ``csv``, ``xml`` or ``html`` (text)."


def value_type(p: Param) -> str:
    """The annotation of a parameter's value: dates also take a date or datetime (see ``parse_date``)."""
    return "str | dt.date" if p.is_date else "str"


def operator_class_name(ep: Endpoint) -> str:
    words = ep.method.split("_")
    special = {"sop": "SOP", "uids": "UIDs", "md5": "MD5", "doi": "DOI"}
    return "Tcia" + "".join(special.get(w, w.capitalize()) for w in words) + "Operator"


def _hook_params(ep: Endpoint) -> list[str]:
    out = ["self"]
    out += [f"{p.name}: {value_type(p)}" for p in ep.params if p.required]
    out.append("*")
    out += [f"{p.name}: {value_type(p)} | None = None" for p in ep.params if not p.required]
    return out


def hook_method_source(ep: Endpoint) -> str:
    """The hook method an endpoint needs in ``hooks/queries.py`` (two overloads and the implementation)."""
    params = _hook_params(ep)
    doc = [f"{ep.description} (``{ep.name}``).", ""]
    doc += [f":param {p.name}: {p.description}{' (required)' if p.required else ''}." for p in ep.params]
    doc.append(FORMAT_DOC)
    args = ", ".join(f"{p.name}={p.name}" for p in ep.params)
    call = f'self.query("{ep.name}", {args + ", " if args else ""}format=format)'

    def signature(fmt: str, returns: str) -> str:
        return f"    def {ep.method}({', '.join([*params, fmt])}) -> {returns}:"

    docstring = "\n".join(f"        {line}" if line else "" for line in doc)
    return "\n".join(
        [
            "    @overload",
            signature('format: Literal["json"] = "json"', ROWS) + " ...",
            "    @overload",
            signature("format: str", f"{ROWS} | str") + " ...",
            signature('format: str = "json"', f"{ROWS} | str"),
            f'        """{docstring.lstrip()}\n        """',
            f"        return {call}",
        ]
    )


def operator_source(ep: Endpoint) -> str:
    """The operator class an endpoint needs in ``operators/query.py``."""
    doc = [f"{ep.description} (``{ep.name}``).", "", "Output and validation: see :class:`TciaQueryOperator`."]
    if ep.params:
        doc.append("")
    doc += [f":param {p.name}: {p.description}{' (required)' if p.required else ''}. Templated." for p in ep.params]
    lines = [f"class {operator_class_name(ep)}(TciaQueryOperator):"]
    lines.append('    """' + "\n".join(f"    {line}" if line else "" for line in doc).lstrip() + '\n    """')
    lines += ["", f'    endpoint = "{ep.name}"']
    lines.append("")
    if not ep.params:  # its own all the same: the base's would show endpoint= and parameters=, refused here
        lines += ["    def __init__(self, **kwargs: Any) -> None:", "        super().__init__(**kwargs)"]
        return "\n".join(lines)
    lines.append("    def __init__(self, *,")
    lines += [f"        {p.name}: {value_type(p)} | None = None," for p in ep.params]
    lines += ["        **kwargs: Any,", "    ) -> None:", "        super().__init__(**kwargs)"]
    lines += [f"        self.{p.name} = {p.name}" for p in ep.params]
    return "\n".join(lines)


def _missing(what: str, source: str) -> str:
    return f"{what}; the code for it:\n\n{source}\n"


def _unwrapped_init(cls: type) -> typing.Callable[..., None]:
    # BaseOperatorMeta wraps every __init__ (default_args); the code is the wrapped one.
    return inspect.unwrap(cls.__dict__["__init__"])


# --- the hook --------------------------------------------------------------------------------------
def text_method_source(ep: Endpoint) -> str:
    """The hook method a text/plain endpoint needs in ``hooks/queries.py``: its one value, no format."""
    doc = [f"{ep.description} (``{ep.name}``).", ""]
    doc += [f":param {p.name}: {p.description}{' (required)' if p.required else ''}." for p in ep.params]
    args = ", ".join(f"{p.name}={p.name}" for p in ep.params)
    docstring = "\n".join(f"        {line}" if line else "" for line in doc)
    params = _hook_params(ep)
    if params[-1] == "*":  # (no optional parameter, and no format)
        params.pop()
    return "\n".join(
        [
            f"    def {ep.method}({', '.join(params)}) -> str | None:",
            f'        """{docstring.lstrip()}\n        """',
            f'        return self.text_value("{ep.name}", {args})',
        ]
    )


def table_parameters(ep: Endpoint) -> list[inspect.Parameter]:
    """``self``, then the required parameters (positional or by keyword), then the optional ones (by keyword)."""
    return [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=value_type(p))
            for p in ep.params
            if p.required
        ),
        *(
            inspect.Parameter(
                p.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=f"{value_type(p)} | None"
            )
            for p in ep.params
            if not p.required
        ),
    ]


@pytest.mark.parametrize("ep", [ep for ep in QUERY_ENDPOINTS if ep.answer == "text"], ids=lambda ep: ep.name)
def test_text_hook_method_matches_the_table(ep: Endpoint):
    """A text/plain endpoint's method returns its one value (``str | None``) and takes no format."""
    source = text_method_source(ep)
    method = TciaQueryMethods.__dict__.get(ep.method)
    assert method is not None, _missing(f"TciaQueryMethods has no {ep.method}() for {ep.name}", source)
    assert getattr(TciaHook, ep.method) is method, f"TciaHook.{ep.method} is not the one of TciaQueryMethods"
    want = inspect.Signature(table_parameters(ep), return_annotation="str | None")
    assert inspect.signature(method) == want, _missing(f"TciaHook.{ep.method} differs from the table", source)
    doc = inspect.getdoc(method) or ""
    assert f"``{ep.name}``" in doc, f"TciaHook.{ep.method}'s docstring does not name {ep.name}"
    for p in ep.params:
        assert f":param {p.name}: {p.description}" in doc, f"TciaHook.{ep.method}'s docstring lacks {p.name}"


@pytest.mark.parametrize(
    "ep", [ep for ep in QUERY_ENDPOINTS if ep.answer == "rows" and not ep.own_signature], ids=lambda ep: ep.name
)
def test_hook_method_matches_the_table(ep: Endpoint):
    source = hook_method_source(ep)
    method = TciaQueryMethods.__dict__.get(ep.method)
    assert method is not None, _missing(f"TciaQueryMethods has no {ep.method}() for {ep.name}", source)
    assert getattr(TciaHook, ep.method) is method, f"TciaHook.{ep.method} is not the one of TciaQueryMethods"
    assert not hasattr(method, "__signature__"), f"TciaHook.{ep.method}'s signature is generated, not written"

    want = inspect.Signature(
        [
            *table_parameters(ep),
            inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, default="json", annotation="str"),
        ],
        return_annotation=f"{ROWS} | str",
    )
    assert inspect.signature(method) == want, _missing(f"TciaHook.{ep.method} differs from the table", source)

    overloads = typing.get_overloads(method)
    assert len(overloads) == 2, _missing(f"TciaHook.{ep.method} needs its two overloads (json rows, text)", source)
    rows, text = (inspect.signature(o) for o in overloads)
    assert rows == want.replace(
        parameters=[
            *list(want.parameters.values())[:-1],
            want.parameters["format"].replace(annotation="Literal['json']"),
        ],
        return_annotation=ROWS,
    ), _missing(f"TciaHook.{ep.method}'s first overload (json: rows) differs from the table", source)
    assert text == want.replace(
        parameters=[
            *list(want.parameters.values())[:-1],
            want.parameters["format"].replace(default=inspect.Parameter.empty),
        ]
    ), _missing(f"TciaHook.{ep.method}'s second overload (any format) differs from the table", source)

    doc = inspect.getdoc(method) or ""
    assert f"``{ep.name}``" in doc, f"TciaHook.{ep.method}'s docstring does not name {ep.name}"
    for p in ep.params:
        assert f":param {p.name}: {p.description}" in doc, f"TciaHook.{ep.method}'s docstring lacks {p.name}"
        assert (" (required)" in doc.split(f":param {p.name}:")[1].split("\n")[0]) == p.required, (
            f"TciaHook.{ep.method}'s docstring says {p.name} is {'optional' if p.required else 'required'}"
        )
    assert FORMAT_DOC in doc


def test_the_hook_has_no_endpoint_method_the_table_lacks():
    table = {ep.method for ep in QUERY_ENDPOINTS}
    written = {name for name, value in vars(TciaQueryMethods).items() if callable(value) and not name.startswith("_")}
    assert written - table == set(), f"TciaQueryMethods has methods for no query endpoint: {sorted(written - table)}"
    assert issubclass(TciaHook, TciaQueryMethods)


@pytest.mark.parametrize("ep", [ep for ep in ENDPOINTS.values() if ep.kind == "download"], ids=lambda ep: ep.name)
def test_download_methods_take_the_table_parameters(ep: Endpoint):
    method = getattr(TciaHook, ep.method, None)
    assert method is not None, f"TciaHook has no {ep.method}() for {ep.name}"
    params = inspect.signature(method).parameters
    positional = [n for n, p in params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and n != "self"]
    assert positional == [p.name for p in ep.params if p.required], f"TciaHook.{ep.method} differs from the table"
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


# --- the operators ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ep", [ep for ep in QUERY_ENDPOINTS if ep.own_signature], ids=lambda ep: ep.name)
def test_an_endpoint_with_its_own_signature_has_it_written(ep: Endpoint):
    """getSeriesMetadata's many UIDs, getSimpleSearch's criteria: no table-made signature says them, so the hook
    method (``hooks/paged.py``) and the operator are written by hand — and must exist, typed, naming the endpoint."""
    from airflow_provider_tcia.hooks.paged import TciaPagedMethods

    method = TciaPagedMethods.__dict__.get(ep.method)
    assert method is not None and getattr(TciaHook, ep.method) is method, f"TciaPagedMethods has no {ep.method}()"
    assert not hasattr(method, "__signature__"), f"TciaHook.{ep.method}'s signature is generated, not written"
    params = list(inspect.signature(method).parameters.values())[1:]
    assert params and all(p.annotation is not inspect.Parameter.empty for p in params)
    assert params[-1].name != "kwargs" and "format" in {p.name for p in params}
    assert len(typing.get_overloads(method)) == 2, f"TciaHook.{ep.method} needs its two overloads (json rows, text)"
    assert f"``{ep.name}``" in (inspect.getdoc(method) or "")

    cls = QUERY_OPERATORS.get(ep.name)
    assert cls is not None and cls.__name__ == operator_class_name(ep), f"no {operator_class_name(ep)} for {ep.name}"
    assert "__init__" in vars(cls) and cls.endpoint == ep.name and f"``{ep.name}``" in (cls.__doc__ or "")
    init = inspect.signature(_unwrapped_init(cls)).parameters
    assert all(p.annotation is not inspect.Parameter.empty for name, p in init.items() if name != "self")
    assert set(cls.template_fields) >= {"tcia_conn_id", "output_path", "output_format"}


@pytest.mark.parametrize("ep", [ep for ep in QUERY_ENDPOINTS if not ep.own_signature], ids=lambda ep: ep.name)
def test_operator_matches_the_table(ep: Endpoint):
    source = operator_source(ep)
    cls = QUERY_OPERATORS.get(ep.name)
    assert cls is not None, _missing(f"no operator for {ep.name} in QUERY_OPERATORS", source)
    assert cls.__name__ == operator_class_name(ep), f"{ep.name}'s operator is {cls.__name__}"
    assert "__init__" in vars(cls), _missing(f"{cls.__name__} has no __init__ of its own", source)
    init = _unwrapped_init(cls)
    assert not hasattr(init, "__signature__"), _missing(f"{cls.__name__}.__init__ is generated, not written", source)

    # Every endpoint parameter is keyword-only and defaults to None, the required ones too: a value may come
    # from default_args, .partial()/.expand() or a template, and execute() checks it (the same error as ever).
    want = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(
                inspect.Parameter(
                    p.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=f"{value_type(p)} | None"
                )
                for p in ep.params
            ),
            inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation="Any"),
        ],
        return_annotation="None",
    )
    assert inspect.signature(init) == want, _missing(f"{cls.__name__}.__init__ differs from the table", source)
    assert cls.endpoint == ep.name
    assert list(cls.template_fields) == [*(p.name for p in ep.params), "tcia_conn_id", "output_path", "output_format"]

    doc = cls.__doc__ or ""
    assert f"``{ep.name}``" in doc, f"{cls.__name__}'s docstring does not name {ep.name}"
    for p in ep.params:
        assert f":param {p.name}: {p.description}" in doc, f"{cls.__name__}'s docstring lacks {p.name}"


def test_there_is_no_operator_the_table_lacks():
    assert sorted(QUERY_OPERATORS) == sorted(ep.name for ep in QUERY_ENDPOINTS)
    defined = {
        name
        for name, value in vars(query_module).items()
        if isinstance(value, type) and issubclass(value, TciaQueryOperator) and value is not TciaQueryOperator
    }
    assert defined == {cls.__name__ for cls in QUERY_OPERATORS.values()}


def test_every_operator_is_exported():
    from airflow_provider_tcia import operators

    assert {cls.__name__ for cls in QUERY_OPERATORS.values()} <= set(operators.__all__)


# --- every operator, sensor and trigger the provider lists -----------------------------------------
def _listed_classes() -> list[type]:
    import importlib

    from airflow_provider_tcia.get_provider_info import get_provider_info

    info = get_provider_info()
    modules = [
        m for kind in ("operators", "sensors", "triggers") for entry in info[kind] for m in entry["python-modules"]
    ]
    classes = []
    for name in modules:
        module = importlib.import_module(name)
        classes += [
            value
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == name and not value.__name__.startswith("_")
        ]
    return classes


@pytest.mark.parametrize("cls", _listed_classes(), ids=lambda cls: cls.__name__)
def test_every_listed_constructor_is_written_and_annotated(cls: type):
    """What type checkers see is what runs: no constructor generated at import time, every argument typed."""
    if "__init__" not in vars(cls):
        return  # (inherited: checked on the class that writes it)
    init = _unwrapped_init(cls)
    assert not hasattr(init, "__signature__"), f"{cls.__name__}.__init__ is generated, not written"
    params = list(inspect.signature(init).parameters.values())[1:]
    untyped = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{cls.__name__}.__init__ leaves {untyped} without a type"
