"""mdlearn.paths: the data folder, the real samples' folder and the chapters, each found in one place."""

import pytest

from mdlearn.errors import UsageError
from mdlearn.paths import chapters_dir, project_root, shared_data_dir


def _fake_clone(base):
    repo = base / "wt" / "mine"
    (repo / "mdlearn").mkdir(parents=True)
    (repo / "_toc.yml").write_text("root: intro\n")
    return repo


def test_shared_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MDLEARN_SHARED_DATA", str(tmp_path / "elsewhere"))
    assert shared_data_dir() == (tmp_path / "elsewhere").resolve()


def test_shared_data_dir_is_found_above_a_worktree(monkeypatch, tmp_path):
    monkeypatch.delenv("MDLEARN_SHARED_DATA", raising=False)
    repo = _fake_clone(tmp_path)
    monkeypatch.chdir(repo)
    assert project_root() == repo.resolve()
    # nothing there yet: the conventional place beside the clone, reported as missing by callers
    assert shared_data_dir() == repo.resolve().parent / "shared" / "data"
    (tmp_path / "shared" / "data").mkdir(parents=True)  # two levels up, as for /work/wt/<name>
    assert shared_data_dir() == (tmp_path / "shared" / "data").resolve()
    (repo.parent / "shared" / "data").mkdir(parents=True)  # the nearest one wins
    assert shared_data_dir() == (repo.parent / "shared" / "data").resolve()


def test_chapters_dir_outside_a_clone_is_a_usage_error(monkeypatch, tmp_path):
    import mdlearn.paths as paths

    monkeypatch.setattr(paths, "project_root", lambda start=None: None)
    with pytest.raises(UsageError, match="chapters/ is only available in a clone"):
        chapters_dir()
