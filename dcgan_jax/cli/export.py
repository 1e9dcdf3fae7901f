"""Writes one member of a population as a plain single-run workdir: `python -m dcgan_jax.export
--workdir=POP --member=I --output=DIR`.

DIR gets every kept checkpoint of member I (its slice of the state, saved with its single-run
config), config.json, and the member's metrics.jsonl, tensorboard/, samples/ and loss curve. Every
tool opens DIR without --member, and `python -m dcgan_jax.main --workdir=DIR` resumes it as member
I's single run (give its seed and varied values, which the export prints). --member=best picks the
member of the lowest FID in the population's table (`python -m dcgan_jax.evaluate --workdir=POP
--task=fid` writes it).
"""

from absl import flags

from dcgan_jax import population, run_files
from dcgan_jax.cli import common
from dcgan_jax.errors import UserError
from dcgan_jax.evaluation import tables
from dcgan_jax.training import checkpoints, export

_WORKDIR = flags.DEFINE_string("workdir", "workdir", "A population's training workdir.")
_MEMBER = flags.DEFINE_string(
    "member",
    None,
    "The member to write out: 0 to N-1, or 'best' (the lowest FID of `evaluate --task=fid`).",
)
_OUTPUT = flags.DEFINE_string("output", None, "A new (or empty) folder for the member's workdir.")
common.require_nonempty("workdir", "output")
flags.mark_flags_as_required(["member", "output"])


def _member(workdir: str, text: str) -> int:
    """--member as an index: an integer, or 'best' read from the population's FID table."""
    if text.strip() == "best":
        table = tables.load_table(workdir, "fid")
        summary = (table or {}).get("summary") or {}
        if "best_member" not in summary:
            raise UserError(
                f"--member=best needs the population's FID table "
                f"({run_files.eval_table(workdir, 'fid')}); score the members first with "
                f"`python -m dcgan_jax.evaluate --workdir={workdir} --task=fid`, or pass --member=I"
            )
        best = int(summary["best_member"])
        print(
            f"member {best} has the lowest FID ({summary['min']:.4g}) at step {table['step']} "
            f"({run_files.eval_table(workdir, 'fid')})"
        )
        return best
    try:
        member = int(text)
    except ValueError:
        raise UserError(f"--member={text!r} must be a member index (0, 1, ...) or 'best'") from None
    if member < 0:
        raise UserError(f"--member={member} must be >= 0")
    return member


def _resume_flags(workdir: str, member: int) -> str:
    """The --config flags that make the population's command member `member`'s single run."""
    _, saved = checkpoints.open_workdir(workdir)
    config = population.member_config(saved, member)
    values = {"seed": config.seed}
    for field in population.varied(saved):
        group, name = field.split(".")
        values[field] = config[group][name]
    return " ".join(f"--config.{field}={value}" for field, value in values.items())


@common.run_main
def main(argv):
    del argv
    workdir, output = _WORKDIR.value, _OUTPUT.value
    member = _member(workdir, _MEMBER.value)
    steps = export.export_member(workdir, member, output)
    resume = _resume_flags(workdir, member)
    print(f"wrote member {member} of {workdir} as a single run to {output} (steps {steps})")
    print(
        f"resume it with the population's command, --workdir={output} and its "
        f"--config.population.* flags replaced by: {resume}"
    )


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
