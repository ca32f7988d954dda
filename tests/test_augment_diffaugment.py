"""DiffAugment (Zhao, Liu, Lin, Zhu, Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training"): each transform against a per-pixel computation with the drawn parameters, the draws'
ranges, p, the policy check, and gradients through the augmentation."""
from __future__ import annotations

import pytest
import torch

from lightning_stylegan import registry
from lightning_stylegan.augmentations import diffaugment as da
from lightning_stylegan.augmentations.diffaugment import DiffAugment
from lightning_stylegan.plugin_options import bind_options


def images(n=3, c=3, h=6, w=5, seed=1, dtype=torch.float32):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def test_the_entry_point_is_the_class_and_its_options_bind_from_json():
    assert registry.load("augmentation", "diffaugment") is DiffAugment
    options = bind_options(DiffAugment, {"policy": "color", "saturation": [0, 1], "p": 0.5},
                           key="model.augment_options", label="diffaugment")
    augment = DiffAugment(**options)
    assert augment.policy == ("color",) and augment.saturation == (0.0, 1.0) and float(augment.p) == 0.5
    assert DiffAugment.adaptive is False and DiffAugment().p.dtype == torch.float32


def test_color_transforms_are_the_closed_forms_per_pixel():
    x = images()
    n, c, h, w = x.shape
    b, s, k = torch.tensor([-0.4, 0.1, 0.3]), torch.tensor([0.0, 0.7, 1.9]), torch.tensor([0.5, 1.2, 1.4])
    got_b, got_s, got_c = da.brightness(x, b), da.saturation(x, s), da.contrast(x, k)
    for i in range(n):
        image_mean = sum(float(x[i, ch, y, z]) for ch in range(c) for y in range(h) for z in range(w)) / (c * h * w)
        for y in range(h):
            for z in range(w):
                pixel_mean = sum(float(x[i, ch, y, z]) for ch in range(c)) / c
                for ch in range(c):
                    v = float(x[i, ch, y, z])
                    assert float(got_b[i, ch, y, z]) == pytest.approx(v + float(b[i]), abs=1e-6)
                    assert float(got_s[i, ch, y, z]) == pytest.approx(pixel_mean + (v - pixel_mean) * float(s[i]), abs=1e-6)
                    assert float(got_c[i, ch, y, z]) == pytest.approx(image_mean + (v - image_mean) * float(k[i]), abs=1e-6)


def test_saturation_of_one_channel_is_the_identity():
    x = images(c=1)
    assert torch.equal(da.saturation(x, torch.tensor([0.0, 0.5, 2.0])), x)


@pytest.mark.parametrize("shift", [[[0, 0], [2, -1], [-6, 0]], [[1, 1], [-1, 4], [5, -5]]])
def test_translation_shifts_each_image_with_zeros_entering(shift):
    x = images()
    n, c, h, w = x.shape
    got = da.translation(x, torch.tensor(shift))
    for i, (dy, dx) in enumerate(shift):
        for ch in range(c):
            for y in range(h):
                for z in range(w):
                    source_inside = 0 <= y - dy < h and 0 <= z - dx < w
                    expected = float(x[i, ch, y - dy, z - dx]) if source_inside else 0.0
                    assert float(got[i, ch, y, z]) == expected, (i, ch, y, z)


def test_cutout_zeroes_the_square_at_the_corner_clipped_at_the_border():
    x = images(h=8, w=8) + 3  # no zeros of its own
    corners, size = [[2, 3], [-2, 5], [6, -1]], (4, 4)
    got = da.cutout(x, torch.tensor(corners), size)
    for i, (top, left) in enumerate(corners):
        for y in range(8):
            for z in range(8):
                in_square = top <= y < top + size[0] and left <= z < left + size[1]
                for ch in range(3):
                    assert float(got[i, ch, y, z]) == (0.0 if in_square else float(x[i, ch, y, z]))
    assert int((got[0] == 0).sum()) == 3 * 16  # the square inside the image: the whole 4x4 of every channel


