"""Build the documentation site into `_site/`: `python3 dev.py docs` runs this file with the project's `.venv`.

The pages, staged under `_proc/site/` (nothing under nbs/ is written to, no notebook is run):
- README.md is the home page, index.html;
- each module notebook nbs/NN_name.ipynb is the API page name.html, and each nbs/tutorials/name.ipynb is
  tutorials/name.html: the names nbdev's site gives them, which `kaggle_kit/_modidx.py`, the modules' `Docs:` lines
  and nbs/llms.txt already point to.
Notebooks go through nbdev's own processors (hidden and exported cells out, a `show_doc` after each exported
definition, backticked names linked to their API entries). A `show_doc` cell becomes markdown: what `show_doc` gives
for the installed library (an import, never a notebook's cells), which links to the source; its stored output only
where that fails (a name the module does not have). Every other cell is shown with the outputs it stores: the
notebooks keep them, and `python3 dev.py docs` runs them first (docs/execute.py) unless given `--no-execute`.
Sphinx builds with warnings as errors (`-W --keep-going -n`): a broken link between pages, or to an anchor, fails the
build. Each page's markdown is also written to name.html.md, next to llms.txt, for the `.html.md` links of the
docstrings and of llms.txt.
"""
import ast, functools, importlib, inspect, json, os, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS, NBS = ROOT/'docs', ROOT/'nbs'
STAGE, BUILD, SITE = ROOT/'_proc'/'site', ROOT/'_proc'/'site-build', ROOT/'_site'
DOC_URL = 'https://kaggle-kit.github.io/kaggle-kit/'   # pyproject's Documentation; _modidx's doc_host + doc_baseurl

def nbdev_slug(title:str)->str:
    "The anchor nbdev's (pandoc's) site gives a heading: lowercased, dots kept (`progressiveresize.state_dict`)"
    return re.sub(r'[^\w\-. ]', '', title.strip().lower()).replace(' ', '-')

def pages():
    "Source file -> page in the staged tree: README the home page, module notebooks by name, tutorials in a folder"
    res = {ROOT/'README.md': Path('index.md')}
    for p in sorted(NBS.glob('[0-9][0-9]_*.ipynb')): res[p] = Path(p.name.split('_', 1)[1])
    for p in sorted((NBS/'tutorials').glob('*.ipynb')): res[p] = Path('tutorials')/p.name
    return res

def _url(page:Path)->str: return page.with_suffix('.html').as_posix()

_re_src = re.compile(r'^\[source\]\(([^)#\s]+)(?:#L\w*)?\)\{[^}]*\}\s*$', re.MULTILINE)
_re_head = re.compile(r'^#{1,6} +(.+?)\s*$', re.MULTILINE)

def _show_doc_md(md:str, obj=None)->str:
    "show_doc's markdown for this site: no leading rule (a section may not open with one), the source link under the heading"
    try: line = f'#L{inspect.getsourcelines(inspect.unwrap(obj))[1]}' if obj is not None else ''
    except (TypeError, OSError): line = ''
    md = re.sub(r'^\s*---\s*\n', '', md)
    src = _re_src.search(md)
    if not src: return md.strip()
    md = _re_src.sub('', md, count=1).strip()
    link = f'[source]({src[1]}{line}){{.kk-source}}'
    head = _re_head.search(md)
    return (md[:head.end()] + f'\n\n{link}' + md[head.end():] if head else f'{link}\n\n{md}').strip()

def show_docs(src:str, ns:dict, where:str)->str:
    "Markdown of the `show_doc(...)` calls in a cell's `src`, evaluated against the installed module's namespace `ns`"
    from nbdev.showdoc import show_doc
    res = []
    for node in ast.parse(src).body:
        try: r = eval(compile(ast.Expression(node.value), where, 'eval'), {**ns, 'show_doc': show_doc})
        except Exception as e: raise RuntimeError(f'{where}: {ast.unparse(node)} failed: {type(e).__name__}: {e}') from e
        if r is not None: res.append(_show_doc_md(r._repr_markdown_(), getattr(r, 'fn', None)))
    return '\n\n'.join(res)

