"""The paper's visual experiments on a trained generator: `python -m dcgan_jax.explore --workdir=DIR --mode=MODE
--output=FILE` (.png: a grid; .gif: an animation, one frame per column of the grid).

Latent points are exemplars: --indices picks rows of a pool of z, which is `python -m
dcgan_jax.sample --seed=S`'s z (row i = the z of that command's sample i), or the `z` array of an
.npz written by `sample --output=x.npz` (--z_file). For a class-conditional run, index i is of class
i mod num_classes, or of --class. Modes: interpolate, walk, vary_dim, vary_all, arithmetic, turn,
drop_filters, nearest, guided_backprop (what D's last-layer features respond to, trained vs random
D), training_gif. A run with a moving average of G draws it (--noema: the trained G). A
population's workdir takes --member=I: member I, as its single run (training_gif: its own grids).
Each mode is a function of dcgan_jax/analysis/ (docs/latent_space.md);
this module only turns flags into its arguments.
"""

from absl import flags

from dcgan_jax import progress_bars
from dcgan_jax.analysis import (
    animation,
    figures,
    filters,
    guided_backprop,
    latent_space,
    neighbors,
    sampling,
)
from dcgan_jax.analysis.figures import Picture
from dcgan_jax.cli import common
from dcgan_jax.errors import UserError
from dcgan_jax.nn import models
from dcgan_jax.training.run import Run, open_run

MODES = (
    "interpolate",
    "walk",
    "vary_dim",
    "vary_all",
    "arithmetic",
    "turn",
    "drop_filters",
    "nearest",
    "guided_backprop",
    "training_gif",
)
_DEFAULT_INDICES = {
    "interpolate": "0,1",
    "walk": "0,1,2,3,4,5,6,7,8",
    "vary_dim": "0",
    "vary_all": "0",
    "turn": "0,1,2,3",
    "drop_filters": "0,1,2,3,4,5,6,7",
    "nearest": "0,1,2,3,4,5,6,7",
}
_DEFAULT_RANGE = {
    "interpolate": (0.0, 1.0),
    "vary_dim": (-1.0, 1.0),
    "vary_all": (-1.0, 1.0),
    "turn": (-1.0, 1.0),
}

