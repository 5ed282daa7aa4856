"""Numbered run directories (``results/NNNNN-<desc>/``) and their ``training_options.json``.

A run number is never reused, even when several launches race: each number is claimed by
creating a reservation file with O_EXCL, which the file system grants to exactly one process.
"""

import json
import os
import re
from typing import Any, Dict, Optional

from dnnlib.util import atomic_write

_RUN_RE = re.compile(r'^(\d+)')
OPTIONS_FILE = 'training_options.json'


def _used_ids(result_dir: str) -> list:
    ids = []
    for entry in os.listdir(result_dir):
        m = _RUN_RE.match(entry.lstrip('.'))
        if m:
            ids.append(int(m.group(1)))
    return ids


def create_run_dir(result_dir: str, desc: str) -> str:
    """Creates ``<result_dir>/<NNNNN>-<desc>`` with a number no other run has or will get.

    Args:
        result_dir: parent folder (created if missing).
        desc: short description, e.g. ``'sgan-demo-1gpu'``; characters outside [A-Za-z0-9._-]
            become '-'.

    Returns:
        The path of the new, empty run directory.
    """
    desc = re.sub(r'[^A-Za-z0-9._-]+', '-', desc).strip('-') or 'run'
    os.makedirs(result_dir, exist_ok=True)
    while True:
        run_id = max(_used_ids(result_dir), default=-1) + 1
        marker = os.path.join(result_dir, f'.{run_id:05d}.reserved')
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue     # another launch claimed this number first: look again
        os.close(fd)
        run_dir = os.path.join(result_dir, f'{run_id:05d}-{desc}')
        os.makedirs(run_dir)
        return run_dir


def remove_new_run_dir(run_dir: str, result_dir_existed: bool) -> None:
    """Undoes ``create_run_dir`` for a run that failed before its first output: the directory,
    its reservation file, and ``result_dir`` itself when this launch created it and it is empty.
    """
    import shutil
    result_dir, name = os.path.split(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    m = _RUN_RE.match(name)
    if m:
        marker = os.path.join(result_dir, f'.{m.group(1)}.reserved')
        if os.path.exists(marker):
            os.remove(marker)
    if not result_dir_existed and os.path.isdir(result_dir) and not os.listdir(result_dir):
        os.rmdir(result_dir)


def list_run_dirs(result_dir: str) -> list:
    """Run directories under ``result_dir``, oldest number first."""
    if not os.path.isdir(result_dir):
        return []
    runs = [d for d in os.listdir(result_dir)
            if _RUN_RE.match(d) and os.path.isdir(os.path.join(result_dir, d))]
    return [os.path.join(result_dir, d) for d in sorted(runs, key=lambda d: int(_RUN_RE.match(d).group(1)))]


def write_json_atomic(path: str, data: Any) -> None:
    """Writes JSON to a temporary file in the same folder, then renames it over ``path``."""
    with atomic_write(path, 'w') as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write('\n')


def save_training_options(run_dir: str, options: Dict[str, Any]) -> str:
    """Writes ``training_options.json`` into ``run_dir``; returns its path."""
    path = os.path.join(run_dir, OPTIONS_FILE)
    write_json_atomic(path, options)
    return path


def load_training_options(run_dir: str) -> Optional[Dict[str, Any]]:
    """Reads a run's ``training_options.json``; None if it has none."""
    path = os.path.join(run_dir, OPTIONS_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e})') from None
