"""Result tables of the evaluations: aligned text for the console, JSON beside the run."""

import json
from typing import Any

from dcgan_jax import atomic_write, run_files

Table = list[dict[str, Any]]


def format_table(rows: Table) -> str:
    """Rows of dicts as aligned text columns; floats with 4 significant digits."""
    columns = list(rows[0])

    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    widths = [max(len(c), *(len(cell(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(cell(r[c]).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(lines)


def save_table(workdir: str, task: str, step: int, header: str, rows: Table) -> str:
    """Writes workdir/eval_<task>.json (atomically: a failure is one UserError and leaves the old
    table); returns its path."""
    path = run_files.eval_table(workdir, task)
    table = {"task": task, "step": step, "header": header, "rows": rows}
    atomic_write.write_text(path, json.dumps(table, indent=2))
    return path
