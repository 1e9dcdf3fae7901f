"""The paper's visual experiments on a trained generator: `python -m dcgan_jax.explore --workdir=DIR --mode=MODE
--output=FILE` (.png: a grid; .gif: an animation, one frame per column of the grid).

Latent points are exemplars: --indices picks rows of a pool of z, which is `python -m dcgan_jax.sample --seed=S`'s
z (row i = the z of that command's sample i), or the `z` array of an .npz written by `sample --output=x.npz`
(--z_file). Modes: interpolate, walk, vary_dim, vary_all, arithmetic, turn, drop_filters, nearest, training_gif
(see the README section "Exploring the latent space").
"""

import os
import sys
from typing import List, NamedTuple, Optional, Sequence

import numpy as np
from absl import app, flags

from dcgan_jax import cli
from dcgan_jax.errors import UserError

MODES = ("interpolate", "walk", "vary_dim", "vary_all", "arithmetic", "turn", "drop_filters", "nearest",
         "training_gif")
_DEFAULT_INDICES = {"interpolate": "0,1", "walk": "0,1,2,3,4,5,6,7,8", "vary_dim": "0", "vary_all": "0",
                    "turn": "0,1,2,3", "drop_filters": "0,1,2,3,4,5,6,7", "nearest": "0,1,2,3,4,5,6,7"}
_DEFAULT_RANGE = {"interpolate": (0.0, 1.0), "vary_dim": (-1.0, 1.0), "vary_all": (-1.0, 1.0), "turn": (-1.0, 1.0)}

_WORKDIR = flags.DEFINE_string("workdir", "workdir", "A training workdir (holds checkpoints/ and samples/).")
_MODE = flags.DEFINE_string("mode", "interpolate", f"One of {', '.join(MODES)}.")
_OUTPUT = flags.DEFINE_string("output", "explore.png", "Output file: .png (grid) or .gif (animation).")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the z pool (as `sample --seed`); also seeds the noise.")
_Z_FILE = flags.DEFINE_string("z_file", "", "An .npz with a `z` array (e.g. from `sample --output=x.npz`) as pool.")
_INDICES = flags.DEFINE_string("indices", "", "Comma-separated rows of the z pool (default depends on the mode).")
_GROUPS = flags.DEFINE_string("groups", "", "Exemplar groups 'a,b,c;d,e,f;...': 3 for arithmetic, 2 for turn.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", 10, "Points per interpolation / sweep.")
_METHOD = flags.DEFINE_enum("method", "linear", ["linear", "slerp"], "Interpolation (interpolate, walk).")
_START = flags.DEFINE_float("start", None, "Sweep start: alpha (interpolate, default 0), value (vary_*, default "
                            "-1) or amount of the direction (turn, default -1).")
_STOP = flags.DEFINE_float("stop", None, "Sweep end (defaults: interpolate 1, vary_* 1, turn 1).")
_STEPS_BETWEEN = flags.DEFINE_integer("steps_between", 8, "walk: frames from one point to the next.")
_DIM = flags.DEFINE_integer("dim", 0, "vary_dim: the z coordinate swept.")
_MAX_DIMS = flags.DEFINE_integer("max_dims", 0, "vary_all: sweep only the first N coordinates (0: all).")
_NUM_NOISE = flags.DEFINE_integer("num_noise", 8, "arithmetic: noisy variants of the result.")
_NOISE_SCALE = flags.DEFINE_float("noise_scale", 0.25, "arithmetic: uniform noise half-width (the paper: 0.25).")
_LAYER = flags.DEFINE_integer("layer", -2, "drop_filters: G hidden layer (0 = 4x4; negative from the top).")
_MAPS = flags.DEFINE_string("maps", "", "drop_filters: comma-separated feature maps to zero (else found by mask).")
_MASK_BOX = flags.DEFINE_string("mask_box", "", "drop_filters: image region 'top,left,bottom,right' in pixels.")
_MASK_FILE = flags.DEFINE_string("mask_file", "", "drop_filters: region as a .png/.npy image (nonzero = inside).")
_PROBE = flags.DEFINE_enum("probe", "logistic", ["logistic", "ratio"], "drop_filters: how maps are scored.")
_PROBE_SAMPLES = flags.DEFINE_integer("probe_samples", 150, "drop_filters: samples the probe is fit on (paper 150).")
_MAX_MAPS = flags.DEFINE_integer("max_maps", 0, "drop_filters: drop at most this many maps (0: every positive one).")
_K = flags.DEFINE_integer("k", 3, "nearest: neighbours shown per space.")
_SPLIT = flags.DEFINE_string("split", "train", "nearest: the data split searched.")
_MAX_TRAIN = flags.DEFINE_integer("max_train_images", 0, "nearest: search only the first N images (0: all).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Generator / D batch size (does not change the images).")
_ZOOM = flags.DEFINE_integer("zoom", 1, "Integer upscaling of the output picture (nearest neighbour).")
_DURATION = flags.DEFINE_integer("duration_ms", 200, "GIF: milliseconds per frame.")
_GIF_LEVELS = flags.DEFINE_integer("gif_levels", 0, "GIF: quantize to this many gray/colour levels (0: 256).")


