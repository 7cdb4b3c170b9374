"""nstyle.pipeline: one run for every kind — the engine's abilities (coarse-to-fine, precision,
style losses, blending, masks) for sounds, series and volumes, and one default per option.

Real data: the 12-lead ECG in pydicom's test files, matplotlib's sample EEG, nibabel's
anatomical.nii and example4d.nii.gz (an MR and an fMRI volume).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch

import nstyle
from nstyle.cli import build_parser
from nstyle.core.multiscale import shrink
from nstyle.errors import NStyleError
from nstyle.kinds import MODALITIES
from nstyle.modalities.series import load_series
from nstyle.options import OUTPUTS, SETTINGS
from nstyle.outputs.config import parse_args_with_config
from nstyle.steering.masks import RegionMask, blend_weight, composite, region_weights

DATA = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
ANAT, EX4D = os.path.join(DATA, "anatomical.nii"), os.path.join(DATA, "example4d.nii.gz")


@pytest.fixture(scope="module")
def ecg_eeg(tmp_path_factory) -> tuple[Path, Path]:
    """Two leads of the ECG (2000 samples) and two channels of the EEG, as .npy files."""
    import matplotlib
    from pydicom.data import get_testdata_file

    folder = tmp_path_factory.mktemp("series")
    ecg = load_series(get_testdata_file("waveform_ecg.dcm")).tensor[0, [1, 6], :2000].numpy().T
    raw = Path(matplotlib.get_data_path()) / "sample_data" / "eeg.dat"
    eeg = np.fromfile(raw, dtype=np.float64).reshape(800, 4)[:, :2]
    np.save(folder / "ecg.npy", ecg)
    np.save(folder / "eeg.npy", eeg)
    return folder / "ecg.npy", folder / "eeg.npy"


# ---- options declared once ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["image", "audio", "series", "volume"])
def test_cli_defaults_are_the_settings_defaults(kind):
    """Every setting is an option of the subcommand, with the settings type's default."""
    args = build_parser().parse_args([kind, "c", "s", "-o", "o"])
    for f in [*fields(SETTINGS[kind]), *fields(OUTPUTS[kind])]:
        assert getattr(args, f.name) == f.default, f.name


def test_api_signature_shows_the_settings_defaults():
    import inspect

    sig = inspect.signature(nstyle.stylize_volume)
    for f in fields(SETTINGS["volume"]):
        assert sig.parameters[f.name].default == f.default


def test_unknown_api_option_is_named():
    with pytest.raises(NStyleError, match="unknown audio option.*sizes"):
        nstyle.stylize_audio("c.wav", "s.wav", sizes=3)


@pytest.mark.parametrize(
    "kind, options, message",
    [
        ("series", {"steps": -1}, "steps"),
        ("image", {"size": 8}, "size"),
        ("volume", {"window": "10,5"}, "window"),
        ("audio", {"mode": "waveform", "scales": "auto"}, "magnitude"),
        ("series", {"mask": "m.npy"}, "images and volumes"),
        ("image", {"style_blend": "1,x"}, "style blend"),
        ("volume", {"style_weight": float("nan")}, "style weight"),
    ],
)
def test_settings_are_checked_the_same_way_from_every_entry(kind, options, message):
    with pytest.raises(NStyleError, match=message):
        SETTINGS[kind](**options).validate()


def test_a_config_written_before_styles_became_lists_still_loads(tmp_path):
    """Older OUT.toml files of sound runs hold one style as a string."""
    cfg = tmp_path / "old.toml"
    cfg.write_text('command = "audio"\ncontent = "c.wav"\nstyle = "s.wav"\noutput = "o.wav"\nsteps = 7\n')
    args = parse_args_with_config(build_parser(), ["--config", str(cfg)])
    assert isinstance(args, argparse.Namespace)
    assert args.style == [str(tmp_path / "s.wav")] and args.steps == 7  # relative to the file's folder


# ---- coarse-to-fine over time and over all three axes --------------------------------------


def test_shrink_is_the_cell_mean_in_1d_and_3d():
    x = torch.arange(24.0).reshape(1, 1, 24)
    torch.testing.assert_close(shrink(x, (6,)), x.reshape(1, 1, 6, 4).mean(-1))
    v = torch.rand(1, 1, 4, 6, 8, dtype=torch.float64)
    expected = v.reshape(1, 1, 2, 2, 3, 2, 4, 2).mean(dim=(3, 5, 7))
    torch.testing.assert_close(shrink(v, (2, 3, 4)), expected)


