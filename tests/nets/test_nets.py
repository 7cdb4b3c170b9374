"""nstyle.nets: layer tables, forward, frozen parameters, weight loaders, normalisation."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from nstyle.errors import NStyleError
from nstyle.nets import VGG, build_net, bundled_path, calibration_images, layer_names
from nstyle.nets.weights import HED_MEAN_BGR

# Convolutions per block, as in Simonyan & Zisserman (configurations D and E).
BLOCKS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)


def torchvision_cfg(arch):
    """torchvision's ``cfgs`` list: channel counts, 'M' for max pooling."""
    cfg = []
    for n, c in zip(BLOCKS[arch], CHANNELS):
        cfg += [c] * n + ["M"]
    return cfg


def torchvision_conv_indices(arch):
    """(index in features, c_in, c_out) of each conv in torchvision's ``make_layers``
    (conv, ReLU per number; MaxPool per 'M')."""
    out, i, c_in = [], 0, 3
    for v in torchvision_cfg(arch):
        if v == "M":
            i += 1
        else:
            out.append((i, c_in, v))
            c_in = v
            i += 2
    return out


def expected_names(arch):
    names = []
    for b, n in enumerate(BLOCKS[arch], start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}", f"relu{b}_{i}"]
        names.append(f"pool{b}")
    return names


# ---- layer tables ---------------------------------------------------------------------


@pytest.mark.parametrize("arch, n_convs, last_relu", [("vgg16", 13, "relu5_3"), ("vgg19", 16, "relu5_4")])
def test_layer_names(arch, n_convs, last_relu):
    names = layer_names(arch)
    assert names == expected_names(arch)
    assert sum(n.startswith("conv") for n in names) == n_convs
    assert [n for n in names if n.startswith("pool")] == [f"pool{b}" for b in range(1, 6)]
    assert names[0] == "conv1_1" and names[-2] == last_relu and names[-1] == "pool5"
    assert len(set(names)) == len(names)


def test_unknown_arch_raises():
    with pytest.raises(NStyleError, match="vgg11"):
        layer_names("vgg11")
    with pytest.raises(NStyleError):
        VGG("resnet50")


def test_unknown_pooling_raises():
    with pytest.raises(NStyleError, match="median"):
        VGG("vgg16", pooling="median")


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_module_layout_matches_torchvision(arch):
    net = VGG(arch)
    convs = [(i, m.in_channels, m.out_channels) for i, m in enumerate(net.layers) if isinstance(m, torch.nn.Conv2d)]
    assert convs == torchvision_conv_indices(arch)
    assert len(net.layers) == len(layer_names(arch))


# ---- forward ----------------------------------------------------------------------------


def test_forward_returns_requested_layers_and_stops_after_deepest(vgg16_raw):
    net = vgg16_raw
    ran: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, i=i: ran.append(i)) for i, m in enumerate(net.layers)]
    try:
        x = torch.rand(1, 3, 32, 24, generator=torch.Generator().manual_seed(0))
        out = net(x, ["conv3_2", "relu1_1", "pool2"])
    finally:
        for h in hooks:
            h.remove()
    assert set(out) == {"conv3_2", "relu1_1", "pool2"}
    assert out["relu1_1"].shape == (1, 64, 32, 24)
    assert out["pool2"].shape == (1, 128, 8, 6)
    assert out["conv3_2"].shape == (1, 256, 8, 6)
    deepest = expected_names("vgg16").index("conv3_2")
    assert ran == list(range(deepest + 1))  # every layer up to conv3_2 once, none after
    assert (out["relu1_1"] >= 0).all() and (out["conv3_2"] < 0).any()
    assert net(x, []) == {}


def test_forward_matches_manual_layer_by_layer(vgg16_raw):
    net = vgg16_raw
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = net(x, ["relu2_1"])
    h = net.preprocess(x)
    convs = dict(net.convs())
    for name in ["conv1_1", "conv1_2"]:
        h = torch.relu(F.conv2d(h, convs[name].weight, convs[name].bias, padding=1))
    h = F.max_pool2d(h, 2)
    h = torch.relu(F.conv2d(h, convs["conv2_1"].weight, convs["conv2_1"].bias, padding=1))
    torch.testing.assert_close(out["relu2_1"], h, rtol=1e-5, atol=1e-5 * float(h.abs().max()))


def test_unknown_layer_raises(vgg16_raw):
    x = torch.rand(1, 3, 16, 16)
    for bad in ["relu5_4", "conv6_1", "fc7"]:  # relu5_4 exists only in VGG19
        with pytest.raises(NStyleError, match=bad):
            vgg16_raw(x, ["relu1_1", bad])


def test_parameters_frozen_gradient_reaches_input_only(vgg16_raw):
    net = vgg16_raw
    params = list(net.parameters())
    assert len(params) == 2 * 13 and all(not p.requires_grad for p in params)
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    net(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in params)


