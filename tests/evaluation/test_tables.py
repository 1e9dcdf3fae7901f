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


def test_merge_rows_keeps_earlier_rows_of_the_same_step_and_header():
    earlier = {
        "step": 5,
        "header": "h",
        "rows": [{"features": "a", "acc": 0.1}, {"features": "b", "acc": 0.2}],
    }
    rows, kept = tables.merge_rows(
        earlier, 5, "h", [{"features": "c", "acc": 0.3}, {"features": "a", "acc": 0.9}], "features"
    )
    assert kept == 1
    assert rows == [
        {"features": "a", "acc": 0.9},  # replaced where it stood
        {"features": "b", "acc": 0.2},
        {"features": "c", "acc": 0.3},
    ]
    assert earlier["rows"][0] == {"features": "a", "acc": 0.1}  # the earlier table is not changed
    new = [{"features": "c", "acc": 0.3}]
    for other in (None, {}, dict(earlier, step=6), dict(earlier, header="other data")):
        assert tables.merge_rows(other, 5, "h", new, "features") == (new, 0)
