"""D's training options (config.d_training): each changes the step as its docstring says, draws what the determinism
contract says, and keeps resume exact."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcgan_jax import config_fields, train
from dcgan_jax.errors import UserError
from dcgan_jax.training import d_training, losses, parallel, step
from dcgan_jax.training.state import create_train_state
from tests.helpers import digit_batches, max_abs_diff, run_steps, tiny_config


def _config(**tricks):
    config = tiny_config()
    config.d_training.update(tricks)
    return config


def _g(state):
    return {"params": state.g_params, "stats": state.g_batch_stats, "adam": state.g_opt_state}


def _d(state):
    return {"params": state.d_params, "stats": state.d_batch_stats, "adam": state.d_opt_state}


def _states_after_each_step(config, num_steps):
    """The state at init and after each of `num_steps` steps on one device: one run, its state
    copied to the host after every step (what `run_steps` on the first n batches ends with)."""
    runner = parallel.Parallel("pmap", jax.devices()[:1])
    train_step = runner.compile(
        step.make_train_step(
            config.model, config.optim, config.objective, config.d_training, config.batch_size
        )
    )
    states = [create_train_state(config.model, config.optim, config.seed)]
    device_state = runner.replicate(states[0])
    for batch in digit_batches(config, num_steps):
        device_state, _ = train_step(device_state, runner.shard_batch(np.asarray(batch)[None]))
        # a copy: the next step reuses (donates) the device buffers
        states.append(jax.tree.map(np.array, jax.device_get(runner.unreplicate(device_state))))
    return states


def test_pretraining_leaves_g_untouched_and_updates_d():
    states = _states_after_each_step(_config(pretrain_steps=2), 3)
    for before, after in zip(states[:2], states[1:3]):
        assert (
            max_abs_diff(_g(before), _g(after)) == 0.0
        )  # params, batchnorm statistics and Adam state
        assert max_abs_diff(_d(before)["params"], _d(after)["params"]) > 0
    assert (
        max_abs_diff(_g(states[2])["params"], _g(states[3])["params"]) > 0
    )  # joint updates from step 3 on


def test_with_k_d_steps_g_moves_once_per_k_d_updates():
    states = _states_after_each_step(_config(steps_per_g_step=3), 6)
    moved = [max_abs_diff(_g(a)["params"], _g(b)["params"]) > 0 for a, b in zip(states, states[1:])]
    assert moved == [False, False, True, False, False, True]
    assert all(
        max_abs_diff(_d(a)["params"], _d(b)["params"]) > 0 for a, b in zip(states, states[1:])
    )
    assert int(states[-1].g_opt_state[0].count) == 2 and int(states[-1].d_opt_state[0].count) == 6


@pytest.mark.parametrize(
    "p,k,expected", [(0, 1, "GGGGGG"), (2, 1, "--GGGG"), (0, 2, "-G-G-G"), (1, 3, "---G--")]
)
def test_g_update_schedule(p, k, expected):
    config = _config(pretrain_steps=p, steps_per_g_step=k)
    got = "".join(
        "G" if d_training.g_updates_at(config.d_training, jnp.int32(s)) else "-" for s in range(6)
    )
    assert got == expected


def test_label_noise_and_flips_draw_what_they_say():
    config = _config(label_noise=0.3, label_flip=0.2)
    config.objective.label_smoothing = 0.1
    ids = jnp.arange(20_000)
    real, fake = (
        np.asarray(t)
        for t in d_training.d_targets(
            config.d_training, config.objective.label_smoothing, jax.random.PRNGKey(5), ids
        )
    )
    real_side = lambda t: (t >= 0.6 - 1e-6) & (t <= 0.9 + 1e-6)  # noqa: E731  U[1 - s - n, 1 - s]
    fake_side = lambda t: (t >= 0) & (t <= 0.3 + 1e-6)  # noqa: E731            U[0, n]
    assert np.all(real_side(real) ^ fake_side(real)) and np.all(real_side(fake) ^ fake_side(fake))
    assert (
        abs(np.mean(fake_side(real)) - 0.2) < 0.01 and abs(np.mean(real_side(fake)) - 0.2) < 0.01
    )  # flips
    kept_real = real[real_side(real)]  # uniform over its interval: mean and std of U[0.6, 0.9]
    assert abs(kept_real.mean() - 0.75) < 0.005 and abs(kept_real.std() - 0.3 / np.sqrt(12)) < 0.005
    # An example's targets depend on its index only, not on the batch it is drawn with (any device split).
    part = d_training.d_targets(
        config.d_training, config.objective.label_smoothing, jax.random.PRNGKey(5), ids[7:11]
    )
    np.testing.assert_array_equal(np.asarray(part[0]), real[7:11])


def test_label_noise_off_gives_the_constant_targets():
    assert d_training.d_targets(
        _config().d_training,
        _config().objective.label_smoothing,
        jax.random.PRNGKey(0),
        jnp.arange(4),
    ) == (None, None)


def test_d_loss_with_per_example_targets_matches_the_formula():
    rng = np.random.default_rng(0)
    real_logits, fake_logits = rng.normal(size=8), rng.normal(size=8)
    real_t, fake_t = rng.uniform(0.7, 1.0, 8), rng.uniform(0.0, 0.3, 8)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    bce = lambda x, t: -np.mean(t * np.log(sig(x)) + (1 - t) * np.log(1 - sig(x)))  # noqa: E731
    got = losses.discriminator_loss(
        jnp.asarray(real_logits),
        jnp.asarray(fake_logits),
        "non_saturating",
        0.0,
        jnp.asarray(real_t),
        jnp.asarray(fake_t),
    )
    np.testing.assert_allclose(
        float(got), bce(real_logits, real_t) + bce(fake_logits, fake_t), rtol=1e-5
    )
    got = losses.discriminator_loss(
        jnp.asarray(real_logits),
        jnp.asarray(fake_logits),
        "least_squares",
        0.0,
        jnp.asarray(real_t),
        jnp.asarray(fake_t),
    )
    want = 0.5 * np.mean((real_logits - real_t) ** 2) + 0.5 * np.mean((fake_logits - fake_t) ** 2)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_instance_noise_std_decays_linearly_and_the_noise_has_it():
    config = _config(instance_noise=0.2, instance_noise_decay_steps=100)
    stds = [
        float(d_training.instance_noise_std(config.d_training, jnp.int32(s)))
        for s in (0, 25, 100, 150)
    ]
    np.testing.assert_allclose(stds, [0.2, 0.15, 0.0, 0.0], atol=1e-7)
    real, fake = jnp.zeros((64, 8, 8, 1)), jnp.ones((64, 8, 8, 1))
    noisy_real, noisy_fake = d_training.add_instance_noise(
        config.d_training, jax.random.PRNGKey(1), jnp.int32(25), jnp.arange(64), real, fake
    )
    assert (
        abs(float(jnp.std(noisy_real)) - 0.15) < 0.01
        and abs(float(jnp.std(noisy_fake - 1)) - 0.15) < 0.01
    )
    assert abs(float(jnp.mean(noisy_real))) < 0.01
    assert d_training.add_instance_noise(
        _config().d_training, jax.random.PRNGKey(1), jnp.int32(0), jnp.arange(64), real, fake
    ) == (real, fake)


@pytest.fixture(scope="module")
def plain_run():
    """(batches, final state, metrics) of 2 steps without any option, on one device."""
    plain = _config()
    batches = digit_batches(plain, 2)
    return (batches, *run_steps(plain, batches, jax.devices()[:1]))


@pytest.mark.parametrize(
    "tricks", [dict(label_noise=0.2, label_flip=0.1), dict(instance_noise=0.1)]
)
def test_label_and_noise_options_change_the_step(plain_run, tricks):
    batches, base, base_metrics = plain_run
    changed, metrics = run_steps(_config(**tricks), batches, jax.devices()[:1])
    assert max_abs_diff(base.d_params, changed.d_params) > 0
    assert metrics[0]["d_loss"] != base_metrics[0]["d_loss"]


def test_resume_is_exact_with_every_option_on(tmp_path):
    def config(steps):
        c = _config(
            pretrain_steps=1,
            steps_per_g_step=2,
            label_noise=0.2,
            label_flip=0.1,
            instance_noise=0.1,
            instance_noise_decay_steps=5,
        )
        c.optim.ema_decay, c.num_train_steps, c.checkpoint_every_steps = 0.9, steps, 1
        c.num_fixed_samples = 0
        return c

    straight = train.train(config(5), str(tmp_path / "straight"))
    train.train(config(2), str(tmp_path / "resumed"))
    resumed = train.train(config(5), str(tmp_path / "resumed"))
    assert max_abs_diff(straight, resumed) == 0.0


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("label_flip", 0.5, "d_training.label_flip=0.5 must be in [0, 0.5)"),
        ("label_noise", 1.0, "d_training.label_noise=1.0 must be in [0, 1)"),
        (
            "steps_per_g_step",
            0,
            "d_training.steps_per_g_step=0 must be an integer in [1, 2147483647]",
        ),
        (
            "pretrain_steps",
            -1,
            "d_training.pretrain_steps=-1 must be an integer in [0, 2147483647]",
        ),
        ("instance_noise", -0.1, "d_training.instance_noise=-0.1 must be >= 0"),
    ],
)
def test_bad_values_are_refused(field, value, fragment):
    config = _config()
    with config.unlocked():
        config.d_training[field] = value
    with pytest.raises(
        UserError, match=fragment.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        config_fields.validate(config)


def test_label_tricks_are_refused_with_the_hinge_loss():
    config = _config(label_flip=0.1)
    config.objective.loss = "hinge"
    with pytest.raises(UserError, match="not objective.loss='hinge'"):
        config_fields.validate(config)
