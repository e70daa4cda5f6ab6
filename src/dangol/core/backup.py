"""Backups that round-trip exactly: pg_dump/pg_restore for PostgreSQL, SQLite's online backup API for the demo."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.db import connection


class BackupError(Exception):
    pass


def _pg_env_and_args() -> tuple[dict, list[str]]:
    s = connection.settings_dict
    env = dict(os.environ)
    if s.get("PASSWORD"):
        env["PGPASSWORD"] = s["PASSWORD"]
    args = ["--host", s.get("HOST") or "localhost", "--port", str(s.get("PORT") or 5432), "--username", s.get("USER") or "postgres"]
    return env, args


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return path


def backup(path: str | os.PathLike) -> Path:
    target = Path(path)
    if target.exists() and target.is_dir():
        raise BackupError(f"{target} is a folder; give a file name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if connection.vendor == "postgresql":
        env, args = _pg_env_and_args()
        result = subprocess.run([_tool("pg_dump"), *args, "--format=custom", "--no-owner", "--file", str(partial),
                                 connection.settings_dict["NAME"]], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    elif connection.vendor == "sqlite":
        source = sqlite3.connect(connection.settings_dict["NAME"])
        dest = sqlite3.connect(partial)
        try:
            source.backup(dest)  # consistent even while the app writes
        finally:
            dest.close()
            source.close()
    else:
        raise BackupError(f"no backup method for {connection.vendor}")
    os.replace(partial, target)  # a failed backup never leaves a file that looks complete
    return target


def restore(path: str | os.PathLike) -> None:
    source = Path(path)
    if not source.is_file():
        raise BackupError(f"{source} does not exist.")
    connection.close()
    if connection.vendor == "postgresql":
        env, args = _pg_env_and_args()
        result = subprocess.run([_tool("pg_restore"), *args, "--clean", "--if-exists", "--no-owner", "--single-transaction",
                                 "--dbname", connection.settings_dict["NAME"], str(source)], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
    elif connection.vendor == "sqlite":
        try:
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
            src.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{source} is not a SQLite backup: {exc}")
        dest = sqlite3.connect(connection.settings_dict["NAME"])
        try:
            src.backup(dest)
        finally:
            dest.close()
            src.close()
    else:
        raise BackupError(f"no restore method for {connection.vendor}")