class Picture(NamedTuple):
    """What a mode draws: rows of images (the PNG grid) and, optionally, the GIF frames (else one per column)."""
    rows: List[np.ndarray]
    frames: Optional[List[np.ndarray]] = None


def parse_ints(text: str, flag: str) -> List[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"--{flag}={text!r} must be comma-separated integers, e.g. 0,3,7") from None


def parse_groups(text: str, count: int) -> List[List[int]]:
    groups = [parse_ints(g, "groups") for g in text.split(";")] if text else []
    if len(groups) != count or not all(groups):
        raise UserError(f"--mode={_MODE.value} needs --groups with {count} non-empty ';'-separated groups of "
                        f"indices, e.g. --groups='{';'.join(['0,1,2', '3,4,5', '6,7,8'][:count])}'")
    return groups


def z_pool(seed: int, num: int, config) -> np.ndarray:
    """The first `num` z of `python -m dcgan_jax.sample --seed=seed` (that module's flags cannot be imported here)."""
    import jax
    from dcgan_jax import latent
    return np.asarray(latent.sample_z_for_examples(jax.random.PRNGKey(seed), np.arange(num), config.latent_dim,
                                                   config.z_distribution))


class Explorer:
    """A restored checkpoint plus the z pool: turns indices into z and z into uint8 images."""

    def __init__(self, workdir: str, step: Optional[int]):
        from dcgan_jax import checkpointing, train
        manager, self.config = checkpointing.open_workdir(workdir)
        if step is not None and step not in manager.all_steps():
            raise UserError(f"no checkpoint at step {step} in {workdir}; available: {sorted(manager.all_steps())}")
        state = checkpointing.restore_state(manager, train.create_train_state(self.config), step)
        self.g_vars = {"params": state.g_params, "batch_stats": state.g_batch_stats}
        self.d_vars = {"params": state.d_params, "batch_stats": state.d_batch_stats}
        self.pool = self._load_pool() if _Z_FILE.value else None

    def _load_pool(self) -> np.ndarray:
        try:
            z = np.load(_Z_FILE.value)["z"]
        except (OSError, KeyError, ValueError) as e:
            raise UserError(f"--z_file={_Z_FILE.value!r} is not an .npz with a `z` array ({e})") from None
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise UserError(f"--z_file z has shape {z.shape}; this generator needs (N, {self.config.latent_dim})")
        return z.astype(np.float32)

    def z(self, indices: Sequence[int]) -> np.ndarray:
        """The pool rows `indices`, (len, latent_dim)."""
        indices = list(indices)
        if not indices or min(indices) < 0:
            raise UserError(f"indices {indices} must be a non-empty list of non-negative integers")
        if self.pool is not None:
            if max(indices) >= len(self.pool):
                raise UserError(f"index {max(indices)} is out of range: --z_file holds {len(self.pool)} z")
            return self.pool[indices]
        return z_pool(_SEED.value, max(indices) + 1, self.config)[indices]

    def images(self, z) -> np.ndarray:
        from dcgan_jax import generate, visualize
        z = np.asarray(z, np.float32).reshape(-1, self.config.latent_dim)
        return visualize.to_uint8(generate.generate(self.config, self.g_vars, z, _BATCH_SIZE.value))


