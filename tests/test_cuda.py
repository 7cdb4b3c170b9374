"""The same code path on a GPU: runs only where torch sees CUDA, skipped elsewhere."""

from __future__ import annotations

import pytest
import torch

import nstyle
from nstyle.samples import sample_path

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")


def test_stylize_on_cuda_matches_cpu():
    """Same inputs, same steps: the loss histories on GPU and CPU agree closely."""
    args = dict(size=48, steps=6, seed=3, init="noise")
    content, style = sample_path("astronaut.png"), sample_path("ihc.png")
    cpu = nstyle.stylize(content, style, device="cpu", **args)
    gpu = nstyle.stylize(content, style, device="cuda", **args)
    assert gpu.tensor.device.type == "cpu"  # results come back to the host
    j_cpu = torch.tensor([h.total for h in cpu.history])
    j_gpu = torch.tensor([h.total for h in gpu.history])
    assert j_gpu[-1] < 0.5 * j_gpu[0]
    # Step 0 is the same G on both: only arithmetic differs (cuDNN convolutions use TF32
    # by default, about 1e-3 relative per layer). Later steps drift apart as L-BFGS
    # amplifies that, so the whole runs are compared by how far they lowered J.
    torch.testing.assert_close(j_gpu[0], j_cpu[0], rtol=1e-2, atol=0)
    assert abs(float(j_gpu[-1] / j_gpu[0]) - float(j_cpu[-1] / j_cpu[0])) < 0.1

def test_built_net_on_cuda_leaves_cached_cpu_net_alone():
    net_gpu = nstyle.build_net("vgg16", device="cuda")
    net_cpu = nstyle.build_net("vgg16", device="cpu")
    assert next(net_gpu.parameters()).device.type == "cuda"
    assert next(net_cpu.parameters()).device.type == "cpu"


def test_audio_series_and_volumes_run_on_cuda(tmp_path):
    """The 1D and 3D products on the GPU: same code path, results back on the host."""
    import os

    import nibabel
    import numpy as np
    from pydicom.data import get_testdata_file

    from nstyle import stylize_series, stylize_volume

    data = os.path.join(os.path.dirname(nibabel.__file__), "tests", "data")
    for net in ("triplanar", "inflated", "random"):
        r = stylize_volume(os.path.join(data, "anatomical.nii"), os.path.join(data, "example4d.nii.gz"),
                           net=net, steps=3, device="cuda")
        assert r.tensor.device.type == "cpu" and r.tensor.shape == (1, 1, 33, 41, 25)
        assert r.best.total <= r.history[0].total
    ecg = get_testdata_file("waveform_ecg.dcm")
    style = tmp_path / "reversed.npy"
    from nstyle.modalities.series import load_series

    np.save(style, load_series(ecg).tensor[0].flip(-1).T.numpy())
    r = stylize_series(ecg, style, steps=3, device="cuda")
    assert r.tensor.shape == (1, 12, 10000) and torch.isfinite(r.tensor).all()


def test_audio_runs_on_cuda(tmp_path):
    import numpy as np

    soundfile = pytest.importorskip("soundfile")
    sr = 8000
    t = np.arange(sr) / sr

    soundfile.write(tmp_path / "c.wav", np.sin(2 * np.pi * 440 * t) * np.linspace(0, 1, sr), sr)
    soundfile.write(tmp_path / "s.wav", np.random.default_rng(0).standard_normal(sr) * 0.1, sr)
    from nstyle import stylize_audio

    for mode in ("waveform", "magnitude"):
        r = stylize_audio(tmp_path / "c.wav", tmp_path / "s.wav", rate=sr, n_fft=256, hop=64, branches="11:64",
                          steps=3, mode=mode, device="cuda")
        assert r.tensor.shape == (1, 1, sr) and torch.isfinite(r.tensor).all()