def test_max_and_avg_pooling_differ():
    torch.manual_seed(0)
    net_max = VGG("vgg16", "max")
    net_avg = VGG("vgg16", "avg")
    net_avg.load_state_dict(net_max.state_dict())
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    a_max, a_avg = net_max(x, ["relu1_2", "pool1"]), net_avg(x, ["relu1_2", "pool1"])
    torch.testing.assert_close(a_max["relu1_2"], a_avg["relu1_2"])
    r = a_max["relu1_2"]
    torch.testing.assert_close(a_max["pool1"], F.max_pool2d(r, 2))
    torch.testing.assert_close(a_avg["pool1"], F.avg_pool2d(r, 2))
    assert (a_max["pool1"] >= a_avg["pool1"] - 1e-6).all()
    assert float((a_max["pool1"] - a_avg["pool1"]).abs().max()) > 1e-3


# ---- the bundled HED/VGG16 weights -----------------------------------------------------


def test_bundled_conv1_1_matches_numpy_cross_correlation(vgg16_raw):
    with h5py.File(bundled_path(), "r") as f:
        kernel = f["block1/layers/conv2d/vars/0"][()].astype(np.float64)  # (kh, kw, in, out)
        bias = f["block1/layers/conv2d/vars/1"][()].astype(np.float64)
    x = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(4))
    # Caffe input: 0-255, BGR, minus the BGR mean; H, W, C layout for the reference.
    img = x[0].double().numpy().transpose(1, 2, 0) * 255.0
    img = img[:, :, ::-1] - np.asarray(HED_MEAN_BGR)
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)))
    windows = sliding_window_view(padded, (3, 3), axis=(0, 1))  # (H, W, C, kh, kw)
    ref = np.einsum("hwcij,ijco->ohw", windows, kernel) + bias[:, None, None]
    got = vgg16_raw(x, ["conv1_1"])["conv1_1"][0].double().numpy()
    assert got.shape == ref.shape == (64, 7, 9)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.slow
def test_bundled_every_conv_comes_from_its_keras_layer(vgg16_raw):
    """convB_I <- blockB/layers/conv2d (I=1) or conv2d_{I-1}; kernel (kh,kw,in,out) -> (out,in,kh,kw)."""
    convs = dict(vgg16_raw.convs())
    with h5py.File(bundled_path(), "r") as f:
        k32 = f["block3/layers/conv2d_1/vars/0"][()]
        b32 = f["block3/layers/conv2d_1/vars/1"][()]
        np.testing.assert_array_equal(convs["conv3_2"].weight.numpy(), k32.transpose(3, 2, 0, 1))
        np.testing.assert_array_equal(convs["conv3_2"].bias.numpy(), b32)
        assert not np.array_equal(convs["conv3_3"].weight.numpy(), k32.transpose(3, 2, 0, 1))
        for b, n in enumerate(BLOCKS["vgg16"], start=1):
            for i in range(1, n + 1):
                group = f"block{b}/layers/conv2d" + ("" if i == 1 else f"_{i - 1}")
                kernel = f[group + "/vars/0"][()]
                np.testing.assert_array_equal(convs[f"conv{b}_{i}"].weight.numpy(), kernel.transpose(3, 2, 0, 1))
                np.testing.assert_array_equal(convs[f"conv{b}_{i}"].bias.numpy(), f[group + "/vars/1"][()])


def test_bundled_loader_refuses_vgg19():
    from nstyle.nets.weights import load_bundled_vgg16

    with pytest.raises(NStyleError):
        load_bundled_vgg16(VGG("vgg19"), verify=False)


# ---- torchvision state dicts -----------------------------------------------------------


def torchvision_state(arch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for i, c_in, c_out in torchvision_conv_indices(arch):
        state[f"features.{i}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * 0.05
        state[f"features.{i}.bias"] = torch.randn(c_out, generator=gen) * 0.1
    return state


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_torchvision_loader(arch, tmp_path):
    state = torchvision_state(arch, seed=5)
    path = tmp_path / f"{arch}-tv-test.pth"
    torch.save(state, path)
    net = build_net(arch, weights=path, normalize=False)
    modules = list(net.layers)
    for i, _, _ in torchvision_conv_indices(arch):
        assert torch.equal(modules[i].weight, state[f"features.{i}.weight"])
        assert torch.equal(modules[i].bias, state[f"features.{i}.bias"])
    # preprocessing: RGB in [0, 1], ImageNet mean and std, no channel flip
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(6))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.preprocess(x), (x - mean) / std)
    expected = F.conv2d((x - mean) / std, state["features.0.weight"], state["features.0.bias"], padding=1)
    torch.testing.assert_close(net(x, ["conv1_1"])["conv1_1"], expected, rtol=1e-5, atol=1e-5)


