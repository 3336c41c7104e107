"""docs/reference/ is what the schemas generate: every field of the sources and experiment files,
with its type, default, an example and a description."""

from __future__ import annotations

import re

import pytest

from crossrec.data.sources import SourcesFile
from crossrec.experiment.config import ExperimentConfig
from crossrec.experiment.reference import PAGES, generated
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs" / "reference"


@pytest.mark.parametrize("page", PAGES)
def test_reference_page_is_up_to_date(page: str) -> None:
    path = DOCS / page
    assert path.is_file(), f"{path} is missing: run python -m crossrec.experiment.reference docs/reference"
    assert path.read_text() == generated()[page], (
        f"{path} is stale: run python -m crossrec.experiment.reference docs/reference"
    )


def _models(root):
    from crossrec.experiment.reference import _models_in

    seen, pending = [], [root]
    while pending:
        model = pending.pop()
        if model not in seen:
            seen.append(model)
            pending += [m for f in model.model_fields.values() for m in _models_in(f.annotation)]
    return seen


@pytest.mark.parametrize(
    ("root", "page"), [(SourcesFile, "sources-file.md"), (ExperimentConfig, "experiment-file.md")]
)
def test_every_field_has_a_row_with_a_description(root, page: str) -> None:
    text = generated()[page]
    for model in _models(root):
        section = text.split(f"## {model.__name__}\n", 1)[1].split("\n## ", 1)[0]
        for field_name, field in model.model_fields.items():
            name = field.alias or field_name  # e.g. [transfer] from (a Python keyword)
            row = re.search(rf"^\| `{name}` \|(.*)\|$", section, flags=re.M)
            assert row, f"{model.__name__}.{name} is not documented"
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.group(1))]
            assert all(cells[:4]), f"{model.__name__}.{name}: an empty cell in {cells}"
