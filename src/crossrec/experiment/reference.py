"""Reference pages of the two files a user writes, generated from their pydantic schemas.

``python -m crossrec.experiment.reference docs/reference`` writes ``sources-file.md`` (what
``crossrec ingest`` reads, :class:`crossrec.data.sources.SourcesFile`) and ``experiment-file.md``
(what ``crossrec train`` / ``transfer`` read, :class:`crossrec.experiment.config.ExperimentConfig`):
every table and field, its type, default, an example and its description. A test checks that the
pages in ``docs/reference/`` are what this module generates, so a field the code accepts cannot go
undocumented.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["PAGES", "attribute_docs", "render_page", "write_pages"]


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Field name -> the string literal written under it in the class body (attribute docstring)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for current, following in zip(body, body[1:], strict=False):
            if (
                isinstance(current, ast.AnnAssign)
                and isinstance(current.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[current.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is type(None):
        return "none"
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (list, tuple, set):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"array of {inner}" if origin is not tuple or len(set(args)) == 1 else f"array [{inner}]"
    if origin is dict:
        return f"table of {_type_name(args[0])} -> {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if annotation in names:
        return names[annotation]
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _toml(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, BaseModel):
        return "(table)"
    return json.dumps(str(value))


def _default(field: Any) -> Any:
    if field.default is not PydanticUndefined:
        return field.default
    if field.default_factory is not None:
        try:
            return field.default_factory()
        except TypeError:
            return None
    return PydanticUndefined


def _example(name: str, annotation: Any, default: Any, examples: dict[str, str]) -> str:
    if name in examples:
        return examples[name]
    if default not in (None, PydanticUndefined, {}, []) and not isinstance(default, BaseModel):
        return f"{name} = {_toml(default)}"
    models = _models_in(annotation)
    if models:
        keyed = typing.get_origin(annotation) is dict
        return f"[{name}.NAME] ..." if keyed else f"[{name}] ..."
    args = typing.get_args(annotation)
    literals = [a for a in args if isinstance(a, str)] or [
        a for arg in args if typing.get_origin(arg) is typing.Literal for a in typing.get_args(arg)
    ]
    if typing.get_origin(annotation) is typing.Literal:
        literals = list(args)
    if literals:
        return f"{name} = {_toml(literals[0])}"
    kinds = {str, int, float, bool, Path} & set(args or (annotation,))
    sample = {str: '"..."', int: "1", float: "0.5", bool: "true", Path: '"data/file"'}
    return f"{name} = {sample[next(iter(kinds))]}" if kinds else f"{name} = ..."


def render_page(
    title: str, root: type[BaseModel], intro: str, examples: dict[str, dict[str, str]] | None = None
) -> str:
    """Markdown: one section per model reachable from ``root``, one table row per field."""
    examples = examples or {}
    order: list[type[BaseModel]] = []
    pending = [root]
    while pending:
        model = pending.pop(0)
        if model in order:
            continue
        order.append(model)
        for field in model.model_fields.values():
            pending += [m for m in _models_in(field.annotation) if m not in order]
    lines = [f"# {title}", "", "<!-- generated by `python -m crossrec.experiment.reference docs/reference`; "
             "do not edit -->", "", intro, ""]  # fmt: skip
    for model in order:
        lines += [f"## {model.__name__}", "", inspect.cleandoc(model.__doc__ or ""), ""]
        lines += ["| field | type | default | example | description |", "|---|---|---|---|---|"]
        docs = attribute_docs(model)
        for name, field in model.model_fields.items():
            default = _default(field)
            shown = "required" if default is PydanticUndefined else f"`{_toml(default)}`"
            if isinstance(default, BaseModel):
                shown = "(its defaults)"
            example = _example(name, field.annotation, default, examples.get(model.__name__, {}))
            text = (field.description or docs.get(name) or "").replace("\n", " ").replace("|", "\\|")
            kind = _type_name(field.annotation).replace("|", "\\|")
            shown = shown.replace("|", "\\|")
            example = example.replace("|", "\\|")
            lines.append(f"| `{field.alias or name}` | {kind} | {shown} | `{example}` | {text} |")
        lines.append("")
    return "\n".join(lines)


def _pages() -> dict[str, str]:
    from crossrec.data.sources import SourcesFile
    from crossrec.experiment.config import ExperimentConfig

    sources_examples = {
        "Location": {
            "path": 'path = "shop/orders-*.csv"',
            "url": 'url = "sqlite:///shop.db"',
            "url_env": 'url_env = "SHOP_DB_URL"',
            "table": 'table = "orders"',
            "query": 'query = "select * from orders"',
        },
        "SourceConfig": {"pseudonymize_user_ids": "pseudonymize_user_ids = true"},
        "LinkConfig": {
            "item_fuzzy_threshold": "item_fuzzy_threshold = 90",
            "key_file": 'key_file = "link.key"',
        },
    }
    experiment_examples = {
        "DataConfig": {
            "builtin": 'builtin = "movielens-cdr"',
            "bundle": 'bundle = "bundles/shop"',
            "target": 'target = "shop"',
            "sources": 'sources = ["books", "music"]',
            "source_weights": "source_weights = { books = 1.0, music = 0.5 }",
            "link_items": 'link_items = "ids"',
            "link_users": 'link_users = "bundle"',
            "max_users": "max_users = 200",
        },
        "ModelConfig": {"params": "params = { reg = 300.0 }"},
        "FamilyConfig": {"model": 'model = { name = "ease", params = { reg = 300.0 } }'},
        "TransferConfig": {
            "params": "params = { domain_weight = 0.15 }",
            "sources": 'from = "artifacts/ml-1m-bpr"',
        },
        "SearchConfig": {"space": 'space = { "model.reg" = { low = 50.0, high = 1500.0, log = true } }'},
    }
    return {
        "sources-file.md": render_page(
            "The sources file (`crossrec ingest`)",
            SourcesFile,
            "A TOML file that says where each platform's tables are and how their columns map to "
            "crossrec's schema; `crossrec ingest SOURCES.toml -o BUNDLE` reads it. Relative paths are "
            "relative to `--data-dir` (default: the sources file's folder). SQLite URLs: "
            "`sqlite:///file.db` (three slashes: relative to the data folder, `--data-dir` or the "
            "sources file's folder) or `sqlite:////absolute/path/file.db` (four: absolute).",
            sources_examples,
        ),
        "experiment-file.md": render_page(
            "The experiment file (`crossrec train` / `crossrec transfer`)",
            ExperimentConfig,
            "A TOML file with the data, split, model, transfer, search and evaluation of a run. Any key "
            "can be overridden on the command line: `--set data.max_users=200`.",
            experiment_examples,
        ),
    }


PAGES = ("sources-file.md", "experiment-file.md")
"""The generated pages, in ``docs/reference/``."""


def write_pages(folder: str | Path) -> list[Path]:
    """Write every reference page into ``folder``; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in _pages().items():
        (folder / name).write_text(text)
        written.append(folder / name)
    return written


def generated() -> dict[str, str]:
    """Page name -> the text this module generates (what ``docs/reference/`` must hold)."""
    return _pages()


if __name__ == "__main__":  # pragma: no cover
    for path in write_pages(sys.argv[1] if len(sys.argv) > 1 else "docs/reference"):
        print(f"wrote {path}")
