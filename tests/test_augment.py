import numpy as np
import pytest

from aigbench.datasets.augment import BlurJPEG
from aigbench.errors import ConfigError
from aigbench.registry import PERTURBATIONS


@pytest.fixture
def image():
    return np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def test_probability_zero_is_identity(image):
    aug = BlurJPEG(0.0, 0.0, seed=0)
    assert all(aug(image) is image for _ in range(20))


def test_probability_one_always_blurs_then_compresses(image):
    aug = BlurJPEG(1.0, 1.0, blur_sigma=(1.0, 1.0), jpeg_quality=(50, 50), seed=0)
    expected = PERTURBATIONS.get("jpeg")(50)(PERTURBATIONS.get("blur")(1.0)(image))
    assert np.array_equal(aug(image), expected)


def test_rates_match_probabilities_and_seed_reproduces(image):
    aug = BlurJPEG(0.5, 0.0, blur_sigma=(1.0, 3.0), seed=3)
    changed = [not np.array_equal(aug(image), image) for _ in range(400)]
    assert 0.4 < np.mean(changed) < 0.6
    a, b = BlurJPEG(0.5, 0.5, seed=7), BlurJPEG(0.5, 0.5, seed=7)
    assert all(np.array_equal(a(image), b(image)) for _ in range(20))
    a.set_random_seed(11)
    b.set_random_seed(11)
    assert np.array_equal(a(image), b(image))


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"blur_prob": 1.5}, "--aug_blur_prob"),
        ({"blur_sigma": (3, 1)}, "--aug_blur_sigma"),
        ({"jpeg_quality": (0, 100)}, "--aug_jpeg_quality"),
    ],
)
def test_bad_settings_name_the_flag(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        BlurJPEG(**kwargs)
