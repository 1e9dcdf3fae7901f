"""Result tables: aligned console text and the JSON written beside the run."""

import json

from dcgan_jax.evaluation import tables


def test_format_table():
    text = tables.format_table([{"name": "a", "fid": 1.23456}, {"name": "longer", "fid": 10.0}])
    assert text.splitlines() == ["name    fid  ", "a       1.235", "longer  10   "]


def test_save_table_writes_eval_task_json(tmp_path):
    rows = [{"images": "generator (step 5)", "fid": 1.5}]
    path = tables.save_table(str(tmp_path), "fid", 5, "FID vs 40 test images", rows)
    assert path == str(tmp_path / "eval_fid.json")
    with open(path) as f:
        assert json.load(f) == {
            "task": "fid",
            "step": 5,
            "header": "FID vs 40 test images",
            "rows": rows,
        }
