"""Every notebook in notebooks/ has a py:percent text twin in notebooks/text/ (the pairing is
notebooks/jupytext.toml), and the two say the same thing cell by cell. The .ipynb is what
papermill runs; the .py is what a reviewer reads, so a drifted twin shows a diff of code that
does not run. docs/architecture.md, "Notebooks as text"."""

import shutil
import tomllib
from itertools import zip_longest
import tomllib
from pathlib import Path

import jupytext
import pytest
from _pytest.pathlib import fnmatch_ex
from jupytext.config import load_jupytext_configuration_file
from jupytext.formats import long_form_multiple_formats
from jupytext.paired_paths import paired_paths

from tests.helpers import REPO

NOTEBOOKS = REPO / "notebooks"
RESYNC = "make sync-notebooks (jupytext --sync notebooks/*.ipynb: the newer file of each pair wins)"


def twin(notebook, config):
    """The text twin of `notebook` as notebooks/jupytext.toml pairs it: its path and format."""
    formats = long_form_multiple_formats(config.default_formats(str(notebook)))
    texts = [(Path(p), f) for p, f in paired_paths(str(notebook), "ipynb", formats)
             if f["extension"] != ".ipynb"]
    assert len(texts) == 1, f"{notebook}: jupytext.toml should pair it with one text file"
    return texts[0]


def cells(nb):
    return [(c.cell_type, c.source, c.metadata.get("tags", [])) for c in nb.cells]


def first_difference(cell, text_cell):
    """The first line (or the tags, or the kind) where a notebook cell and its text differ."""
    if cell[0] != text_cell[0] or cell[2] != text_cell[2]:
        return f"notebook {cell[0]} tags {cell[2]}, text {text_cell[0]} tags {text_cell[2]}"
    lines, text_lines = cell[1].splitlines(), text_cell[1].splitlines()
    for n, (a, b) in enumerate(zip_longest(lines, text_lines)):
        if a != b:
            return f"line {n + 1}: notebook {a!r}, text {b!r}"
    return "whitespace only"


def drift(folder):
    """What differs between the notebooks in `folder` and their text twins, one line each."""
    config = load_jupytext_configuration_file(str(folder / "jupytext.toml"))
    problems, twins = [], set()
    for notebook in sorted(folder.glob("*.ipynb")):
        path, fmt = twin(notebook, config)
        twins.add(path)
        name = f"{notebook.relative_to(folder.parent)}"
        if not path.exists():
            problems.append(f"{name} has no text twin {path.relative_to(folder.parent)}")
            continue
        nb = jupytext.read(notebook)
        expected = jupytext.writes(nb, fmt=fmt, config=config)
        committed = path.read_text()
        if committed == expected:
            continue
        mine, theirs = cells(nb), cells(jupytext.reads(committed, fmt=fmt))
        where = next((f"cell {i} ({a[0]}) differs: {first_difference(a, b)}"
                      for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), None)
        if where is None and len(mine) != len(theirs):
            where = f"the notebook has {len(mine)} cells, the text {len(theirs)}"
        problems.append(f"{name} and {path.relative_to(folder.parent)} have drifted: "
                        f"{where or 'same cells, but not as jupytext writes them'}")
    for orphan in sorted(set((folder / "text").glob("*.py")) - twins):
        problems.append(f"{orphan.relative_to(folder.parent)} is the twin of no notebook: "
                        "delete it (or rename it with its notebook)")
    return problems


def test_every_notebook_and_its_text_twin_say_the_same():
    problems = drift(NOTEBOOKS)
    assert not problems, "\n".join(problems) + f"\nRe-sync: {RESYNC}"


@pytest.fixture
def copy(tmp_path):
    folder = tmp_path / "notebooks"
    (folder / "text").mkdir(parents=True)
    shutil.copy(NOTEBOOKS / "jupytext.toml", folder)
    shutil.copy(NOTEBOOKS / "clean.ipynb", folder)
    shutil.copy(NOTEBOOKS / "text" / "clean.py", folder / "text")
    assert drift(folder) == []
    return folder


def test_an_edited_cell_in_the_text_is_drift_named_by_notebook_and_cell(copy):
    text = copy / "text" / "clean.py"
    source = text.read_text()
    assert source.count("make_clean(cfg, tier") == 1
    text.write_text(source.replace("make_clean(cfg, tier", "make_clean(cfg, 'T1'"))
    (problem,) = drift(copy)
    assert problem.startswith("notebooks/clean.ipynb and notebooks/text/clean.py have drifted: "
                              "cell 2 (code) differs"), problem
    assert "make_clean(cfg, 'T1'" in problem


def test_a_lost_cell_a_lost_parameters_tag_a_missing_twin_and_an_orphan_are_drift(copy):
    text = copy / "text" / "clean.py"
    source = text.read_text()
    text.write_text(source[:source.rindex("# %%")])
    assert drift(copy) == ["notebooks/clean.ipynb and notebooks/text/clean.py have drifted: "
                           "the notebook has 3 cells, the text 2"]
    text.write_text(source.replace("\n\n# %%", "\n\n\n# %%"))
    assert drift(copy) == ["notebooks/clean.ipynb and notebooks/text/clean.py have drifted: "
                           "same cells, but not as jupytext writes them"]
    text.write_text(source)
    text.write_text(text.read_text().replace('# %% tags=["parameters"]', "# %%"))
    (problem,) = drift(copy)
    assert "cell 1 (code) differs: notebook code tags ['parameters'], text code tags []" in problem
    text.rename(copy / "text" / "old_name.py")
    assert drift(copy) == ["notebooks/clean.ipynb has no text twin notebooks/text/clean.py",
                           "notebooks/text/old_name.py is the twin of no notebook: delete it "
                           "(or rename it with its notebook)"]


def test_pytest_never_imports_the_text_twins():
    """pyproject's testpaths include notebooks/ (nbval runs the .ipynb); a text twin is the
    notebook's code, so importing it as a test module would run a step. norecursedirs skips
    notebooks/text/, as pytest matches it."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"]["norecursedirs"]
    assert any(fnmatch_ex(p, NOTEBOOKS / "text") for p in patterns), patterns
    assert not any(fnmatch_ex(p, NOTEBOOKS) for p in patterns), "nbval must still see notebooks/"
