"""Memory estimates (dcgan_jax/memory.py) and the requests they refuse before allocating: huge sample counts,
z pools and zooms are one line saying what fits, in the library functions and the commands; what one device may hold
(a training run's state and batch: an accelerator's free memory, else the host's shared by its CPU devices)."""

import jax
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


def test_cpu_devices_share_the_hosts_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000 * 2**20)
    budget, where = memory.device_budget()
    assert budget == pytest.approx(memory.MARGIN * 1000 * 2**20 / jax.local_device_count())
    assert where.startswith("1000 MiB is available")


class _Accelerator:
    platform, device_kind = "gpu", "NVIDIA H100 80GB HBM3"

    def memory_stats(self):
        return {"bytes_limit": 60 * 2**30, "bytes_in_use": 10 * 2**30}


def test_an_accelerator_holds_what_its_allocator_has_free(monkeypatch):
    monkeypatch.setattr(memory.jax, "local_devices", lambda: [_Accelerator()])
    assert memory.device_budget() == (50 * 2**30, "50.0 GiB is free on the NVIDIA H100 80GB HBM3")
    asked = []
    memory.check_device_fits(49 * 2**30, "training", lambda: asked.append(1) or "fix")
    assert not asked  # the fix (which may estimate alternatives) only for a refusal
    with pytest.raises(
        UserError,
        match=r"^training needs about 2.0 TiB of memory per device and 50.0 GiB is free"
        r" on the NVIDIA H100 80GB HBM3; lower it$",
    ):
        memory.check_device_fits(2 * 2**40, "training", lambda: "lower it")


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