_WORKDIR = flags.DEFINE_string(
    "workdir", "workdir", "A training workdir (holds checkpoints/ and samples/)."
)
common.require_nonempty("workdir")
_MODE = flags.DEFINE_string("mode", "interpolate", f"One of {', '.join(MODES)}.")
_CLASS = flags.DEFINE_integer(
    "class",
    None,
    "A class-conditional run: every latent point of this class (default: "
    "index i of class i % num_classes, as `sample` draws them).",
)
_OUTPUT = flags.DEFINE_string(
    "output", "explore.png", "Output file: .png (grid) or .gif (animation)."
)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_MEMBER = common.define_member()
_EMA = flags.DEFINE_bool(
    "ema",
    True,
    "A run with a moving average of G (config.optim.ema_decay): draw it; --noema "
    "draws the trained G itself.",
)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the z pool (as `sample --seed`); also seeds the noise."
)
_Z_FILE = flags.DEFINE_string(
    "z_file", "", "An .npz with a `z` array (e.g. from `sample --output=x.npz`) as pool."
)
_INDICES = flags.DEFINE_string(
    "indices", "", "Comma-separated rows of the z pool (default depends on the mode)."
)
_GROUPS = flags.DEFINE_string(
    "groups", "", "Exemplar groups 'a,b,c;d,e,f;...': 3 for arithmetic, 2 for turn."
)
_NUM_STEPS = flags.DEFINE_integer("num_steps", 10, "Points per interpolation / sweep.")
_METHOD = flags.DEFINE_enum(
    "method", "linear", ["linear", "slerp"], "Interpolation (interpolate, walk)."
)
_START = flags.DEFINE_float(
    "start",
    None,
    "Sweep start: alpha (interpolate, default 0), value (vary_*, default "
    "-1) or amount of the direction (turn, default -1).",
)
_STOP = flags.DEFINE_float("stop", None, "Sweep end (defaults: interpolate 1, vary_* 1, turn 1).")
_STEPS_BETWEEN = flags.DEFINE_integer(
    "steps_between", 8, "walk: frames from one point to the next."
)
_DIM = flags.DEFINE_integer("dim", 0, "vary_dim: the z coordinate swept.")
_MAX_DIMS = flags.DEFINE_integer(
    "max_dims", 0, "vary_all: sweep only the first N coordinates (0: all)."
)
_NUM_NOISE = flags.DEFINE_integer("num_noise", 8, "arithmetic: noisy variants of the result.")
_NOISE_SCALE = flags.DEFINE_float(
    "noise_scale", 0.25, "arithmetic: uniform noise half-width (the paper: 0.25)."
)
_LAYER = flags.DEFINE_integer(
    "layer", -2, "drop_filters: G hidden layer (0 = 4x4; negative from the top)."
)
_MAPS = flags.DEFINE_string(
    "maps", "", "drop_filters: comma-separated feature maps to zero (else found by mask)."
)
_MASK_BOX = flags.DEFINE_string(
    "mask_box", "", "drop_filters: image region 'top,left,bottom,right' in pixels."
)
_MASK_FILE = flags.DEFINE_string(
    "mask_file", "", "drop_filters: region as a .png/.npy image (nonzero = inside)."
)
_PROBE = flags.DEFINE_enum(
    "probe", "logistic", ["logistic", "ratio"], "drop_filters: how maps are scored."
)
_PROBE_SAMPLES = flags.DEFINE_integer(
    "probe_samples", 150, "drop_filters: samples the probe is fit on (paper 150)."
)
_MAX_MAPS = flags.DEFINE_integer(
    "max_maps", 0, "drop_filters: drop at most this many maps (0: every positive one)."
)
_K = flags.DEFINE_integer("k", 3, "nearest: neighbours shown per space.")
_SPLIT = flags.DEFINE_string("split", "train", "nearest, guided_backprop: the data split searched.")
_MAX_TRAIN = flags.DEFINE_integer(
    "max_train_images", 0, "nearest: search only the first N images (0: all)."
)
_NUM_FEATURES = flags.DEFINE_integer(
    "num_features", 6, "guided_backprop: D's first N last-layer features (paper 6)."
)
_TOP_K = flags.DEFINE_integer(
    "top_k", 8, "guided_backprop: the images exciting each feature most, per row."
)
_GRIDS = flags.DEFINE_enum(
    "grids",
    "fixed",
    ["fixed", "random"],
    "training_gif: the grids of the run's fixed z, or "
    "of fresh z at each step (both saved during training).",
)
_NUM_IMAGES = flags.DEFINE_integer(
    "num_images", 2000, "guided_backprop: training images searched (evenly spaced)."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 256, "Generator / D batch size (does not change the images)."
)
_ZOOM = flags.DEFINE_integer(
    "zoom", 1, "Integer upscaling of the output picture (nearest neighbour)."
)
_DURATION = flags.DEFINE_integer("duration_ms", 200, "GIF: milliseconds per frame.")
_GIF_LEVELS = flags.DEFINE_integer(
    "gif_levels", 0, "GIF: quantize to this many gray/colour levels (0: 256)."
)
common.finite("start", "stop", "noise_scale")
common.at_least(0, "step", "noise_scale")
common.seeds("seed")


def parse_ints(text: str, flag: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"--{flag}={text!r} must be comma-separated integers, e.g. 0,3,7") from None


def parse_groups(text: str, count: int) -> list[list[int]]:
    groups = [parse_ints(g, "groups") for g in text.split(";")] if text else []
    if len(groups) != count or not all(groups):
        raise UserError(
            f"--mode={_MODE.value} needs --groups with {count} non-empty ';'-separated groups of "
            f"indices, e.g. --groups='{';'.join(['0,1,2', '3,4,5', '6,7,8'][:count])}'"
        )
    return groups


def _sweep(mode: str):
    start, stop = _DEFAULT_RANGE[mode]
    start = start if _START.value is None else _START.value
    stop = stop if _STOP.value is None else _STOP.value
    return latent_space.sweep(_NUM_STEPS.value, start, stop)


def _mask(size: int):
    if _MASK_FILE.value:
        return filters.file_mask(_MASK_FILE.value, size)
    if _MASK_BOX.value:
        return filters.box_mask(size, parse_ints(_MASK_BOX.value, "mask_box"))
    return None


