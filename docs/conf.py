"""Sphinx configuration of crossdb's documentation (``make docs``)."""

project = "crossdb"
author = "crossdb contributors"
copyright = "crossdb contributors"
release = "0.1.0.dev0"

# Plain reStructuredText: no autodoc, so the build needs no Django settings
# and stays fast.
extensions = []
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
highlight_language = "python3"

html_theme = "furo"
html_title = "crossdb"
