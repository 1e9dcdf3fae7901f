"""Memory estimates (dcgan_jax/memory.py) and the requests they refuse before allocating: huge sample counts,
z pools and zooms are one line saying what fits, in the library functions and the commands."""

import pytest

from dcgan_jax import memory
from dcgan_jax.errors import UserError
from tests.helpers import one_line_error, run_cli


def test_available_memory_is_plausible():
    available = memory.available_bytes()
    assert 2**26 < available < 2**50  # between 64 MiB and 1 PiB


def test_check_fits_names_how_many_fit(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000 * 2**20)  # 1000 MiB available
    memory.check_fits(100, 2**20, "x", "fix")  # 100 MiB: fits
    with pytest.raises(
        UserError, match=r"needs about 1.5 GiB .* 1000 MiB is available: at most 800 fit; use less"
    ):
        memory.check_fits(1536, 2**20, "1,536 things", "use less")


@pytest.mark.parametrize(
    "command, flags, fragment",
    [
        ("sample", ("--num_samples=10000000000",), "at most"),
        ("explore", ("--indices=0,100000000000",), "use smaller --indices"),
        ("explore", ("--zoom=300000",), "use --zoom="),
    ],
)
def test_commands_refuse_what_no_machine_holds(trained_run, tmp_path, command, flags, fragment):
    result = run_cli(
        f"dcgan_jax.{command}",
        f"--workdir={trained_run}",
        f"--output={tmp_path / 'out.png'}",
        *flags,
        timeout=120,
    )
    one_line_error(result, fragment, "is available")
    assert not (tmp_path / "out.png").exists()
