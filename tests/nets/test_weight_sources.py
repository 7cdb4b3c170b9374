"""Where torchvision weights come from: the torch hub cache, a (faked) download, offline."""

from __future__ import annotations

import pytest
import torch

from nstyle.errors import NStyleError
from nstyle.nets import VGG
from nstyle.nets.weights import load_torchvision, torchvision_weights
from tests.nets.test_nets import torchvision_state


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub folder, so nothing on this machine's real cache is touched."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("NSTYLE_OFFLINE", raising=False)
    return tmp_path / "hub" / "checkpoints"


def test_found_in_the_hub_cache(hub, monkeypatch):
    hub.mkdir(parents=True)
    torch.save(torchvision_state("vgg19", seed=2), hub / "vgg19-dcbb9e9d.pth")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    path = torchvision_weights("vgg19")
    assert path == hub / "vgg19-dcbb9e9d.pth"
    net = VGG("vgg19")
    load_torchvision(net, path)
    assert torch.equal(net.layers[0].weight, torch.load(path)["features.0.weight"])


def test_download_is_verified_by_the_hash_in_the_file_name(hub, monkeypatch):
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        torch.save(torchvision_state("vgg16", seed=3), dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    path = torchvision_weights("vgg16")
    assert calls == [("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af")]
    assert path == hub / "vgg16-397923af.pth" and path.is_file()


def test_offline_download_failure_is_one_clear_error(hub, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(NStyleError, match=r"could not download .*vgg19-dcbb9e9d\.pth.*--weights"):
        torchvision_weights("vgg19")


def test_offline_switch_never_tries_the_network(hub, monkeypatch):
    monkeypatch.setenv("NSTYLE_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    with pytest.raises(NStyleError, match=r"not in the torch hub cache.*--weights"):
        torchvision_weights("vgg19")
