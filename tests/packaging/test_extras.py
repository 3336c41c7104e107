"""The light core install: without an extra, crossrec still imports, trains and evaluates, and every
feature that needs the extra says which one to install (one line, exit 2 from the CLI)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from crossrec._extras import EXTRAS, MissingExtraError, has_extra, require_extra

# A child interpreter in which the modules of every extra cannot be imported (as after a core install).
_BLOCK_EXTRAS = textwrap.dedent(
    """
    import sys
    BLOCKED = {blocked!r}

    class _Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)


def _run_without_extras(code: str, tmp_path) -> subprocess.CompletedProcess:
    blocked = sorted({module for modules in EXTRAS.values() for module in modules})
    script = _BLOCK_EXTRAS.format(blocked=blocked) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )


def test_require_extra_names_the_extra_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert not has_extra("tune")
    with pytest.raises(MissingExtraError, match=r"pip install 'crossrec\[tune\]'"):
        require_extra("tune", "search")
    with pytest.raises(ValueError, match="unknown extra"):
        require_extra("nope", "x")


def test_core_trains_evaluates_and_writes_a_report_without_any_extra(tmp_path) -> None:
    result = _run_without_extras(
        """
        import numpy as np, scipy.sparse as sp
        from crossrec.evaluation import evaluate_model, random_split, write_run
        from crossrec.data.interactions import Interactions
        from crossrec.models import EASE
        rng = np.random.default_rng(0)
        users, items = np.nonzero(rng.random((60, 30)) < 0.3)
        split = random_split(Interactions(users, items, np.ones(len(users))), 60, 30, seed=0)
        model = EASE(reg=10.0).fit(split.matrix("train"))
        evaluation = evaluate_model(model.scorer(), split, part="test", ks=(5,))
        run = write_run("run", {"ease": evaluation}, split=split)
        html = (run / "report.html").read_text()
        assert "pip install 'crossrec[report]'" in html, html[:500]
        import matplotlib  # the extra really is absent here
        """,
        tmp_path,
    )
    assert "No module named 'matplotlib' (blocked by the test)" in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["serve", "missing-artifact"], "serve"),
    ],
)
def test_cli_says_which_extra_a_command_needs(tmp_path, args, extra) -> None:
    result = _run_without_extras(
        f"""
        from crossrec.cli.main import main
        main({args!r})
        """,
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"pip install 'crossrec[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_search_and_sql_sources_name_their_extras(monkeypatch) -> None:
    from crossrec.data import readers
    from crossrec.experiment import search

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r"crossrec\[tune\]"):
        search.tune(None, None)  # type: ignore[arg-type]  # refused before the arguments are read
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(MissingExtraError, match=r"crossrec\[db\]"):
        readers._stage_sqlalchemy(None, "sqlite:///x.db", None, [], "t", None)  # type: ignore[arg-type]
