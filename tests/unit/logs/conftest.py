"""Generated mail logs with their ground truth (tests/support/maillog_generator.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

GENERATOR = Path(__file__).resolve().parents[2] / "support" / "maillog_generator.py"
# The generated logs start on 2024-03-01; a modification time a few days later gives their
# classic (year-less) stamps the year 2024, as the ground truth has it.
WRITTEN = datetime(2024, 3, 5, 12, 0).timestamp()


@dataclass(frozen=True)
class GeneratedLog:
    path: Path
    truth: dict[str, Any]


def generate(directory: Path, *, size: str, seed: int, days: float, iso: bool) -> GeneratedLog:
    path = directory / f"mail-{size}-{seed}-{days}{'-iso' if iso else ''}.log"
    if not path.exists():
        argv = [sys.executable, str(GENERATOR), "--size", size, "--seed", str(seed)]
        argv += ["--days", str(days), "-o", str(path)] + (["--iso"] if iso else [])
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        os.utime(path, (WRITTEN, WRITTEN))
    truth = json.loads(Path(f"{path}.truth.json").read_text())
    return GeneratedLog(path, truth)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("maillogs")


@pytest.fixture(scope="session")
def classic_log(logs_dir: Path) -> GeneratedLog:
    return generate(logs_dir, size="2M", seed=3, days=2, iso=False)
