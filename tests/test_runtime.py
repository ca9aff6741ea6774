import pytest
import torch

from mdlearn.errors import UsageError
from mdlearn.paths import data_dir, project_root
from mdlearn.runtime import default_device, seed_everything


def test_default_device_follows_the_environment(monkeypatch):
    monkeypatch.setenv("MDLEARN_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    monkeypatch.delenv("MDLEARN_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert default_device().type == "cuda"
    else:
        assert default_device().type in ("cpu", "mps")
        with pytest.raises(UsageError, match="device 'cuda': CUDA is not available on this machine"):
            default_device("cuda")
        monkeypatch.setenv("MDLEARN_DEVICE", "cuda:0")
        with pytest.raises(UsageError, match="MDLEARN_DEVICE 'cuda:0': CUDA is not available"):
            default_device()


def test_impossible_devices_are_usage_errors(monkeypatch):
    monkeypatch.delenv("MDLEARN_DEVICE", raising=False)
    with pytest.raises(UsageError, match="device 'gpu' is not a device; use cpu, cuda, cuda:N or mps"):
        default_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="device 'cuda:1': CUDA is not available"):
            default_device("cuda:1")
    else:
        with pytest.raises(UsageError, match="CUDA device"):
            default_device(f"cuda:{torch.cuda.device_count()}")


def test_seed_everything_is_reproducible():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MDLEARN_DATA", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    monkeypatch.delenv("MDLEARN_DATA")
    root = project_root()
    assert root is not None and (root / "_toc.yml").is_file()
    assert data_dir() == root / "data"
