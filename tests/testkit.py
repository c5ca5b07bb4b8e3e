"""Shared test helpers (paths, running the top-level scripts); imported as `from testkit import ...`."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = DATA / "golden"


def run_script(script: str, *args: str, cwd=None, timeout=600, check=True) -> subprocess.CompletedProcess:
    """Run a top-level script of the project as a subprocess (as a user would)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
