"""atomic_write: a write lands whole or not at all, and a failure is one UserError naming the file."""

import os

import pytest

from dcgan_jax import atomic_write
from dcgan_jax.errors import UserError
from tests import hostile


@hostile.needs_root
@pytest.mark.parametrize("kind", hostile.KINDS)
@pytest.mark.parametrize("over_old", [True, False])
def test_a_failed_write_is_one_line_and_leaves_what_was_saved(tmp_path, kind, over_old):
    with hostile.hostile_folder(tmp_path, kind) as folder:
        name = (
            hostile.OLD if over_old and kind != "too_long" else hostile.target_name(kind, "new.bin")
        )
        path = os.path.join(folder, name)
        with pytest.raises(UserError) as raised:
            atomic_write.write_bytes(path, b"new" * 100_000)
        message = str(raised.value)
        assert "\n" not in message and path in message
        assert {"full": "No space left", "readonly": "Read-only", "too_long": "too long"}[
            kind
        ] in message
        assert hostile.unchanged(folder)


@hostile.needs_root
@pytest.mark.parametrize("kind", hostile.KINDS)
def test_check_writable_refuses_before_any_work(tmp_path, kind):
    with hostile.hostile_folder(tmp_path, kind) as folder:
        path = os.path.join(folder, hostile.target_name(kind, "out.png"))
        with pytest.raises(UserError, match="cannot write"):
            atomic_write.check_writable(path)
        assert hostile.unchanged(folder)


def test_a_write_replaces_the_old_file_whole(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    atomic_write.write_text(str(path), "new")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["a.json"]


def test_an_exception_inside_keeps_the_old_file_and_removes_the_partial(tmp_path):
    path = tmp_path / "a.npz"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write.target(str(path)) as tmp:
        assert tmp.endswith(".npz") and os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.npz"]


def test_check_writable_accepts_a_good_path_and_touches_nothing(tmp_path):
    path = tmp_path / "sub" / "out.png"
    atomic_write.check_writable(str(path))
    assert not path.exists() and os.listdir(tmp_path / "sub") == []


def test_is_partial_names_the_temporary_files():
    assert atomic_write.is_partial(os.path.basename(atomic_write.partial_name("/x/grid.png")))
    assert not atomic_write.is_partial("grid.png")
