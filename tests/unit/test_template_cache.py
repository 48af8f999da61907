"""The synthesized template is kept on disk across processes, under a digest of everything the synth reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_recovery import stack_policies
from gpu_recovery.stack_policies import SYNTH_INPUTS, inputs_digest, synthesized_template


@pytest.fixture
def synths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Each context the (fake) child process synthesized, with the cache in a fresh directory."""
    done: list[str] = []

    def synthesize(context: str) -> str:
        done.append(context)
        return json.dumps({"Resources": {}, "Context": json.loads(context)})

    monkeypatch.setattr(stack_policies, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(stack_policies, "_synthesize", synthesize)
    stack_policies._template.cache_clear()
    yield done
    stack_policies._template.cache_clear()  # nothing fake stays in this process's memory


def test_a_configuration_is_synthesized_once_across_processes(synths: list[str], tmp_path: Path) -> None:
    first = synthesized_template({"GPU_RESET_ENABLED": "true"})
    stack_policies._template.cache_clear()  # what a new process starts with: only the disk
    assert synthesized_template({"GPU_RESET_ENABLED": "true"}) == first
    assert len(synths) == 1
    assert synthesized_template({"GPU_RESET_ENABLED": "false"})["Context"] == {"GPU_RESET_ENABLED": "false"}
    assert len(synths) == 2
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".json", ".json"]  # no partial file left


def test_the_digest_covers_every_input_but_bytecode(tmp_path: Path) -> None:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name if Path(name).suffix else tmp_path / name / "module.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    files = [write(name, "original") for name in SYNTH_INPUTS]
    before = inputs_digest(tmp_path)
    for path in files:
        path.write_text("changed")
        assert inputs_digest(tmp_path) != before, path
        path.write_text("original")
    write("infra/__pycache__/module.cpython-311.pyc", "bytecode")
    assert inputs_digest(tmp_path) == before
