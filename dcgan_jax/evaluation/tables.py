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


def save_table(
    workdir: str,
    task: str,
    step: int,
    header: str,
    rows: Table,
    summary: dict[str, Any] | None = None,
) -> str:
    """Writes workdir/eval_<task>.json (atomically: a failure is one UserError and leaves the old
    table); returns its path. A population's table (one row per member) carries its `summary`
    (fid.summarize: mean, std, min, best member)."""
    path = run_files.eval_table(workdir, task)
    table = {"task": task, "step": step, "header": header, "rows": rows}
    if summary is not None:
        table["summary"] = summary
    atomic_write.write_text(path, json.dumps(table, indent=2))
    return path


def merge_rows(
    table: dict[str, Any] | None, step: int, header: str, rows: Table, key: str
) -> tuple[Table, int]:
    """`rows` laid over the rows of an earlier `table` of the same step and header (the same
    checkpoint and data), matched on `key`: a new row replaces the old row of its key in place,
    the others are kept, new keys come last. Why: a long evaluation run row by row in separate
    commands (`evaluate --task=classify --probe_features=...`) ends with one table. Returns (the
    rows, how many were kept from `table`); a table of another step or header is replaced."""
    if not table or table.get("step") != step or table.get("header") != header:
        return rows, 0
    merged = [dict(r) for r in table.get("rows", []) if isinstance(r, dict) and key in r]
    kept = len(merged)
    for row in rows:
        at = [i for i, old in enumerate(merged) if old[key] == row[key]]
        if at:
            merged[at[0]] = row
            kept -= 1
        else:
            merged.append(row)
    return merged, kept


def load_table(workdir: str, task: str) -> dict[str, Any] | None:
    """The table `save_table` wrote to workdir/eval_<task>.json; None when there is none or it
    cannot be read (a table is a result to show, and can be written again)."""
    try:
        with open(run_files.eval_table(workdir, task)) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return None
    return table if isinstance(table, dict) else None