def test_each_balance_has_its_own_defaults_and_the_record_repeats_the_run(ecg_eeg):
    """Relative: α = 1, β from the kind's relative table, J_style = Σλ at G = C; absolute: the
    seed's costs with α = 1/elements and the former β. The result's options (what OUT.toml
    holds) name the balance and the α and β used, and running them again gives the same J."""
    from nstyle.core.balance import BALANCES
    from nstyle.options import SERIES_STYLE_WEIGHTS, VOLUME_STYLE_WEIGHTS
    from nstyle.pipeline import build_objective

    ecg, eeg = ecg_eeg
    kind = MODALITIES["series"]
    for balance in BALANCES:
        settings = SETTINGS["series"](balance=balance, branches="5:32,5x4:32").validate()
        signals = kind.load(ecg, [eeg], settings, torch.device("cpu"))
        network = kind.network(signals, settings, torch.device("cpu"))
        objective, alpha = build_objective(kind, network, signals, settings)
        assert objective.beta == SERIES_STYLE_WEIGHTS[balance]
        if balance == "relative":
            assert alpha == 1.0
            assert float(objective(signals.content).style) == pytest.approx(2.0, rel=1e-5)  # λ = 1, 1
        else:
            assert alpha == pytest.approx(1.0 / (32 * (2000 - 4)))
            assert objective.style_norms == {"relu_w5": 1.0, "relu_w5d4": 1.0}
    assert MODALITIES["volume"].style_weight(SETTINGS["volume"](net="random", balance="absolute")) == 10.0
    assert MODALITIES["volume"].style_weight(SETTINGS["volume"]()) == VOLUME_STYLE_WEIGHTS["absolute"]["triplanar"]
    relative = SETTINGS["volume"](balance="relative", net="inflated")
    assert MODALITIES["volume"].style_weight(relative) == VOLUME_STYLE_WEIGHTS["relative"]["inflated"]
    r = nstyle.stylize_series(ecg, eeg, steps=3, branches="5:32,5x4:32")
    assert (r.options["balance"], r.options["content_weight"], r.options["style_weight"]) == (
        "relative", 1.0, SERIES_STYLE_WEIGHTS["relative"])
    again = nstyle.stylize_series(ecg, eeg, **{k: r.options[k] for k in ("balance", "content_weight", "style_weight",
                                                                       "steps", "branches")})
    assert again.best.total == pytest.approx(r.best.total, rel=1e-6)


@pytest.mark.slow
def test_series_coarse_to_fine_runs_over_time_and_lowers_j(ecg_eeg):
    ecg, eeg = ecg_eeg
    r = nstyle.stylize_series(ecg, eeg, steps=8, scales="500,1000", scale_steps=6, branches="5:32,5x4:32")
    scales = [h.scale for h in r.history]
    assert sorted(set(scales)) == [0, 1, 2]
    assert r.tensor.shape == (1, 2, 2000)
    last = [h.total for h in r.history if h.scale == 2]
    assert min(last) <= last[0]
    first = [h for h in r.history if h.scale == 0]
    assert first[-1].total < first[0].total


@pytest.mark.slow
def test_volume_coarse_to_fine_over_three_axes_keeps_geometry(tmp_path):
    r = nstyle.stylize_volume(ANAT, EX4D, net="random", steps=3, scales="auto", scale_steps=2)
    # anatomical.nii is 33 x 41 x 25: scales 32 and 41 voxels on the long side
    assert sorted({h.scale for h in r.history}) == [0, 1]
    assert tuple(r.tensor.shape[2:]) == (33, 41, 25)
    out = r.save(tmp_path / "g.nii.gz")
    assert nibabel.load(str(out)).shape == (33, 41, 25)


def test_auto_scales_start_where_every_signal_fits_the_net(ecg_eeg):
    """A 129-sample span (5 taps, dilation 32) does not fit the 800-sample EEG shrunk with
    the 2000-sample ECG to the default 256 (102 samples): auto starts higher instead of failing."""
    ecg, eeg = ecg_eeg
    plans: list = []
    r = nstyle.run(
        nstyle.MODALITIES["series"], ecg, eeg,
        nstyle.SeriesSettings(steps=1, scales="auto", scale_steps=1, branches="5:8,5x32:8"), on_plan=plans.append,
    )
    sides = [side for side, _ in plans[0]]
    assert sides[-1] == 2000 and len(sides) > 2
    assert round(sides[0] * 800 / 2000) >= 129 > round(256 * 800 / 2000)
    assert sorted({h.scale for h in r.history}) == list(range(len(sides)))


def test_a_scale_too_small_for_the_net_is_named(ecg_eeg):
    ecg, eeg = ecg_eeg
    with pytest.raises(NStyleError, match="too small at the 20 scale"):
        nstyle.stylize_series(ecg, eeg, steps=1, scales="20", branches="5:8,5x4:8")


# ---- style losses, blending, precision for every kind ---------------------------------------


def test_blend_weights_one_and_zero_equal_the_first_style_alone(ecg_eeg):
    """Σ_i w_i·Gram(S_i) with w = (1, 0) is Gram(S_1): the same J at every step."""
    ecg, eeg = ecg_eeg
    kw = dict(steps=3, branches="5:16,5x4:16")
    one = nstyle.stylize_series(ecg, eeg, **kw)
    blended = nstyle.stylize_series(ecg, [eeg, ecg], style_blend="1,0", **kw)
    assert [h.total for h in one.history] == pytest.approx([h.total for h in blended.history], rel=1e-5)
    other = nstyle.stylize_series(ecg, ecg, **kw)
    swapped = nstyle.stylize_series(ecg, [eeg, ecg], style_blend="0,2", **kw)  # weights are normalised
    assert [h.total for h in other.history] == pytest.approx([h.total for h in swapped.history], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["mean-std", "wasserstein", "sliced"])