def _sweep(mode: str) -> np.ndarray:
    from dcgan_jax import latent
    start, stop = _DEFAULT_RANGE[mode]
    start = start if _START.value is None else _START.value
    stop = stop if _STOP.value is None else _STOP.value
    return np.asarray(latent.interpolation_weights(_NUM_STEPS.value, start, stop))


def interpolate(ex: Explorer, indices: List[int]) -> Picture:
    """One row per pair of indices: G along the line (or great circle) between the two z."""
    from dcgan_jax import latent
    if len(indices) < 2 or len(indices) % 2:
        raise UserError(f"--mode=interpolate needs pairs of --indices (got {indices}), e.g. --indices=0,1,2,3")
    z = ex.z(indices)
    start, stop = _sweep("interpolate")[[0, -1]]
    rows = [ex.images(latent.interpolate(z[i], z[i + 1], _NUM_STEPS.value, method=_METHOD.value, start=start,
                                         stop=stop)) for i in range(0, len(z), 2)]
    return Picture(rows)


def walk(ex: Explorer, indices: List[int]) -> Picture:
    """A path through all indices; the grid has one row per segment, the GIF plays the whole path."""
    from dcgan_jax import latent
    if len(indices) < 2:
        raise UserError(f"--mode=walk needs at least 2 --indices (got {indices})")
    path = ex.images(latent.walk(ex.z(indices), _STEPS_BETWEEN.value, method=_METHOD.value))
    s = _STEPS_BETWEEN.value
    rows = [path[i * s:(i + 1) * s + 1] for i in range(len(indices) - 1)]
    return Picture(rows, frames=list(path))


def vary_dim(ex: Explorer, indices: List[int]) -> Picture:
    """One row per index: coordinate --dim swept from --start to --stop."""
    from dcgan_jax import latent
    if not 0 <= _DIM.value < ex.config.latent_dim:
        raise UserError(f"--dim={_DIM.value} must be in [0, {ex.config.latent_dim})")
    values = _sweep("vary_dim")
    return Picture([ex.images(latent.vary_dimension(z, _DIM.value, values)) for z in ex.z(indices)])


def vary_all(ex: Explorer, indices: List[int]) -> Picture:
    """One row per z coordinate of the first index's z, each swept from --start to --stop."""
    from dcgan_jax import latent
    grid = np.asarray(latent.vary_all(ex.z(indices[:1])[0], _sweep("vary_all")))  # (latent_dim, num_steps, d)
    grid = grid[:_MAX_DIMS.value or None]
    images = ex.images(grid.reshape(-1, grid.shape[-1]))
    return Picture(list(images.reshape(grid.shape[:2] + images.shape[1:])))


def arithmetic(ex: Explorer, indices: List[int]) -> Picture:
    """Rows a, b, c (exemplars, then G(mean z)), then G(mean a - mean b + mean c) and noisy variants around it."""
    import jax
    from dcgan_jax import latent
    groups = [ex.z(g) for g in parse_groups(_GROUPS.value, 3)]
    rows = [np.concatenate([ex.images(g), ex.images(g.mean(axis=0))]) for g in groups]
    result = np.asarray(latent.vector_arithmetic(*groups))
    noisy = latent.add_noise(jax.random.PRNGKey(_SEED.value), result, _NUM_NOISE.value, _NOISE_SCALE.value)
    rows.append(np.concatenate([ex.images(result), ex.images(noisy)]))
    return Picture(rows)


def turn(ex: Explorer, indices: List[int]) -> Picture:
    """One row per index: z + t (mean a - mean b) for t from --start to --stop (the paper's turn vector)."""
    from dcgan_jax import latent
    group_a, group_b = (ex.z(g) for g in parse_groups(_GROUPS.value, 2))
    vector = latent.direction(group_a, group_b)
    return Picture([ex.images(latent.move_along(z, vector, _sweep("turn"))) for z in ex.z(indices)])