def picture(run: Run, mode: str) -> Picture:
    """The mode's picture, with every flag turned into an argument of its analysis function."""
    model, batch = run.config.model, _BATCH_SIZE.value
    if mode == "guided_backprop":
        return guided_backprop.guided_backprop(
            model,
            run.config.data,
            run.d_variables,
            run.initial_state.d_variables,
            _NUM_FEATURES.value,
            _TOP_K.value,
            _NUM_IMAGES.value,
            _SPLIT.value,
            step=run.step,
        )
    g = run.sampling_g_variables if _EMA.value else run.g_variables  # as `sample` picks G
    pool = (
        sampling.load_z_file(_Z_FILE.value, model.latent_dim, models.g_input_dim(model))
        if _Z_FILE.value
        else None
    )
    pick = lambda indices: sampling.pick_z(model, indices, _SEED.value, pool, _CLASS.value)  # noqa: E731
    z = pick(parse_ints(_INDICES.value or _DEFAULT_INDICES.get(mode, "0"), "indices"))
    if mode == "interpolate":
        alphas = _sweep(mode)
        return latent_space.interpolate(
            model, g, z, _NUM_STEPS.value, _METHOD.value, alphas[0], alphas[-1], batch
        )
    if mode == "walk":
        return latent_space.walk(model, g, z, _STEPS_BETWEEN.value, _METHOD.value, batch)
    if mode == "vary_dim":
        return latent_space.vary_dim(model, g, z, _DIM.value, _sweep(mode), batch)
    if mode == "vary_all":
        return latent_space.vary_all(model, g, z[0], _sweep(mode), _MAX_DIMS.value, batch)
    if mode == "arithmetic":
        a, b, c = (pick(group) for group in parse_groups(_GROUPS.value, 3))
        return latent_space.arithmetic(
            model, g, a, b, c, _NUM_NOISE.value, _NOISE_SCALE.value, _SEED.value, batch
        )
    if mode == "turn":
        group_a, group_b = (pick(group) for group in parse_groups(_GROUPS.value, 2))
        return latent_space.turn(model, g, z, group_a, group_b, _sweep(mode), batch)
    if mode == "drop_filters":
        maps, mask = parse_ints(_MAPS.value, "maps"), _mask(model.image_size)
        if not maps and mask is None:
            raise UserError("--mode=drop_filters needs --maps, --mask_box or --mask_file")
        return filters.drop_filters(
            model,
            g,
            z,
            _LAYER.value,
            maps,
            mask,
            _PROBE_SAMPLES.value,
            _PROBE.value,
            _MAX_MAPS.value,
            _SEED.value,
            batch,
        )
    return neighbors.nearest_figure(
        model,
        run.config.data,
        g,
        run.d_variables,
        z,
        _K.value,
        _SPLIT.value,
        _MAX_TRAIN.value,
        batch,
    )


def _check_flags() -> str:
    mode = _MODE.value
    if mode not in MODES:
        raise UserError(f"--mode={mode!r} is not a mode; use one of {', '.join(MODES)}")
    common.output_file(_OUTPUT.value)
    try:
        figures.check_output(_OUTPUT.value)
    except UserError:
        raise UserError(
            f"--output={_OUTPUT.value!r} must end in .png (grid) or .gif (animation)"
        ) from None
    for name, value, low in (
        ("num_steps", _NUM_STEPS.value, 1),
        ("steps_between", _STEPS_BETWEEN.value, 1),
        ("batch_size", _BATCH_SIZE.value, 1),
        ("zoom", _ZOOM.value, 1),
        ("duration_ms", _DURATION.value, 1),
        ("num_noise", _NUM_NOISE.value, 0),
        ("probe_samples", _PROBE_SAMPLES.value, 1),
        ("max_maps", _MAX_MAPS.value, 0),
        ("max_train_images", _MAX_TRAIN.value, 0),
        ("max_dims", _MAX_DIMS.value, 0),
        ("num_features", _NUM_FEATURES.value, 1),
        ("top_k", _TOP_K.value, 1),
        ("num_images", _NUM_IMAGES.value, 1),
    ):
        if value < low:
            raise UserError(f"--{name}={value} must be >= {low}")
    if _GIF_LEVELS.value and not 2 <= _GIF_LEVELS.value <= 256:
        raise UserError(f"--gif_levels={_GIF_LEVELS.value} must be 0 (off) or in [2, 256]")
    return mode


@common.run_main
def main(argv):
    del argv
    mode = _check_flags()
    if mode == "training_gif":
        folder = common.member_folder(_WORKDIR.value, _MEMBER.value)  # a member's own grids
        result = animation.training_progress(folder, z=_GRIDS.value)
    else:
        with progress_bars.compile_notice(f"--mode={mode}'s programs (XLA, once per shape)"):
            result = picture(open_run(_WORKDIR.value, _STEP.value, _MEMBER.value), mode)
    for note in result.notes:
        print(note)
    figures.write_picture(result, _OUTPUT.value, _ZOOM.value, _DURATION.value, _GIF_LEVELS.value)
    print(f"wrote {mode} to {_OUTPUT.value}")


def run() -> None:
    common.start(main)


if __name__ == "__main__":
    run()
