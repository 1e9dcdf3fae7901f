"""The table of random-stream tags: every tag distinct, so no two streams draw the same numbers."""

from dcgan_jax import rng_tags


def _tags():
    return {name: value for name, value in vars(rng_tags).items() if name.isupper()}


def test_every_tag_is_a_distinct_integer():
    tags = _tags()
    assert len(tags) >= 10
    assert all(isinstance(v, int) for v in tags.values())
    assert len(set(tags.values())) == len(tags), tags


def test_the_step_tags_lie_above_any_example_index():
    """Inside the step, z of example i is fold_in(step key, i): the step's own tags must not be an
    example index of any batch this project trains with."""
    for name in ("D_TARGETS", "INSTANCE_NOISE", "FAKE_CLASSES"):
        assert getattr(rng_tags, name) >= 2**31 - 2**16