def _image_mask(size: int) -> np.ndarray:
    if _MASK_FILE.value:
        try:
            from PIL import Image
            mask = (np.load(_MASK_FILE.value) if _MASK_FILE.value.endswith(".npy")
                    else np.asarray(Image.open(_MASK_FILE.value).convert("L")))
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read --mask_file={_MASK_FILE.value!r}: {e}") from None
        if mask.shape != (size, size):
            raise UserError(f"--mask_file is {mask.shape[1]}x{mask.shape[0]}; the generator makes {size}x{size}")
        return mask != 0
    box = parse_ints(_MASK_BOX.value, "mask_box")
    if len(box) != 4 or not (0 <= box[0] < box[2] <= size and 0 <= box[1] < box[3] <= size):
        raise UserError(f"--mask_box={_MASK_BOX.value!r} must be 'top,left,bottom,right' with 0 <= top < bottom <= "
                        f"{size} and 0 <= left < right <= {size}")
    mask = np.zeros((size, size), bool)
    mask[box[0]:box[2], box[1]:box[3]] = True
    return mask


def drop_filters(ex: Explorer, indices: List[int]) -> Picture:
    """Row 1: samples; row 2: the same z with the chosen (or mask-found) feature maps of --layer zeroed."""
    from dcgan_jax import generate, visualize
    try:
        layer = generate.check_layer(ex.config, _LAYER.value)
        maps = parse_ints(_MAPS.value, "maps")
        if not maps:
            if not (_MASK_BOX.value or _MASK_FILE.value):
                raise UserError("--mode=drop_filters needs --maps, --mask_box or --mask_file")
            probe_z = z_pool(_SEED.value, _PROBE_SAMPLES.value, ex.config)
            order, scores = generate.maps_inside_mask(ex.config, ex.g_vars, probe_z, _image_mask(ex.config.image_size),
                                                      layer, _PROBE.value, _BATCH_SIZE.value, _SEED.value)
            maps = [int(m) for m in order if scores[m] > 0][:_MAX_MAPS.value or None]
            if not maps:
                raise UserError("no feature map fires more inside the mask than outside it; try another region")
        z = ex.z(indices)
        dropped = generate.generate_without(ex.config, ex.g_vars, z, layer, maps, _BATCH_SIZE.value)
    except ValueError as e:
        raise UserError(str(e)) from None
    print(f"layer {layer}: dropped {len(maps)} of {generate.layer_widths(ex.config)[layer]} feature maps: "
          f"{','.join(map(str, maps))}")
    return Picture([ex.images(z), visualize.to_uint8(dropped)])


def nearest(ex: Explorer, indices: List[int]) -> Picture:
    """Per sample: the sample | its --k nearest training images in pixel space | in D-feature space."""
    from dcgan_jax import input_pipeline, neighbors
    if _K.value < 1:
        raise UserError(f"--k={_K.value} must be >= 1")
    samples = ex.images(ex.z(indices))
    source = input_pipeline.load_source(ex.config, _SPLIT.value)
    limit = _MAX_TRAIN.value or None
    if _K.value > min(len(source), limit or len(source)):
        raise UserError(f"--k={_K.value} is more than the {min(len(source), limit or len(source))} images searched")
    spaces = [neighbors.pixel_features, neighbors.discriminator_featurizer(ex.config, ex.d_vars, _BATCH_SIZE.value)]
    found = [neighbors.nearest_in_source(samples, source, f, _K.value, limit) for f in spaces]
    blank = np.full_like(samples[:1], 255)
    rows = []
    for r, sample_image in enumerate(samples):
        cells = [sample_image[None], blank]
        for (idx, _), space_blank in zip(found, (blank, None)):
            cells.append(input_pipeline.read_batch(source, idx[r]))
            if space_blank is not None:
                cells.append(space_blank)
        rows.append(np.concatenate(cells))
    for name, (idx, dist) in zip(("pixels", "D features"), found):
        print(f"nearest in {name}: mean distance {dist[:, 0].mean():.4g}; indices {idx[:, 0].tolist()}")
    return Picture(rows)


