"""Scratch databases for tests that run real `dangol` processes (workers, backup/restore).

They use the same kind of database as the current run: a SQLite file on the SQLite run, a fresh PostgreSQL
database on the PostgreSQL run (DATABASE_URL set)."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from django.db import connection

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dangol(env: dict, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "dangol.cli", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"dangol {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def scratch_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DANGOL_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="dangol.settings", DANGOL_TASK_BACKEND="db")
    env.pop("DATABASE_URL", None)
    dbname = None
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        base = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
        dbname = f"dangol_scratch_{uuid.uuid4().hex[:10]}"
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"CREATE DATABASE {dbname}"], check=True, capture_output=True)
        env["DATABASE_URL"] = f"{base}/{dbname}"
    dangol(env, "migrate", "--no-input", "-v", "0")
    yield env
    if dbname:
        subprocess.run(["psql", f"{base}/postgres", "-qc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"], capture_output=True)


def query(env: dict, code: str) -> str:
    """Run Python in a `dangol shell` against the scratch database and return what it prints."""
    lines = dangol(env, "shell", "-c", code).stdout.strip().splitlines()
    return lines[-1] if lines else ""


__all__ = ["connection", "dangol", "query"]
