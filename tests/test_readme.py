"""Every command of the README's tours and of ``examples/`` runs as printed, on small data.

The commands are read from the README's ``bash`` blocks and from the ``crossrec ...`` lines in the
comments and READMEs of ``examples/``, in order, and run in a scratch folder holding a copy of
``examples/``. Placeholders (``runs/<run>``, ``EXPERIMENT.toml``, ``DIR``, ``B``) become the folders
the earlier commands wrote, and each command gets small-data options appended (``--max-users``,
``--set data.max_users=...``, fewer epochs, ``-n 20K``) that only shrink the work. A command that
fails, or a README command this file does not know how to run, fails the test: a README that does
not work as printed fails CI. The Python tour is run too, and its output compared with the README's.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossrec.cli.main import app
from crossrec.data.builtin import DatasetUnavailableError, movielens_cdr_dir
from tests.conftest import DEMO_ARGS, REPO_ROOT, shared_data_dir

README = REPO_ROOT / "README.md"
EXAMPLES = REPO_ROOT / "examples"
WIDTH = 100
SMALL_EXPERIMENT = ["--set", "data.max_users=150", "--set", "search.n_trials=2", "--set", "num_threads=1"]

pytestmark = pytest.mark.slow


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _command_lines(lines: list[str], program: str = "crossrec") -> list[str]:
    commands = []
    for line in lines:
        line = line.replace("[--json]", "--json")  # the README's optional flag, run with it
        try:
            argv = shlex.split(line, comments=True)
        except ValueError:
            continue
        if argv and argv[0] == program:
            commands.append(shlex.join(argv))
    return commands


def readme_commands() -> list[str]:
    """The ``crossrec`` lines of the README's ``bash`` blocks, in order, each once."""
    lines = [line for block in _bash_blocks(README.read_text()) for line in block.splitlines()]
    return list(dict.fromkeys(_command_lines(lines)))


def example_commands() -> list[str]:
    """``crossrec`` commands named in ``examples/``: comment lines of its TOML files and the ``bash``
    blocks of its READMEs (``python ...`` steps included), in order, each once."""
    commands: list[str] = []
    for path in sorted(EXAMPLES.rglob("README.md")):
        for block in _bash_blocks(path.read_text()):
            for line in block.splitlines():
                if line.startswith("python examples/"):
                    commands.append(shlex.join(shlex.split(line, comments=True)))
                commands += _command_lines([line])
    for path in sorted(EXAMPLES.rglob("*.toml")):
        for line in path.read_text().splitlines():
            if line.lstrip().startswith("#"):
                commands += _command_lines(re.findall(r"crossrec [^`\n]+", line))
    return list(dict.fromkeys(commands))


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory, demo_run):
    """A scratch folder with a copy of ``examples/`` (run from there), and what earlier commands left.

    ``crossrec demo`` itself is the session's :func:`tests.conftest.demo_run` (the same command with
    the same small options as the demo test, run once)."""
    try:
        data_dir = movielens_cdr_dir()
    except DatasetUnavailableError as error:
        pytest.skip(f"movielens-cdr not available here: {error}")
    root = tmp_path_factory.mktemp("tour")
    shutil.copytree(EXAMPLES, root / "examples")
    (root / "users.csv").write_text("user_id\n100k_1\n100k_196\n")
    old = Path.cwd()
    os.chdir(root)
    state = {
        "root": root,
        "data_dir": data_dir,
        "runs": [],
        "done": set(),
        "user": None,
        "demo_run": demo_run,
    }
    try:
        yield state
    finally:
        os.chdir(old)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _adapt(command: str, state: dict) -> list[str]:
    """``command`` as argv with placeholders resolved and small-data options appended."""
    argv = shlex.split(command)[1:]
    name = argv[0]
    experiment = "examples/experiments/movielens_ease_joint.toml"
    if "--nproc" in argv:
        experiment = "examples/experiments/movielens_bpr_warm_start.toml"
    demo = state.get("demo")
    replaced = []
    for position, token in enumerate(argv):
        previous = argv[position - 1] if position else ""
        if token.startswith("runs/<run>"):
            if demo is None:
                raise AssertionError(f"{command}: no demo run folder yet (the README runs demo first)")
            token = token.replace("runs/<run>", str(demo))
        elif token == "EXPERIMENT.toml":
            token = experiment
        elif token == "DIR" and previous == "--data-dir":
            token = str(state["data_dir"])
        elif token == "B" and previous == "--bundle":
            token = "bundles/mlcdr"
        elif token in ("runs/A", "runs/B"):
            runs = [r for r in state["runs"] if "movielens-ease-joint" in r.name]
            assert len(runs) >= 2, f"{command}: needs two runs of one experiment, have {state['runs']}"
            token = str(runs[0] if token == "runs/A" else runs[1])
        elif token == "100k_196" and previous == "--user" and state["user"]:
            token = state["user"]  # the demo samples users: ask for one it kept
        elif previous in ("-n", "--interactions"):
            token = "20K"
        elif token == "BUNDLE" and previous in ("-o", "--output"):
            token = "bundles/mlcdr" if "movielens-cdr" in command else "bundles/example"
        replaced.append(token)
    leftovers = [t for t in replaced if "<" in t or t in ("EXPERIMENT.toml", "DIR", "B", "BUNDLE")]
    assert not leftovers, f"{command}: placeholders this test cannot fill: {leftovers}"
    extra: list[str] = []
    if name == "demo":
        extra = list(DEMO_ARGS)
    elif name in ("train", "transfer") and "--nproc" in replaced:
        extra = ["--set", "model.params.optim.epochs=2", "--set", "model.params.optim.progress=false"]
    elif name in ("train", "transfer", "pretrain"):
        extra = list(SMALL_EXPERIMENT)
        if "optim" in Path(replaced[1]).read_text():  # a gradient model: a few epochs
            extra += ["--set", "model.params.optim.epochs=3"]
        if "--budget" in replaced:
            extra += ["--budget", "20s"]
    elif name == "two-tower":
        extra = ["--epochs", "2", "--no-progress"]
    elif name == "train-distributed":
        extra = ["--epochs", "2", "--eval-users", "100"]
    return replaced + extra