def _stored_md(cell):
    "The text/markdown a cell's outputs store, or None"
    for o in cell.get('outputs', []):
        md = o.get('data', {}).get('text/markdown')
        if md: return ''.join(md)

@functools.cache
def _lookup():
    "Backticked names to their API entries: the kit's own bare (`add_folds`), fastai's too (`Learner`, to docs.fast.ai)"
    from nbdev.doclinks import NbdevLookup
    return NbdevLookup(strip_libs='kaggle_kit fastai')

def process_nb(path:Path):
    "A notebook as its page shows it: plain cells, `show_doc`s as markdown; and the symbols documented on it"
    from fastcore.nbio import read_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import (add_show_docs, strip_ansi, hide_line, rm_header_dash, rm_export, clean_magics,
                                  hide_, _default_exp, _is_showdoc)
    nb = read_nb(path)
    mod = _default_exp(nb)
    ns = vars(importlib.import_module(f'kaggle_kit.{mod}')) if mod else vars(importlib.import_module('kaggle_kit.all'))
    def show_doc_cell(cell):
        if not _is_showdoc(cell): return
        try: md = show_docs(cell.source, ns, f'{path.name} cell {cell.get("id")}')
        except RuntimeError:   # the stored output of a notebook's own show_doc: no source link, but there
            if not (md := _stored_md(cell)): raise
            md = _show_doc_md(md)
        cell.cell_type, cell.source, cell.metadata = 'markdown', md, {}
        for k in ('outputs', 'execution_count'): cell.pop(k, None)
    def add_links(cell):   # nbdev's `add_links`, whose lookup strips `lib_name` (`kaggle-kit`, not the package's name)
        if cell.cell_type == 'markdown': cell.source = _lookup().linkify(cell.source)
    def quarto_opts(cell):   # the Quarto cell options a notebook may use, as MyST-NB's tags (or no cell)
        d = cell.directives_ or {}
        if d.get('include') == 'false' or (cell.cell_type == 'markdown' and 'hide' in d): del cell['source']; return
        tags = [t for k, t in (('echo', 'remove-input'), ('output', 'remove-output')) if d.get(k) == 'false']
        if tags: cell.metadata['tags'] = tags
    # nbdev's order, less Quarto's part: hidden and exported cells go before show_doc cells become markdown
    NBProcessor(nb=nb, procs=[add_show_docs, strip_ansi, hide_line, rm_header_dash, rm_export, hide_, clean_magics,
                              quarto_opts, show_doc_cell, add_links], rm_directives=True, process=True)
    cells = []
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'code' and not c.source.strip() and not c.get('outputs'): continue
        cell = {'cell_type': c.cell_type, 'id': c.get('id') or f'kk{i:06d}', 'metadata': dict(c.get('metadata', {})), 'source': c.source}
        if c.cell_type == 'code': cell.update(outputs=c.get('outputs', []), execution_count=c.get('execution_count'))
        cells.append(cell)
    shown = {nbdev_slug(h) for c in cells if c['cell_type'] == 'markdown' for h in _re_head.findall(c['source'])}
    meta = {'kernelspec': nb.metadata.get('kernelspec', {'display_name': 'python3', 'language': 'python', 'name': 'python3'}),
            'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    return {'cells': cells, 'metadata': meta, 'nbformat': 4, 'nbformat_minor': 5}, shown

_re_link = re.compile(r'\]\(([^)\s]+)\)')

def fix_links(md:str, src:Path, page:Path, staged:dict, anchors:dict)->str:
    "Links to this site (nbdev's absolute ones) and to staged files (README's `nbs/...`) as links between staged pages"
    by_url = {_url(p): p for p in staged.values()}
    def sub(m):
        url = m[1]
        if url.startswith(DOC_URL):
            path, _, anchor = url[len(DOC_URL):].partition('#')
            target = by_url.get(path.removesuffix('.md'))
            if target is None: return m[0]
            if anchor not in anchors.get(target, ()): anchor = ''   # documented on the page without a heading of its own
        elif re.match(r'[a-z][\w+.-]*:|#', url): return m[0]
        else:
            path, _, anchor = url.partition('#')
            target = staged.get((src.parent/path).resolve())
            if target is None: return m[0]   # Sphinx reports it if it is broken
        rel = Path(os.path.relpath(target, page.parent)).as_posix()
        return f']({rel}{"#" + anchor if anchor else ""})'
    return _re_link.sub(sub, md)

def page_md(nb:dict)->str:
    "A staged notebook as one markdown file (its .html.md): markdown as it is, code fenced, text outputs fenced"
    parts = []
    for c in nb['cells']:
        if c['cell_type'] == 'markdown': parts.append(c['source']); continue
        parts.append(f"```python\n{c['source']}\n```")
        for o in c.get('outputs', []):
            txt = o.get('text') or o.get('data', {}).get('text/markdown') or o.get('data', {}).get('text/plain')
            if txt: parts.append(f"```\n{''.join(txt).rstrip()}\n```")
    return '\n\n'.join(p.strip() for p in parts if p.strip()) + '\n'

def _write(path:Path, text:str):
    "Write `text` only when it changed: Sphinx then re-reads only the pages whose sources changed"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text: path.write_text(text)

def _toctree(caption, pages):
    return '\n'.join(['', f'```{{toctree}}', ':hidden:', f':caption: {caption}', '', *(p.with_suffix('').as_posix() for p in pages), '```', ''])

def stage()->dict:
    "Write every page under `STAGE`; returns {page: markdown for its .html.md}"
    staged = pages()
    nbs, anchors = {}, {}
    for src, page in staged.items():
        if src.suffix == '.ipynb': nbs[page], anchors[page] = process_nb(src)
    readme = (ROOT/'README.md').read_text()
    tuts = [p for p in staged.values() if p.parts[0] == 'tutorials']
    order = {p: readme.find(f'nbs/{p.as_posix()}') % (len(readme) + 1) for p in tuts}   # the README's order, the rest after
    tuts.sort(key=lambda p: (order[p], p))
    mods = [p for p in staged.values() if p.suffix == '.ipynb' and p not in tuts]
    mds = {Path('index.md'): fix_links(readme, ROOT/'README.md', Path('index.md'), staged, anchors)}
    _write(STAGE/'index.md', mds[Path('index.md')] + _toctree('Tutorials', tuts) + _toctree('API reference', mods))
    for src, page in staged.items():
        if page not in nbs: continue
        nb = nbs[page]
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = fix_links(c['source'], src, page, staged, anchors)
        _write(STAGE/page, json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        mds[page] = page_md(nb)
    keep = {STAGE/p for p in staged.values()}
    for f in STAGE.rglob('*'):
        if f.is_file() and f not in keep: f.unlink()   # a page whose source went away
    return mds

def sphinx(src:Path, build:Path)->Path:
    "HTML of the staged pages in `src` into `build/html`, with docs/conf.py and warnings as errors; returns the folder"
    from sphinx.cmd.build import build_main
    html = build/'html'   # MyST-NB writes output images next to the output folder: all of it stays in `build`
    rc = build_main(['-b', 'html', '-W', '--keep-going', '-n', '-q', '-c', str(DOCS), '-d', str(build/'doctrees'),
                     str(src), str(html)])
    if rc: sys.exit(f'FAIL: sphinx-build exited {rc}: the warnings above are errors (a broken link or anchor, a bad page)')
    return html

def build()->Path:
    "Stage the pages, build them with Sphinx into `_site/`, add the .html.md pages and llms.txt; returns `_site`"
    t0 = time.time()
    mds = stage()
    t1 = time.time()
    print(f'staged {len(mds)} pages in {STAGE.relative_to(ROOT)} ({t1-t0:.0f}s)', flush=True)
    html = sphinx(STAGE, BUILD)
    shutil.rmtree(SITE, ignore_errors=True)
    shutil.copytree(html, SITE, ignore=shutil.ignore_patterns('.buildinfo', '_sources'))
    for page, md in mds.items(): (SITE/(_url(page) + '.md')).write_text(md)
    shutil.copy(NBS/'llms.txt', SITE/'llms.txt')
    print(f'built {SITE} in {time.time()-t1:.0f}s: {len(mds)} pages and their .html.md, search, llms.txt', flush=True)
    return SITE

if __name__ == '__main__':
    os.chdir(ROOT)   # nbdev's processors read pyproject.toml's [tool.nbdev]
    build()