def tiny_state(arch, drop=(), bad_shape=None):
    """A state dict with every key of ``arch``; only the first convs get real shapes
    (the loader stops at the first problem, so the rest are never read)."""
    state = {}
    for n, (i, c_in, c_out) in enumerate(torchvision_conv_indices(arch)):
        real = n < 3
        state[f"features.{i}.weight"] = torch.zeros((c_out, c_in, 3, 3) if real else (1,))
        state[f"features.{i}.bias"] = torch.zeros((c_out,) if real else (1,))
    if bad_shape:
        state[bad_shape[0]] = torch.zeros(bad_shape[1])
    for key in drop:
        del state[key]
    return state


@pytest.mark.parametrize(
    "case, state, needle",
    [
        ("arch", tiny_state("vgg16"), "13 convolutions"),  # a VGG16 file for a VGG19
        ("missing", tiny_state("vgg19", drop=["features.5.bias"]), "features.5.bias"),
        ("shape", tiny_state("vgg19", bad_shape=("features.2.weight", (64, 64, 5, 5))), "(64, 64, 5, 5)"),
    ],
)
def test_torchvision_bad_files_raise(case, state, needle, tmp_path):
    path = tmp_path / f"bad-{case}.pth"
    torch.save(state, path)
    with pytest.raises(NStyleError) as exc:
        build_net("vgg19", weights=path, normalize=False)
    assert str(path) in str(exc.value)
    assert needle in str(exc.value).replace(str(path), "")


def test_non_torch_file_raises(tmp_path):
    path = tmp_path / "not-a-state-dict.pth"
    path.write_bytes(b"this is plain text, not a torch file\n")
    with pytest.raises(NStyleError) as exc:
        build_net("vgg19", weights=path, normalize=False)
    assert str(path) in str(exc.value)


def test_non_h5_file_given_as_h5_raises(tmp_path):
    path = tmp_path / "broken.h5"
    path.write_bytes(b"not an HDF5 file")
    with pytest.raises(NStyleError) as exc:
        build_net("vgg16", weights=path, normalize=False)
    assert str(path) in str(exc.value)


def test_missing_weight_file_raises(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(NStyleError) as exc:
        build_net("vgg16", weights=path, normalize=False)
    assert str(path) in str(exc.value)


# ---- activation normalisation ----------------------------------------------------------


@pytest.mark.slow
def test_normalised_relu_means_are_one(vgg16_norm):
    relus = [n for n in vgg16_norm.names if n.startswith("relu")]
    sums = dict.fromkeys(relus, 0.0)
    counts = dict.fromkeys(relus, 0)
    images = calibration_images()
    assert len(images) >= 2
    with torch.no_grad():
        for img in images:
            for name, a in vgg16_norm(img, relus).items():
                sums[name] += float(a.double().sum())
                counts[name] += a.numel()
    for name in relus:
        assert abs(sums[name] / counts[name] - 1.0) < 1e-3, name


def test_normalisation_only_rescales(vgg16_norm, vgg16_raw):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    names = vgg16_raw.names
    with torch.no_grad():
        a_norm, a_raw = vgg16_norm(x, names), vgg16_raw(x, names)
    bad = []
    for name in names:
        a, b = a_norm[name].double().flatten(), a_raw[name].double().flatten()
        c = float(a @ b) / float(b @ b)  # least-squares ratio
        if not (c > 0 and float((a - c * b).norm()) <= 1e-4 * float(a.norm())):
            bad.append(name)
    assert bad == []


@pytest.mark.parametrize("filters, dilation, reflect", [(1024, 1, False), (1024, 1, True), (64, 1, False),
                                                        (1024, 4, False)])
def test_random_branches_wide_1d_convolution_as_a_matrix_product(filters, dilation, reflect):
    """A wide undilated 1D branch runs as unfold + one matrix product (faster on CPU): same
    activations and input gradient as torch's conv1d, in float64; the others run conv1d."""
    from nstyle.nets.random import MATMUL_FILTERS, Branch, RandomBranches, _convolve, mirror

    net = RandomBranches(12, [Branch(5, filters, dilation)], dims=1, seed=3,
                         edges="reflect" if reflect else "valid").double()
    conv = next(iter(net.convs.values()))
    x = torch.randn(2, 12, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    name = f"relu_{net.branches[0].name}"
    ours = net(x, [name])[name]
    h = mirror(x, net.branches[0].span, 1) if reflect else x
    theirs = torch.relu(torch.nn.functional.conv1d(h, conv.weight, dilation=dilation))
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    w = torch.randn(ours.shape, dtype=torch.float64)
    (g1,) = torch.autograd.grad((ours * w).sum(), x)
    (g2,) = torch.autograd.grad((theirs * w).sum(), x)
    torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-12)
    probe = torch.randn(1, 12, 30, dtype=torch.float64)
    uses_matmul = filters >= MATMUL_FILTERS and dilation == 1
    assert (_convolve(conv, probe).is_contiguous() is False) == uses_matmul  # the product's transposed view
