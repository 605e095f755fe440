"""Every Python block in the README and docs/ runs, against a real Restate.

Three kinds of block: a handler module (has `@handler`): hosted by a deployment of its own
(hypercorn, and in `make soak` a local AWS Lambda) and run to its end, the compute callback
delivered when it waits for one; a test file (starts with `# test_<name>.py`): copied to a
folder outside the checkout and run there with pytest; anything else: a program, run with
the addresses `make run` uses replaced by the test stack's (no test depends on what listens
on the default ports).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionState,
    RestateConfig,
    RestateProvider,
    WorkflowSpec,
)
from landlord_restate.testing import LocalRestate
from tests.conftest import ROOT
from tests.waiting import wait_status, wait_terminal

pytestmark = pytest.mark.timeout(180)

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_HANDLER = re.compile(r'^@handler\("([A-Za-z0-9_]+)"\)', re.M)
_TEST_FILE = re.compile(r"^# (test_[a-z0-9_]+\.py)")
#: the addresses `make run` serves, as the docs write them
_DEFAULTS = ("http://127.0.0.1:8080", "http://127.0.0.1:9070", "http://127.0.0.1:9080")


def blocks() -> list[tuple[str, str]]:
    """(where, code) of every Python block, where = "<file>:<line>"."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in _BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", match.group(1)))
    return found


ALL = blocks()
TEST_FILES = [(where, code) for where, code in ALL if _TEST_FILE.match(code)]
HANDLERS = [(where, code) for where, code in ALL
            if _HANDLER.search(code) and (where, code) not in TEST_FILES]
PROGRAMS = [(where, code) for where, code in ALL
            if (where, code) not in HANDLERS and (where, code) not in TEST_FILES]


def test_the_docs_have_blocks_of_each_kind() -> None:
    """The README and docs/ hold handlers, a test file and programs (this file runs them)."""
    assert len(HANDLERS) >= 2
    assert TEST_FILES
    assert len(PROGRAMS) >= 3


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without settings that would steer a block elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKFLOW_RESTATE_", "PYTEST_", "LANDLORD_"))}
    return env | extra


@pytest.mark.parametrize(("where", "code"), PROGRAMS, ids=[w for w, _ in PROGRAMS])
def test_a_program_block_runs(where: str, code: str, config: RestateConfig,
                              tmp_path: Path) -> None:
    """A program block runs to its end against the test stack."""
    targets = (config.endpoint, config.admin_endpoint, str(config.deployment_url))
    for default, ours in zip(_DEFAULTS, targets, strict=True):
        code = code.replace(default, ours)
    script = tmp_path / "block.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_clean_env(),
                          capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(("where", "code"), TEST_FILES, ids=[w for w, _ in TEST_FILES])
def test_a_test_file_block_passes_outside_the_checkout(where: str, code: str,
                                                       tmp_path: Path) -> None:
    """Copied to a folder of its own, run with pytest there: it passes."""
    match = _TEST_FILE.match(code)
    assert match is not None
    (tmp_path / match.group(1)).write_text(code)
    env = _clean_env(PYTHONPATH=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", match.group(1)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150, check=False,
    )
    assert done.returncode == 0, f"{where}:\n{done.stdout}\n{done.stderr}"
    assert "1 passed" in done.stdout


@pytest.mark.parametrize("mechanism", ["local", pytest.param("lambda", marks=pytest.mark.soak)])
async def test_every_handler_block_runs_to_success(tmp_path: Path, mechanism: str) -> None:
    """Each handler block, hosted by a deployment (hypercorn; a local AWS Lambda in `make
    soak`), runs to `succeeded` (its compute callback delivered when it waits for one)."""
    modules = []
    for i, (_, code) in enumerate(HANDLERS):
        (tmp_path / f"docs_block_{i}.py").write_text(code)
        modules.append(f"docs_block_{i}")
    pythonpath = os.pathsep.join([str(tmp_path), str(ROOT)])
    async with LocalRestate(handlers=modules, base_dir=tmp_path / "stack",
                            config_file=ROOT / "restate.toml", execution_mechanism=mechanism,
                            env={"PYTHONPATH": pythonpath}) as local, RestateProvider(
        local.config()
    ) as provider:
        for where, code in HANDLERS:
            for name in _HANDLER.findall(code):
                workflow_id = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
                await provider.create_workflow(WorkflowSpec(
                    workflow_id=workflow_id, definition={"handler": name}))
                started = await provider.start_execution(
                    workflow_id, ExecutionInput(input={"tenant_id": "acme"}))
                status = await wait_status(
                    provider, started.execution_id,
                    lambda s: s.state.is_terminal or (
                        bool(s.history) and s.history[-1].type == "callback_waiting"),
                    within=60,
                )
                if not status.state.is_terminal:
                    await provider.post_compute_callback(
                        started.execution_id,
                        ComputeCallbackPayload(execution_id="c", tenant_id="acme",
                                               status="succeeded"))
                    status = await wait_terminal(provider, started.execution_id, within=60)
                assert status.state is ExecutionState.SUCCEEDED, (where, status.error)
