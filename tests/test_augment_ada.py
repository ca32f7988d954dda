"""Tests of the ``ada`` augmentation plugin: Karras et al. 2020, Training Generative Adversarial
Networks with Limited Data (StyleGAN2-ADA), Appendix B.

Every op is checked against an independent computation -- an explicit loop over pixels or a
closed form written out here -- with the op's random parameters re-drawn in the test from the
same seed, in the order of NVlabs' pipeline (each op: its parameter, then one uniform per image
for "does it apply"; hue and saturation are skipped on grey images).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lightning_stylegan import registry
from lightning_stylegan.augmentations.ada import AdaptiveAugment
from lightning_stylegan.augmentations.ada_color import band_filters
from lightning_stylegan.augmentations.ada_geometry import SYM6

ALL_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast",
           "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout")


def only(op: str, p: float = 1.0, **kwargs) -> AdaptiveAugment:
    """The pipeline with every op off but ``op`` (multiplier 1)."""
    multipliers = {name: 0 for name in ALL_OPS}
    multipliers[op] = 1
    return AdaptiveAugment("bgcfnc", p=p, **{**multipliers, **kwargs})


def images(n=4, c=3, size=16, seed=0, dtype=torch.float32):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def applies(n, p):
    """One uniform per image: whether the op applies."""
    return torch.rand(n) < p


# ------------------------------------------------------------------------------------------------
# Presets and options
# ------------------------------------------------------------------------------------------------

def test_presets_are_nvlabs_augpipe_specs():
    """Appendix B / NVlabs train.py --augpipe: the ops each preset turns on."""
    blit, geom = {"xflip", "rotate90", "xint"}, {"scale", "rotate", "aniso", "xfrac"}
    color = {"brightness", "contrast", "lumaflip", "hue", "saturation"}
    expected = {"blit": blit, "geom": geom, "color": color, "filter": {"imgfilter"}, "noise": {"noise"},
                "cutout": {"cutout"}, "bg": blit | geom, "bgc": blit | geom | color,
                "bgcf": blit | geom | color | {"imgfilter"}, "bgcfn": blit | geom | color | {"imgfilter", "noise"},
                "bgcfnc": set(ALL_OPS)}
    for preset, on in expected.items():
        aug = AdaptiveAugment(preset)
        assert {op for op in ALL_OPS if getattr(aug, op) > 0} == on, preset
        assert all(getattr(aug, op) in (0.0, 1.0) for op in ALL_OPS)
    assert AdaptiveAugment().preset == "bgc"
    aug = AdaptiveAugment("bgc", xflip=0, hue=0.5, noise=2)
    assert (aug.xflip, aug.hue, aug.noise, aug.rotate) == (0.0, 0.5, 2.0, 1.0)


def test_bad_options_raise_clear_errors():
    with pytest.raises(ValueError, match=r"unknown preset 'bgcc'.*did you mean 'bgc'.*blit, geom"):
        AdaptiveAugment("bgcc")
    with pytest.raises(ValueError, match="multiplier rotate must be >= 0"):
        AdaptiveAugment("bgc", rotate=-1)
    with pytest.raises(ValueError, match="imgfilter_bands needs 4"):
        AdaptiveAugment("bgcf", imgfilter_bands=(1, 1, 1))
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        AdaptiveAugment("bgc", p=1.5)
    with pytest.raises(ValueError, match="1 .grey., 3 .RGB. or 4 .RGBA. channels, got 2"):
        AdaptiveAugment("color", p=0.5)(images(c=2))
    with pytest.raises(ValueError, match="imgfilter needs images larger than 21 pixels"):
        AdaptiveAugment("filter", p=0.5)(images(size=16))
    AdaptiveAugment("bg", p=0.5)(images(c=2))  # geometric ops take any channel count


def test_plugin_registration_state_and_options():
    assert registry.load("augmentation", "ada") is AdaptiveAugment
    aug = AdaptiveAugment("bgc", p=0.25)
    assert AdaptiveAugment.adaptive and AdaptiveAugment.description
    assert list(aug.state_dict()) == ["p"] and aug.state_dict()["p"].dtype == torch.float32
    other = AdaptiveAugment("bgc")
    other.load_state_dict(aug.state_dict())
    assert float(other.p) == 0.25
    from lightning_stylegan.plugin_options import bind_options
    bound = bind_options(AdaptiveAugment, {"preset": "bg", "xflip": "0.5", "imgfilter_bands": [1, 0, 0, 1]},
                         key="model.augment_options", label="ada")
    assert bound["xflip"] == 0.5 and AdaptiveAugment(**bound).imgfilter_bands == [1.0, 0.0, 0.0, 1.0]


# ------------------------------------------------------------------------------------------------
# p, determinism, dtypes
# ------------------------------------------------------------------------------------------------

def test_p_zero_is_the_identity_and_draws_nothing():
    x = images()
    for aug in (AdaptiveAugment("bgcfnc"), AdaptiveAugment("bgc", p=0.7)):
        aug.p.fill_(0)
        torch.manual_seed(1)
        out = aug(x)
        assert out is x and torch.equal(out, images())
        after = torch.rand(3)
        torch.manual_seed(1)
        assert torch.equal(after, torch.rand(3))


def test_fixed_seed_is_deterministic_and_seeds_differ():
    aug, x = AdaptiveAugment("bgc", p=0.8), images(n=6)
    torch.manual_seed(7)
    a = aug(x)
    torch.manual_seed(7)
    b = aug(x)
    torch.manual_seed(8)
    c = aug(x)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_p_one_changes_every_image_with_bgc():
    """At p = 1 every op of bgc applies to every image (the continuous ones always change it)."""
    x = images(n=16)
    torch.manual_seed(0)
    out = AdaptiveAugment("bgc", p=1.0)(x)
    assert ((out - x).flatten(1).abs().amax(dim=1) > 1e-2).all()


def test_bf16_autocast_and_bf16_input():
    aug, x = AdaptiveAugment("bgc", p=1.0), images()
    torch.manual_seed(3)
    reference = aug(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        torch.manual_seed(3)
        out = aug(x)
    assert out.dtype == torch.float32 and torch.equal(out, reference)  # the pipeline runs in float32
    torch.manual_seed(3)
    half = aug(x.bfloat16())
    assert half.dtype == torch.bfloat16 and torch.allclose(half.float(), reference, atol=0.05)


# ------------------------------------------------------------------------------------------------
# Pixel blitting: explicit index loops
# ------------------------------------------------------------------------------------------------

def reflect(i: int, size: int) -> int:
    """Index of a reflection padding that does not repeat the edge pixel."""
    if i < 0:
        return -i
    if i > size - 1:
        return 2 * (size - 1) - i
    return i


def mirrored(img):
    h, w = img.shape[-2:]
    out = torch.empty_like(img)
    for y in range(h):
        for x in range(w):
            out[..., y, x] = img[..., y, w - 1 - x]
    return out


def quarter_turn(img):
    """Output pixel (x, y) reads input (-y, x) about the centre: out[y][x] = in[x][W - 1 - y]."""
    h, w = img.shape[-2:]
    out = torch.empty_like(img)
    for y in range(h):
        for x in range(w):
            out[..., y, x] = img[..., x, w - 1 - y]
    return out


def shifted(img, tx: int, ty: int):
    """The content moved by (tx, ty); the uncovered border is the reflection of the image."""
    h, w = img.shape[-2:]
    out = torch.empty_like(img)
    for y in range(h):
        for x in range(w):
            out[..., y, x] = img[..., reflect(y - ty, h), reflect(x - tx, w)]
    return out


def flip_blur(img, axis: int):
    """The filter a reversed axis gets, as in NVlabs' pipeline: the image is up-sampled with sym6,
    mirrored and down-sampled with sym6 again; sym6 is not symmetric, so the pair no longer
    reconstructs perfectly and the mirrored axis is filtered by the even phase of 2 (f * f) --
    the convolution of the filter with itself instead of its autocorrelation (which would give
    the unit impulse): a ~0.1 px shift and a slight loss near Nyquist. Reflection at the border.
    ``axis`` -1 is x, -2 is y."""
    f = np.asarray(SYM6) / sum(SYM6)
    even = torch.tensor(2 * np.convolve(f, f)[0::2], dtype=img.dtype)
    size = img.shape[axis]
    moved = img.movedim(axis, -1)
    out = torch.zeros_like(moved)
    for q in range(size):
        for j in range(len(even)):
            out[..., q] += even[j] * moved[..., reflect(q + j - 5, size)]
    return out.movedim(-1, axis)


def test_flip_blur_is_not_the_identity():
    """Keeps the x-flip / rotate90 tests below able to tell a mirrored image from a filtered one."""
    x = images(n=1)
    assert 0.05 < (flip_blur(x, -1) - x).abs().max() < 0.5


@pytest.mark.parametrize("p", [1.0, 0.5])
def test_xflip_mirrors_the_drawn_images(p):
    """x-flip: each image mirrored with probability p / 2 (a flip drawn in {0, 1}, applied with p),
    filtered along x by the sym6 mismatch (``flip_blur``); the others returned unchanged."""
    n, x = 12, images(n=12)
    torch.manual_seed(11)
    out = only("xflip", p)(x)
    torch.manual_seed(11)
    flip = torch.floor(torch.rand(n) * 2) * applies(n, p)
    assert 0 < flip.sum() < n
    for i in range(n):
        expected = flip_blur(mirrored(x[i]), -1) if flip[i] else x[i]
        torch.testing.assert_close(out[i], expected, atol=2e-5, rtol=0)


SEED_ALL_QUARTERS = 13  # 12 images drawing all four quarter-turn counts


def test_rotate90_rotates_by_the_drawn_quarter_turns():
    """Quarter turns: the exact rotation, each axis that comes out reversed filtered as in
    ``flip_blur`` (y after one turn, both after two, x after three)."""
    n, x = 12, images(n=12)
    torch.manual_seed(SEED_ALL_QUARTERS)
    out = only("rotate90")(x)
    torch.manual_seed(SEED_ALL_QUARTERS)
    quarters = (torch.floor(torch.rand(n) * 4) * applies(n, 1.0)).int()
    assert len(set(quarters.tolist())) == 4
    reversed_axes = {0: (), 1: (-2,), 2: (-1, -2), 3: (-1,)}
    for i in range(n):
        expected = x[i]
        for _ in range(int(quarters[i])):
            expected = quarter_turn(expected)
        for axis in reversed_axes[int(quarters[i])]:
            expected = flip_blur(expected, axis)
        torch.testing.assert_close(out[i], expected, atol=2e-5, rtol=0)


def test_xint_translates_by_whole_pixels_with_reflection():
    n, size, x = 8, 16, images(n=8)
    torch.manual_seed(13)
    out = only("xint")(x)
    torch.manual_seed(13)
    t = (torch.rand(n, 2) * 2 - 1) * 0.125 * applies(n, 1.0).reshape(n, 1)
    shifts = torch.round(t * size).int()
    assert shifts.abs().max() == 2 and (shifts != 0).any(dim=1).all()
    for i in range(n):
        expected = shifted(x[i], int(shifts[i, 0]), int(shifts[i, 1]))
        torch.testing.assert_close(out[i], expected, atol=2e-5, rtol=0)


def test_blit_ops_compose_in_order_flip_rotate_translate():
    """The composed matrix is applied once: the result is translate(rotate(flip(image))), each axis
    that ends up reversed filtered as in ``flip_blur`` (on the interior, away from reflections)."""
    n, size, x = 6, 32, images(n=6, size=32)
    torch.manual_seed(14)
    out = AdaptiveAugment("blit", p=1.0)(x)
    torch.manual_seed(14)
    flip = torch.floor(torch.rand(n) * 2) * applies(n, 1.0)
    quarters = (torch.floor(torch.rand(n) * 4) * applies(n, 1.0)).int()
    shifts = torch.round((torch.rand(n, 2) * 2 - 1) * 0.125 * applies(n, 1.0).reshape(n, 1) * size).int()
    assert flip.any() and (quarters % 2 == 1).any() and (shifts != 0).all(dim=1).any()
    inner = slice(11, size - 11)  # 4 px of shift + 6 px of filter reach away from the border
    for i in range(n):
        expected = mirrored(x[i]) if flip[i] else x[i]
        for _ in range(int(quarters[i])):
            expected = quarter_turn(expected)
        # Output axis a reads the input axis where column a of the linear part (flip, then turn)
        # is non-zero; a negative entry means that axis comes out reversed.
        linear = np.diag([1 - 2 * float(flip[i]), 1]) @ rotation(math.pi / 2 * int(quarters[i]))[:2, :2]
        for axis, column in ((-1, linear[:, 0]), (-2, linear[:, 1])):
            if column.sum() < -0.5:
                expected = flip_blur(expected, axis)
        expected = shifted(expected, int(shifts[i, 0]), int(shifts[i, 1]))
        torch.testing.assert_close(out[i, :, inner, inner], expected[:, inner, inner], atol=3e-5, rtol=0)


# ------------------------------------------------------------------------------------------------
# General geometric transforms
# ------------------------------------------------------------------------------------------------

def rotation(theta):
    return np.array([[math.cos(theta), -math.sin(theta), 0], [math.sin(theta), math.cos(theta), 0], [0, 0, 1]])


def diag(sx, sy):
    return np.diag([sx, sy, 1.0])


def shift(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])


@pytest.mark.parametrize("p", [1.0, 0.7])
def test_geometry_matrix_is_the_product_of_the_inverse_ops_in_order(p):
    """G_inv (output pixel -> input pixel) = flip^-1 rot90^-1 xint^-1 scale^-1 rot^-1 aniso^-1 rot^-1
    xfrac^-1, each op applied with its probability; the two rotations each with 1 - sqrt(1 - p)."""
    n, h, w = 6, 12, 20
    aug = AdaptiveAugment("bg", p=p)
    torch.manual_seed(15)
    got = aug.geometry_matrix(n, h, w, "cpu").double().numpy()
    torch.manual_seed(15)
    flip = (torch.floor(torch.rand(n) * 2) * applies(n, p)).numpy()
    quarters = (torch.floor(torch.rand(n) * 4) * applies(n, p)).numpy()
    xint = ((torch.rand(n, 2) * 2 - 1) * 0.125 * applies(n, p).reshape(n, 1)).numpy()
    s = torch.exp2(torch.randn(n) * 0.2)
    s = torch.where(applies(n, p), s, torch.ones(n)).numpy()
    p_rot = 1 - math.sqrt(1 - p)
    pre = (torch.rand(n) * 2 - 1) * math.pi
    pre = (pre * applies(n, p_rot)).numpy()
    a = torch.exp2(torch.randn(n) * 0.2)
    a = torch.where(applies(n, p), a, torch.ones(n)).numpy()
    post = (torch.rand(n) * 2 - 1) * math.pi
    post = (post * applies(n, p_rot)).numpy()
    frac = (torch.randn(n, 2) * 0.125 * applies(n, p).reshape(n, 1)).numpy()
    for i in range(n):
        forward = [diag(1 - 2 * flip[i], 1), rotation(-math.pi / 2 * quarters[i]),
                   shift(round(xint[i, 0] * w), round(xint[i, 1] * h)), diag(s[i], s[i]),
                   rotation(-pre[i]), diag(a[i], 1 / a[i]), rotation(-post[i]), shift(frac[i, 0] * w, frac[i, 1] * h)]
        expected = np.eye(3)
        for op in forward:
            expected = expected @ np.linalg.inv(op)
        np.testing.assert_allclose(got[i], expected, atol=2e-5)
    if p == 1:
        assert (pre != 0).all() and (post != 0).all()
    else:  # each rotation with 1 - sqrt(0.3) = 0.45
        assert (pre != 0).any() and (post != 0).any() and (pre * post == 0).any()


def test_geom_keeps_a_constant_image_constant():
    """The low-pass filters have unit DC gain and the reflection padding covers every pixel read,
    so scaling / rotation / anisotropy / fractional translation leave a flat image flat."""
    x = torch.full((16, 3, 16, 16), 0.375)
    torch.manual_seed(16)
    out = AdaptiveAugment("geom", p=1.0)(x)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_geometric_ops_only_move_content():
    """A general transform resamples: the output stays within the input's range (up to the small
    overshoot of the wavelet filter) and is not the input."""
    x = images(n=8)
    torch.manual_seed(17)
    out = AdaptiveAugment("geom", p=1.0)(x)
    assert out.abs().max() < 1.5 and ((out - x).flatten(1).abs().amax(1) > 0.1).all()


# ------------------------------------------------------------------------------------------------
# Colour: closed forms per pixel
# ------------------------------------------------------------------------------------------------

def per_pixel(img, fn):
    """``fn`` applied to the colour vector of every pixel of img [C, H, W] (explicit loop)."""
    out = img.clone()
    for y in range(img.shape[1]):
        for x in range(img.shape[2]):
            out[:, y, x] = fn(img[:, y, x])
    return out


def brightness(b):
    return lambda rgb: rgb + b


def contrast(c):
    return lambda rgb: rgb * c


def luma_flip(flip):
    """Householder mirror through the plane orthogonal to (1, 1, 1): rgb - 2 * mean(rgb)."""
    return lambda rgb: rgb - 2 * rgb.mean() * flip


def hue(theta):
    """Rotation by theta about the grey axis: m + cos (rgb - m) + sin (v x rgb), v = (1,1,1)/sqrt 3."""
    def rotate(rgb):
        r, g, b = rgb
        m = rgb.mean()
        cross = torch.stack([b - g, r - b, g - r]) / math.sqrt(3)
        return m + math.cos(theta) * (rgb - m) + math.sin(theta) * cross
    return rotate


def saturation(s):
    return lambda rgb: rgb.mean() + s * (rgb - rgb.mean())


def draw_color(op, n, p=1.0):
    """The parameter of each image as the pipeline draws it (value, then "applies")."""
    if op == "brightness":
        v = torch.randn(n) * 0.2
        return torch.where(applies(n, p), v, torch.zeros(n))
    if op == "contrast":
        v = torch.exp2(torch.randn(n) * 0.5)
        return torch.where(applies(n, p), v, torch.ones(n))
    if op == "lumaflip":
        return torch.floor(torch.rand(n) * 2) * applies(n, p)
    if op == "hue":
        return (torch.rand(n) * 2 - 1) * math.pi * applies(n, p)
    v = torch.exp2(torch.randn(n) * 1.0)
    return torch.where(applies(n, p), v, torch.ones(n))


CLOSED_FORM = {"brightness": brightness, "contrast": contrast, "lumaflip": luma_flip, "hue": hue,
               "saturation": saturation}


@pytest.mark.parametrize("op", list(CLOSED_FORM))
def test_each_color_op_is_its_closed_form_per_pixel(op):
    n, x = 4, images(n=4, size=4)
    torch.manual_seed(20)
    out = only(op)(x)
    torch.manual_seed(20)
    values = draw_color(op, n)
    if op == "lumaflip":
        assert 0 < values.sum() < n
    for i in range(n):
        torch.testing.assert_close(out[i], per_pixel(x[i], CLOSED_FORM[op](float(values[i]))), atol=1e-5, rtol=0)


def test_color_ops_compose_in_order():
    """brightness, then contrast, luma flip, hue, saturation, each with probability p."""
    n, p, x = 6, 0.8, images(n=6, size=4)
    torch.manual_seed(21)
    out = AdaptiveAugment("color", p=p)(x)
    torch.manual_seed(21)
    drawn = {op: draw_color(op, n, p) for op in CLOSED_FORM}
    for i in range(n):
        expected = x[i]
        for op in CLOSED_FORM:
            expected = per_pixel(expected, CLOSED_FORM[op](float(drawn[op][i])))
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)


def test_grey_images_get_brightness_contrast_and_negation_only():
    """1 channel: y stands for (y, y, y); hue and saturation are skipped and draw nothing."""
    n, x = 6, images(n=6, c=1, size=4)
    torch.manual_seed(22)
    out = AdaptiveAugment("color", p=1.0)(x)
    torch.manual_seed(22)
    b, c, flip = (draw_color(op, n) for op in ("brightness", "contrast", "lumaflip"))
    after = torch.rand(1)
    for i in range(n):
        expected = per_pixel(x[i], lambda y: ((y + b[i]) * c[i]) * (1 - 2 * flip[i]))
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)
    torch.manual_seed(22)
    AdaptiveAugment("color", p=1.0)(x)
    assert torch.equal(torch.rand(1), after)


def test_rgba_alpha_is_untouched_by_colour_and_warped_by_geometry():
    rgba = images(n=5, c=4)
    torch.manual_seed(23)
    colour = AdaptiveAugment("color", p=1.0)(rgba)
    torch.manual_seed(23)
    colour_rgb = AdaptiveAugment("color", p=1.0)(rgba[:, :3])
    assert torch.equal(colour[:, 3], rgba[:, 3]) and torch.equal(colour[:, :3], colour_rgb)
    torch.manual_seed(24)
    full = AdaptiveAugment("bgc", p=1.0)(rgba)
    torch.manual_seed(24)
    geometric = AdaptiveAugment("bg", p=1.0)(rgba)
    torch.manual_seed(24)
    full_rgb = AdaptiveAugment("bgc", p=1.0)(rgba[:, :3])
    assert torch.equal(full[:, 3], geometric[:, 3]) and not torch.allclose(full[:, 3], rgba[:, 3])
    torch.testing.assert_close(full[:, :3], full_rgb, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------
# Image-space filtering and corruptions
# ------------------------------------------------------------------------------------------------

def test_band_filters_split_the_unit_impulse():
    """The four bands add up to the identity; band 0 passes DC, the others block it."""
    bank = band_filters().double()
    impulse = torch.zeros(bank.shape[1], dtype=torch.float64)
    impulse[bank.shape[1] // 2] = 1
    torch.testing.assert_close(bank.sum(0), impulse, atol=1e-6, rtol=0)
    torch.testing.assert_close(bank.sum(1), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), atol=1e-6, rtol=0)
    torch.testing.assert_close(bank, bank.flip(1))  # symmetric: convolution = correlation


def test_imgfilter_amplifies_bands_with_energy_normalized_gains():
    """Each band's gain t ~ 2^N(0, 1) (with its probability); after each band, the gain vector is
    divided by sqrt(sum_i power_i g_i^2), power = (10, 1, 1, 1) / 13; the image is filtered
    separably with sum_i g_i band_i under reflection padding (explicit loop)."""
    n, size, x = 2, 24, images(n=2, c=2, size=24)
    torch.manual_seed(25)
    out = only("imgfilter", imgfilter_bands=(1, 0, 1, 1))(x)
    torch.manual_seed(25)
    power = np.array([10, 1, 1, 1]) / 13
    gains = np.ones((n, 4))
    for band, strength in enumerate((1, 0, 1, 1)):
        t = torch.exp2(torch.randn(n))
        t = torch.where(applies(n, float(strength)), t, torch.ones(n)).double().numpy()
        for i in range(n):
            vector = np.ones(4)
            vector[band] = t[i]
            gains[i] *= vector / np.sqrt((power * vector ** 2).sum())
    bank = band_filters().double().numpy()
    for i in range(n):
        taps = gains[i] @ bank
        k = len(taps) // 2
        for c in range(2):
            img = x[i, c].double().numpy()
            rows = np.array([[sum(taps[j] * img[y, reflect(xx + j - k, size)] for j in range(len(taps)))
                              for xx in range(size)] for y in range(size)])
            expected = np.array([[sum(taps[j] * rows[reflect(y + j - k, size), xx] for j in range(len(taps)))
                                  for xx in range(size)] for y in range(size)])
            np.testing.assert_allclose(out[i, c].numpy(), expected, atol=2e-5)


def test_noise_adds_gaussian_with_half_normal_sigma():
    n, x = 5, images(n=5, size=8)
    torch.manual_seed(26)
    out = only("noise")(x)
    torch.manual_seed(26)
    sigma = torch.randn(n).abs() * 0.1 * applies(n, 1.0)
    noise = torch.randn(x.shape)
    torch.testing.assert_close(out, x + noise * sigma.reshape(n, 1, 1, 1), atol=1e-6, rtol=0)


def test_cutout_zeroes_a_square_of_half_the_image():
    n, size, x = 5, 16, images(n=5)
    torch.manual_seed(27)
    out = only("cutout")(x)
    torch.manual_seed(27)
    side = 0.5 * applies(n, 1.0)
    centre = torch.rand(n, 2)
    for i in range(n):
        for y in range(size):
            for xx in range(size):
                inside = (abs((xx + 0.5) / size - centre[i, 0]) < side[i] / 2
                          and abs((y + 0.5) / size - centre[i, 1]) < side[i] / 2)
                assert torch.equal(out[i, :, y, xx], torch.zeros(3) if inside else x[i, :, y, xx])
    assert (out == 0).any()


# ------------------------------------------------------------------------------------------------
# Gradients (R1 differentiates D(aug(x)) in x, then backpropagates that gradient)
# ------------------------------------------------------------------------------------------------

def test_bgc_pipeline_gradcheck_in_the_input():
    aug = AdaptiveAugment("bgc", p=1.0)

    def fn(x):
        torch.manual_seed(30)  # the same draws in every evaluation
        return aug(x)

    x = images(n=2, size=8, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), fast_mode=True)


def test_geometric_path_double_backward():
    aug = AdaptiveAugment("bg", p=1.0)

    def fn(x):
        torch.manual_seed(31)
        return aug(x)

    x = images(n=1, c=1, size=8, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradgradcheck(fn, (x,), fast_mode=True)
    # The R1 pattern: a penalty on the input gradient, backpropagated once more.
    weight = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((fn(x).square() * weight).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert second.abs().sum() > 0
