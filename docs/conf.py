# Sphinx configuration of the documentation site: `python3 dev.py docs` builds it into `_site/` (docs/make_site.py
# stages the pages first), `tests/test_site.py` opens every page in headless Chromium.
#
# Why Sphinx + MyST-NB + Furo, not nbdev's Quarto site: Quarto is a binary that pip cannot install here (PyPI's
# `quarto-cli` downloads it from GitHub while building). Of the pip-installable builders, Sphinx with MyST-NB:
# - renders notebooks as they are stored, never running them (`nb_execution_mode = "off"`): markdown, code, and the
#   outputs a notebook keeps (images, DataFrame tables, text, markdown);
# - checks every link between pages, and every `#anchor`, as the build runs: with `-W --keep-going -n` a broken one
#   fails the build. mkdocs-jupyter converts notebooks to HTML outside mkdocs, so `mkdocs build --strict` checks no
#   link written in a notebook, and mkdocs itself is in maintenance mode;
# - comes with full-text search that needs no server.
# Furo: a light theme with a sidebar of the toctree captions (Tutorials, API reference), dark mode and a search box,
# no CDN assets (the site works offline, and the browser test sees no failed requests).
import sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))   # make_site.nbdev_slug, below

project = 'kaggle-kit'
author = 'kaggle-kit developers'
copyright = 'kaggle-kit developers, Apache-2.0'
html_title = 'kaggle-kit'
html_baseurl = 'https://kaggle-kit.github.io/kaggle-kit/'   # pyproject's Documentation URL
root_doc = 'index'   # README.md

extensions = ['myst_nb', 'sphinx.ext.githubpages']
nb_execution_mode = 'off'           # stored outputs only: the builder runs no notebook
nb_merge_streams = True
myst_enable_extensions = ['colon_fence', 'attrs_inline']
# anchors on every heading down to `####` (show_doc writes `###`), spelled as nbdev's site spells them (`folds.html#add_folds`,
# `resize.html#progressiveresize.state_dict`), so the links in kaggle_kit/_modidx.py land on the right place
myst_heading_anchors = 4
myst_heading_slug_func = 'make_site.nbdev_slug'
# show_doc writes `###` whatever the depth it sits at (straight under a page title too), as on nbdev's sites
suppress_warnings = ['myst.header']

html_theme = 'furo'
html_static_path = ['static']
html_favicon = 'static/favicon.svg'   # else every browser asks the host's /favicon.ico (a 404, a console error)
html_css_files = ['site.css']
html_show_sourcelink = False   # the staged sources are not the repository's files
html_copy_source = False
html_theme_options = {'top_of_page_buttons': [], 'navigation_with_keys': True}
pygments_style = 'friendly'
pygments_dark_style = 'monokai'

def setup(app):
    # code cells and README blocks are IPython: `!pip install ...` is highlighted, not a lexer error
    from ipython_pygments_lexers import IPython3Lexer
    app.add_lexer('python', IPython3Lexer)