def test_every_style_loss_runs_for_volumes_and_lowers_j(loss):
    r = nstyle.stylize_volume(ANAT, EX4D, net="random", steps=4, style_loss=loss, style_weight=10.0)
    assert r.best.total < r.history[0].total
    assert r.options["style_loss"] == loss


def test_bf16_for_a_series_gives_j_close_to_fp32(ecg_eeg):
    ecg, eeg = ecg_eeg
    kw = dict(steps=1, branches="5:32,5x4:32")
    j32 = nstyle.stylize_series(ecg, eeg, **kw).history[0]
    j16 = nstyle.stylize_series(ecg, eeg, precision="bf16", **kw).history[0]
    assert j16.total == pytest.approx(j32.total, rel=0.05)
    assert j16.total != j32.total  # the network did run in bf16


# ---- masks: one module for 2D and 3D --------------------------------------------------------


def test_region_weights_in_3d_are_the_cell_shares():
    rng = np.random.default_rng(0)
    inside = rng.random((4, 6, 8)) > 0.5
    mask = RegionMask.binary(inside)
    w = region_weights(mask, (2, 3, 4), dtype=torch.float64)
    expected = inside.reshape(2, 2, 3, 2, 4, 2).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(w[1, 0].numpy(), expected)
    np.testing.assert_allclose((w[0] + w[1]).numpy(), 1.0)


def test_composite_in_3d_keeps_untouched_voxels_exactly():
    inside = np.zeros((5, 6, 7), dtype=bool)
    inside[1:4, 2:5, 2:6] = True
    mask = RegionMask.binary(inside)
    g, c = torch.rand(1, 1, 5, 6, 7), torch.rand(1, 1, 5, 6, 7)
    out = composite(g, c, mask, [True, False], feather=0)
    keep = torch.from_numpy(inside)[None, None]
    assert torch.equal(out[~keep], c[~keep]) and torch.equal(out[keep], g[keep])
    ramp = blend_weight(mask, [True, False], feather=1)[0, 0]
    assert float(ramp[1, 2, 2]) == 0.5 and float(ramp[2, 3, 3]) == 1.0  # the border voxel takes half of G
    assert float(ramp[0, 0, 0]) == 0.0


@pytest.mark.slow
def test_volume_mask_restyles_only_inside(tmp_path):
    anat = nibabel.load(ANAT)
    inside = np.zeros(anat.shape, dtype=np.uint8)
    inside[8:24, 10:30, 6:18] = 1
    mask_path = tmp_path / "mask.nii.gz"
    nibabel.save(nibabel.Nifti1Image(inside, anat.affine), str(mask_path))
    r = nstyle.stylize_volume(ANAT, EX4D, net="random", steps=4, mask=mask_path, style_weight=100.0)
    c = MODALITIES["volume"].load(ANAT, [EX4D], SETTINGS["volume"](), torch.device("cpu")).content
    keep = torch.from_numpy(inside.astype(bool))[None, None]
    assert torch.equal(r.tensor[~keep], c[~keep])
    assert float((r.tensor[keep] - c[keep]).abs().mean()) > 1e-3


# ---- one-way imports -----------------------------------------------------------------------

LAYERS = ["errors", "core.functional", "core", "nets", "modalities", "steering", "options", "kinds", "pipeline"]


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    import ast

    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(Path(nstyle.__file__).parent.parent).with_suffix("").parts)
    if path.name == "__init__.py":
        package += ".__init__"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("nstyle")):
            base = package.split(".")[: len(package.split(".")) - node.level] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out.append((module, [a.name for a in node.names]))
    return out


def _modules() -> list[Path]:
    return sorted(Path(nstyle.__file__).parent.rglob("*.py"))


def test_no_private_helper_is_imported_across_modules():
    for path in _modules():
        for module, names in _imports(path):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path.name} imports {private} from {module}"


def test_the_maths_imports_nothing_of_nstyle_and_layers_import_downwards():
    root = Path(nstyle.__file__).parent
    functional = _imports(root / "core" / "functional.py")
    assert functional == [("nstyle.errors", ["NStyleError", "NStyleTypeError"])], functional  # its error type only
    above = {"core": ["kinds", "pipeline", "cli", "api", "options", "studio"],
             "steering": ["kinds", "pipeline", "cli", "api", "studio"], "kinds": ["pipeline", "cli", "api", "studio"],
             "modalities": ["kinds", "pipeline", "cli", "api", "core.objective", "studio"],
             "jobs": ["cli", "studio"], "outputs": ["kinds", "pipeline", "cli", "api", "studio"]}
    for layer, forbidden in above.items():
        for path in (root / layer).rglob("*.py"):
            for module, _ in _imports(path):
                hit = [f for f in forbidden if module == f"nstyle.{f}" or module.startswith(f"nstyle.{f}.")]
                assert not hit, f"{path.relative_to(root)} imports {module}"