def test_the_draws_are_per_sample_in_the_papers_ranges():
    augment = DiffAugment()
    torch.manual_seed(0)
    params = augment.draw(torch.zeros(4000, 3, 16, 16))
    for name, (low, high) in dict(brightness=(-0.5, 0.5), saturation=(0, 2), contrast=(0.5, 1.5)).items():
        value = params[name]
        assert value.min() >= low and value.max() < high and value.min() < low + 0.01 and value.max() > high - 0.01
        assert value.unique().numel() > 3900  # per sample
    assert augment.shift_limits(16, 16) == (2, 2) and augment.cutout_size(16, 16) == (8, 8)
    assert set(params["shift"].flatten().tolist()) == set(range(-2, 3))  # 1/8 of 16 pixels each way
    assert set(params["corner"].flatten().tolist()) == set(range(-4, 13))  # centre over [0, 16]
    assert params["apply"].all()  # p = 1
    assert augment.cutout_size(7, 7) == (4, 4) and augment.cutout_size(6, 6) == (3, 3)  # rounded
    torch.manual_seed(0)
    assert set(augment.draw(torch.zeros(2000, 1, 6, 6))["corner"].flatten().tolist()) == set(range(-1, 5))  # odd side: centre over [0, 6)


@pytest.mark.parametrize("policy", ["color,translation,cutout", "cutout,color", "translation"])
def test_forward_is_the_policy_with_the_draws_of_the_same_seed(policy):
    augment = DiffAugment(policy, p=0.5)
    x = images(n=64, h=8, w=8)
    torch.manual_seed(3)
    got = augment(x)
    torch.manual_seed(3)
    params = augment.draw(x)
    expected = x
    for name in policy.split(","):
        if name == "color":
            expected = da.contrast(da.saturation(da.brightness(expected, params["brightness"]),
                                                 params["saturation"]), params["contrast"])
        elif name == "translation":
            expected = da.translation(expected, params["shift"])
        else:
            expected = da.cutout(expected, params["corner"], (4, 4))
    apply = params["apply"]
    assert 10 < int(apply.sum()) < 54  # p = 0.5: some images augmented, some not
    assert torch.equal(got[apply], expected[apply]) and torch.equal(got[~apply], x[~apply])
    assert not torch.equal(expected[apply], x[apply])


def test_p_zero_is_the_identity_bit_for_bit():
    x = images()
    assert torch.equal(DiffAugment(p=0.0)(x), x)
    x.requires_grad_(True)
    DiffAugment(p=0.0)(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("policy, message", [("color,rotation", "'rotation'.*color, translation, cutout"),
                                             ("Color", "color, translation, cutout"), ("cutout,cutout", "twice")])
def test_an_unknown_or_repeated_transform_is_refused(policy, message):
    with pytest.raises(ValueError, match=message):
        DiffAugment(policy)


def test_gradcheck_and_second_order_in_float64():
    augment = DiffAugment(p=0.5)
    x = images(n=4, h=4, w=4, dtype=torch.float64).requires_grad_(True)

    def f(x):
        torch.manual_seed(5)  # the same draws at every evaluation
        return augment(x)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_a_finite_difference_gradient_flows_through_to_the_input():
    augment = DiffAugment()
    x = images(n=2, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    weights = images(n=2, h=8, w=8, seed=2, dtype=torch.float64)

    def loss(x):
        torch.manual_seed(7)
        return (augment(x).square() * weights).sum()  # nonlinear, so the gradient depends on x

    (grad,) = torch.autograd.grad(loss(x), x)
    assert grad.abs().sum() > 0
    direction, eps = images(n=2, h=8, w=8, seed=3, dtype=torch.float64), 1e-6
    with torch.no_grad():
        numeric = (loss(x + eps * direction) - loss(x - eps * direction)) / (2 * eps)
    assert float(numeric) == pytest.approx(float((grad * direction).sum()), rel=1e-6)
