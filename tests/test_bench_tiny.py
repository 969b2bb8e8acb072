"""Every benchmark runs at its tiny size, so none can rot unnoticed. Only that it ran and printed its
figures is checked — never a timing (DESIGN: timing figures belong in bench/, reported as ratios)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import clean_environment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import PREFIX  # noqa: E402
from bench.run_all import BENCHMARKS  # noqa: E402


@pytest.mark.parametrize("script", [script for script, _ in BENCHMARKS])
def test_runs_at_tiny_size(script: str) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--tiny"],
        cwd=ROOT,
        # the Matrix benchmarks start the Synapse the suite uses (SITECHAT_SYNAPSE_VENV, else .venv-synapse)
        env={**clean_environment(), **{k: v for k, v in os.environ.items() if k == "SITECHAT_SYNAPSE_VENV"}},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    figures = [line for line in run.stdout.splitlines() if line.startswith(PREFIX)]
    assert figures, run.stdout
    assert all(len(line[len(PREFIX) :].split(" | ")) == 4 for line in figures), figures