def training_gif(workdir: str) -> Picture:
    """The fixed-z sample grids saved during training, captioned with their step (PNG: up to 8 of them)."""
    from dcgan_jax import visualize
    frames = visualize.training_progress_frames(workdir)
    if not frames:
        raise UserError(f"no sample grids in {os.path.join(workdir, 'samples')}: train first")
    shown = np.unique(np.linspace(0, len(frames) - 1, min(8, len(frames))).round().astype(int))
    return Picture([np.stack([frames[i] for i in shown])], frames=frames)


_MODE_FUNCTIONS = {"interpolate": interpolate, "walk": walk, "vary_dim": vary_dim, "vary_all": vary_all,
                   "arithmetic": arithmetic, "turn": turn, "drop_filters": drop_filters, "nearest": nearest}


def columns_as_frames(rows: List[np.ndarray]) -> List[np.ndarray]:
    """Frame j stacks the j-th image of every row vertically (short rows repeat their last image)."""
    from dcgan_jax import visualize
    width = max(len(r) for r in rows)
    return [visualize.make_grid(np.stack([r[min(j, len(r) - 1)] for r in rows]), num_cols=1) for j in range(width)]


def write(picture: Picture, output: str) -> None:
    from dcgan_jax import visualize
    zoom = lambda image: visualize.zoom(image, _ZOOM.value)
    if output.lower().endswith(".png"):
        visualize.save_image(output, zoom(visualize.table_grid(picture.rows)))
    else:
        frames = picture.frames if picture.frames is not None else columns_as_frames(picture.rows)
        visualize.save_gif(output, [zoom(f) for f in frames], _DURATION.value, levels=_GIF_LEVELS.value)


def _check_flags() -> str:
    mode, output = _MODE.value, _OUTPUT.value
    if mode not in MODES:
        raise UserError(f"--mode={mode!r} is not a mode; use one of {', '.join(MODES)}")
    if os.path.splitext(output)[1].lower() not in (".png", ".gif"):
        raise UserError(f"--output={output!r} must end in .png (grid) or .gif (animation)")
    for name, value, low in (("num_steps", _NUM_STEPS.value, 1), ("steps_between", _STEPS_BETWEEN.value, 1),
                             ("batch_size", _BATCH_SIZE.value, 1), ("zoom", _ZOOM.value, 1),
                             ("duration_ms", _DURATION.value, 1), ("num_noise", _NUM_NOISE.value, 0),
                             ("probe_samples", _PROBE_SAMPLES.value, 1), ("max_maps", _MAX_MAPS.value, 0),
                             ("max_train_images", _MAX_TRAIN.value, 0), ("max_dims", _MAX_DIMS.value, 0)):
        if value < low:
            raise UserError(f"--{name}={value} must be >= {low}")
    if _GIF_LEVELS.value and not 2 <= _GIF_LEVELS.value <= 256:
        raise UserError(f"--gif_levels={_GIF_LEVELS.value} must be 0 (off) or in [2, 256]")
    return mode


@cli.run_main
def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    mode = _check_flags()
    from absl import logging
    if logging.get_verbosity() <= logging.WARNING:  # orbax warns that the read-only checkpoint dir is read-only
        logging.set_verbosity(logging.ERROR)
    if mode == "training_gif":
        picture = training_gif(_WORKDIR.value)
    else:
        if mode == "nearest":  # reads the training data, which may come through TensorFlow
            cli.quiet_tensorflow()
        explorer = Explorer(_WORKDIR.value, _STEP.value)
        indices = parse_ints(_INDICES.value or _DEFAULT_INDICES.get(mode, "0"), "indices")
        picture = _MODE_FUNCTIONS[mode](explorer, indices)
    write(picture, _OUTPUT.value)
    print(f"wrote {mode} to {_OUTPUT.value}")


if __name__ == "__main__":
    cli.parse_flags_or_exit(sys.argv)
    app.run(main, argv=sys.argv[:1])