def _serve(argv: list[str]) -> str:
    """Start ``crossrec serve`` on a free port, wait for ``/healthz``, stop it; the answer's body."""
    port = _free_port()
    argv = [
        str(port) if previous == "--port" else token
        for previous, token in zip(["", *argv[:-1]], argv, strict=True)
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "crossrec", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"serve exited: {process.stdout.read().decode()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                    return answer.read().decode()
            except OSError:
                time.sleep(0.3)
        raise AssertionError("serve did not answer /healthz within 60 s")
    finally:
        process.terminate()
        process.wait(timeout=20)


def _run(command: str, state: dict) -> str:
    if command.startswith("python "):
        return _run_python(command, state)
    argv = _adapt(command, state)
    key = shlex.join(argv)
    if key in state["done"]:
        pytest.skip(f"already run as: crossrec {key}")
    state["done"].add(key)
    if argv[0] == "serve":
        return _serve(argv)
    if argv[0] == "demo":
        result, runs = state["demo_run"]  # `crossrec demo` + DEMO_ARGS + --runs-dir, run once
    else:
        result = CliRunner().invoke(app, argv, env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, f"{command}\n-> crossrec {shlex.join(argv)}\n{result.output}"
    output = result.output
    for line in output.splitlines():  # the run folders later commands use
        found = re.match(r"results: (\S+)/results\.json", line.strip())
        if found:
            state["runs"].append(Path(found.group(1)))
            if argv[0] == "demo":
                state["demo"] = Path(found.group(1))
        user = re.search(r"--user (\S+)", line)
        if argv[0] == "demo" and user:
            state["user"] = user.group(1)
    if argv[0] in ("evaluate", "compare", "train", "transfer", "demo") and "--wide" not in argv:
        cut = [line for line in output.splitlines() if "…" in line]
        assert not cut, f"crossrec {shlex.join(argv)}: table cells cut at {WIDTH} columns:\n" + "\n".join(cut)
    return output


def _run_python(command: str, state: dict) -> str:
    argv = shlex.split(command)[1:]
    if "examples/education/prepare.py" in argv[0]:
        shared = shared_data_dir()
        if not shared.is_dir():
            pytest.skip(f"{command}: the real data is not at {shared}")
        argv = [argv[0], str(shared), str(state["root"] / "education-work")]
    elif "examples/education/study_" in argv[0]:
        pytest.skip(f"{command}: a research run (minutes on 2 cores), measured in examples/education")
    completed = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, f"{command}\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs_as_printed(command: str, tour: dict) -> None:
    output = _run(command, tour)
    if command.startswith("crossrec serve"):
        assert "ok" in output.lower()
    if "--json" in command:
        assert '"items"' in output


def _education_ready(command: str, state: dict) -> list[str] | None:
    """The education ingest reads what prepare.py wrote: point it at that folder."""
    if "examples/education/sources.toml" not in command:
        return None
    work = state["root"] / "education-work"
    if not work.is_dir():
        pytest.skip("examples/education/prepare.py did not run here (no real data)")
    return ["ingest", "examples/education/sources.toml", "--data-dir", str(work), "-o", "education-bundle"]


@pytest.mark.parametrize("command", example_commands())
def test_examples_command_runs_as_printed(command: str, tour: dict) -> None:
    education = _education_ready(command, tour)
    if education is not None:
        if "education-bundle" in tour:
            pytest.skip("the education bundle is already ingested")
        result = CliRunner().invoke(app, education)
        assert result.exit_code == 0, result.output
        tour["education-bundle"] = tour["root"] / "education-bundle"
        return
    _run(command, tour)


def test_every_example_experiment_is_named_by_a_command() -> None:
    named = " ".join(example_commands())
    for path in sorted((EXAMPLES / "experiments").glob("*.toml")):
        assert f"examples/experiments/{path.name}" in named, f"{path}: say how to run it in its comments"


def test_python_tour_prints_what_the_readme_says(tour: dict) -> None:
    text = README.read_text()
    section = text[text.index("## Python API tour") :]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:2]
    printed = re.search(r"It prints.*?```\n(.*?)```", section, flags=re.S)
    assert blocks and printed is not None
    script = tour["root"] / "python_tour.py"
    script.write_text("\n".join(blocks))
    completed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    expected = printed.group(1).strip().splitlines()
    lines = completed.stdout.strip().splitlines()
    assert lines[0] == expected[0]
    assert [float(v) for v in lines[1].split()] == pytest.approx([float(v) for v in expected[1].split()])
