"""Sphinx configuration: numpydoc API reference, Markdown pages through MyST."""

import linalg

project = "linalg"
author = "The linalg developers"
copyright = "2026, the linalg developers"
release = linalg.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3
intersphinx_mapping = {}
html_theme = "pydata_sphinx_theme"
html_title = "linalg"
html_theme_options = {"navigation_depth": 2}
