"""Every chapter follows the book's notebook rules, and the preset machinery works."""

import ast
import json
from pathlib import Path

import pytest
import yaml

from mdlearn.course.chapters import list_chapters, notebooks_with_outputs, parameters_of, prepare_chapter, strip_outputs
from mdlearn.errors import UsageError
from mdlearn.course.presets import CHAPTER_PRESETS, PRESETS, chapter_config

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = list_chapters(REPO / "chapters")


def test_there_are_chapters():
    assert CHAPTERS and CHAPTERS[0].name.startswith("01_")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_rules(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert not notebooks_with_outputs([path]), "committed with outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    source = "".join(tagged[0]["source"])
    params = parameters_of(path)
    assert list(params)[0] == "preset" and params["preset"] == "book"
    for line in source.splitlines():  # every parameter is commented
        if line.strip():
            assert "#" in line, f"uncommented parameter line: {line!r}"
    for node in ast.parse(source).body:
        ast.literal_eval(node.value)
    # the preset table knows this chapter, with the same parameter names
    assert path.stem in CHAPTER_PRESETS
    for preset in PRESETS:
        assert set(CHAPTER_PRESETS[path.stem][preset]) == set(params) - {"preset"}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_set_up_turns_on_inline_figures(path):
    """Without `%matplotlib inline` this kernel (ipykernel 7, matplotlib 3.11) shows only the first
    figure a helper returns; later ones stay undrawn (the book lost most of chapter 6's figures)."""
    cells = json.loads(path.read_text())["cells"]
    p = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    setup = next(c for c in cells[p + 1:] if c["cell_type"] == "code")
    assert "".join(setup["source"]).strip() == "%matplotlib inline"


def test_every_chapter_is_in_the_toc_unless_a_draft():
    from mdlearn.course.presets import DRAFT_CHAPTERS

    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    assert set(DRAFT_CHAPTERS) <= {p.stem for p in CHAPTERS}
    for path in CHAPTERS:
        # a draft is tested like every chapter (smoke) but not shown in the book
        assert (f"chapters/{path.stem}" in files) == (path.stem not in DRAFT_CHAPTERS), path.stem


def test_chapter_config_presets_and_overrides():
    cfg = chapter_config("01_depth_from_a_single_image", "smoke", n_samples=2, dataset=None)
    assert cfg["n_samples"] == 2 and cfg["dataset"] == "indoor-smoke" and cfg["preset"] == "smoke"
    with pytest.raises(UsageError, match="unknown preset 'fast'"):
        chapter_config("01_depth_from_a_single_image", "fast")
    with pytest.raises(UsageError, match="no parameter 'bogus'"):
        chapter_config("01_depth_from_a_single_image", "book", bogus=1)


def test_prepare_injects_the_preset(tmp_path):
    out = prepare_chapter(CHAPTERS[0], "smoke", tmp_path)
    nb = json.loads(out.read_text())
    injected = [c for c in nb["cells"] if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(injected) == 1 and 'preset = "smoke"' in "".join(injected[0]["source"])


def test_output_check_and_strip(tmp_path):
    nb = json.loads(CHAPTERS[0].read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    code["execution_count"] = 3
    dirty = tmp_path / "01_dirty.ipynb"
    dirty.write_text(json.dumps(nb))
    assert notebooks_with_outputs([dirty]) == [str(dirty)]
    assert strip_outputs([dirty]) == [str(dirty)]
    assert notebooks_with_outputs([dirty]) == []
