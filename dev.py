#!/usr/bin/env python3
"""One entry point for developers, needing only Python 3.10+ and pip.

    python3 dev.py demo [--out DIR] [demo flags...]   # kaggle-kit demo on the embedded data
    python3 dev.py test                                # sync checks, notebooks run and outputs checked, pytest (CI)
    python3 dev.py readme                              # render nbs/index.ipynb to README.md
    python3 dev.py sync                                # nbdev-export + readme + nbdev-clean, then report
    python3 dev.py build [--no-venv]                   # sdist + wheel into dist/, checked (what a release uploads)
    python3 dev.py docs [--no-execute] [NOTEBOOK...]   # run the notebooks, keep their outputs, build _site/

Each command creates `.venv` when it is missing and installs the project with its `dev` extra
(again whenever `pyproject.toml` changes), so nothing has to be installed by hand; `docs` installs the `docs` extra
too (Sphinx, MyST-NB, Furo, selenium for tests/test_site.py). `build --no-venv` uses the running Python instead, which
only needs `build` and `twine` (the release workflow runs it so).
"""
import hashlib, json, os, re, shutil, subprocess, sys, tarfile, venv, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT/'.venv'
BIN = VENV/('Scripts' if os.name == 'nt' else 'bin')
STAMP = VENV/'.kaggle-kit-installed'

def sh(*args, check=True, **kw):
    print('+', ' '.join(map(str, args)), flush=True)
    r = subprocess.run([str(a) for a in args], cwd=ROOT, **kw)
    if check and r.returncode: sys.exit(r.returncode)
    return r

def ensure_env(extras='dev'):
    "Create `.venv` and (re)install the project with `extras` when `pyproject.toml` changed since that install."
    if not (BIN/'python').exists():
        print(f'creating {VENV}', flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT/'pyproject.toml').read_bytes()).hexdigest()
    stamp = STAMP if extras == 'dev' else STAMP.with_name(f'{STAMP.name}-{extras.replace(",", "-")}')   # one per set
    if not stamp.exists() or stamp.read_text() != want:
        sh(BIN/'python', '-m', 'pip', 'install', '-q', '-e', f'.[{extras}]')
        stamp.write_text(want)

def snapshot(paths):
    "Bytes of every file under `paths`, to see what a command changed."
    res = {}
    for p in paths:
        p = ROOT/p
        files = [p] if p.is_file() else sorted(f for f in p.rglob('*') if f.is_file() and '__pycache__' not in f.parts
                                               and '.ipynb_checkpoints' not in f.parts)
        for f in files: res[str(f.relative_to(ROOT))] = f.read_bytes()
    return res

def changed(before, after): return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))

def render_readme():
    "README.md from nbs/index.ipynb: markdown cells as they are, code cells as python blocks (no outputs)."
    nb = json.loads((ROOT/'nbs'/'index.ipynb').read_text())
    parts = ['<!-- WARNING: generated from nbs/index.ipynb by `python3 dev.py readme`; edit the notebook. -->']
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if not src: continue
        first = src.splitlines()[0]
        if first.startswith('#| hide') or first.startswith('#|hide'): continue
        if c['cell_type'] == 'markdown': parts.append(src)
        else:
            src = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
            if src: parts.append(f'```python\n{src}\n```')
    (ROOT/'README.md').write_text('\n\n'.join(parts) + '\n')

def commented_markdown():
    "Markdown cells whose every line starts with `# `: prose that renders as a wall of headings (a title cell is one line)."
    bad = []
    for p in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in p.parts: continue
        for i, c in enumerate(json.loads(p.read_text())['cells']):
            lines = [l for l in ''.join(c['source']).splitlines() if l.strip()]
            if c['cell_type'] == 'markdown' and len(lines) > 1 and all(l.startswith('# ') or l.strip() == '#' for l in lines):
                bad.append(f'{p.relative_to(ROOT)} cell {i} ({c.get("id")}): {lines[0][:60]!r}')
    return bad

def sync():
    "Regenerate the library and README from the notebooks and clean the notebooks; return what changed."
    watched = ['kaggle_kit', 'README.md', 'nbs']
    before = snapshot(watched)
    sh(BIN/'nbdev-clean')   # first: it gives cells without an id one, and exported modules cite cell ids
    sh(BIN/'nbdev-export')
    render_readme()
    return changed(before, snapshot(watched))

def test():
    os.environ.setdefault('WANDB_MODE', 'offline')
    os.environ.setdefault('WANDB_SILENT', 'true')
    # two notebooks run at once on CI's 2 cores: torch's default of one thread per core would oversubscribe them
    # (tiny models run 5-10x slower then); results stay bit-identical run to run for a given thread count
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    diff = sync()
    if diff:
        print('\nFAIL: the notebooks and the committed files are out of sync; `python3 dev.py sync` changed:')
        for f in diff: print('  ', f)
        print('Commit the notebooks and the regenerated files together.')
        sys.exit(1)
    if bad := commented_markdown():
        print('\nFAIL: markdown cells written as commented lines (every line starts with "# ", so each renders as a heading):')
        for b in bad: print('  ', b)
        print('Convert them back to plain markdown (jupytext --to ipynb, or strip the "# ").')
        sys.exit(1)
    print('library, README and notebooks are in sync and clean', flush=True)
    # the notebooks' tests, run once: each notebook in its own kernel, two at a time, with nbdev-test's choice of cells
    # (not `eval: false`, not `notest` or `slow`), and their outputs compared with the committed ones (docs/execute.py;
    # it starts the tutorials' `working` folders afresh): a cell that raises, or whose outputs differ, fails here
    # (KAGGLE_KIT_OUTPUTS=run: run them only, on a machine whose CPU computes other last digits than CI's)
    mode = '--run-only' if os.environ.get('KAGGLE_KIT_OUTPUTS') == 'run' else '--check'
    sh(BIN/'python', ROOT/'docs'/'execute.py', mode, '--n-workers', '2', '--timing')
    # two pytest workers, a test file each at a time (module fixtures stay in one process): the process-level tests
    # are single-threaded (OMP_NUM_THREADS=1), so two of them fill CI's 2 cores and halve the wall time
    r = sh(BIN/'python', '-m', 'pytest', '-q', '-n', '2', '--dist', 'loadfile', '--durations', '12', *sys.argv[2:], check=False)
    if r.returncode == 5:
        print('FAIL: pytest collected no tests (exit code 5): the process-level test suite is missing.')
        sys.exit(1)
    sys.exit(r.returncode)

def build(py):
    "sdist and wheel into dist/ with `python -m build`, then `check_dist` and `twine check --strict`."
    dist = ROOT/'dist'
    shutil.rmtree(dist, ignore_errors=True)
    sh(py, '-m', 'build', '--outdir', dist)
    check_dist(dist)
    sh(py, '-m', 'twine', 'check', '--strict', *sorted(dist.iterdir()))
    print('built and checked:', *sorted(f.name for f in dist.iterdir()), sep='\n  ')

def check_dist(dist):
    "What a release must hold: every module, the console script, this version, unpinned torch, README as description."
    version = re.search(r'__version__ = "(.+?)"', (ROOT/'kaggle_kit'/'__init__.py').read_text())[1]
    mods = sorted(f'kaggle_kit/{f.name}' for f in (ROOT/'kaggle_kit').glob('*.py'))
    whl, sdist = dist/f'kaggle_kit-{version}-py3-none-any.whl', dist/f'kaggle_kit-{version}.tar.gz'
    errs = [f'missing {f.name}' for f in (whl, sdist) if not f.exists()]
    if not errs:
        with zipfile.ZipFile(whl) as z:
            names, info = set(z.namelist()), f'kaggle_kit-{version}.dist-info'
            meta = z.read(f'{info}/METADATA').decode()
            errs += [f'wheel lacks {m}' for m in mods if m not in names]
            if 'kaggle-kit = kaggle_kit.cli:main' not in z.read(f'{info}/entry_points.txt').decode():
                errs.append('wheel lacks the kaggle-kit console script')
        with tarfile.open(sdist) as t: snames = {n.split('/', 1)[-1] for n in t.getnames()}
        errs += [f'sdist lacks {m}' for m in mods + ['pyproject.toml', 'README.md'] if m not in snames]
        head, _, body = meta.partition('\n\n')
        errs += [f'METADATA lacks {l!r}' for l in (f'Version: {version}', 'Description-Content-Type: text/markdown',
                                                   'Requires-Dist: torch', 'Requires-Dist: torchvision') if l not in head.splitlines()]
        if body.strip() != (ROOT/'README.md').read_text().strip(): errs.append('the long description is not README.md')
    if errs: sys.exit('FAIL: ' + '; '.join(errs))
    print(f'dist/ holds kaggle-kit {version}: {len(mods)} modules, the console script, unpinned torch/torchvision, README')

def docs():
    """The notebooks run and their outputs written back (docs/execute.py; `--no-execute` skips this, NOTEBOOKs run only
    those), then the site into `_site/`: README, the module notebooks as API pages, the tutorials; a broken link fails it"""
    args = sys.argv[2:]
    if '--no-execute' not in args: sh(BIN/'python', ROOT/'docs'/'execute.py', '--timing', *args)
    sh(BIN/'python', ROOT/'docs'/'make_site.py')

def demo():
    sh(BIN/'kaggle-kit', 'demo', *(sys.argv[2:] or ['--out', 'demo_out']))

if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'help'
    if cmd not in ('demo', 'test', 'readme', 'sync', 'build', 'docs'): sys.exit(__doc__)
    if cmd == 'build' and '--no-venv' in sys.argv[2:]: build(sys.executable); sys.exit()
    ensure_env('dev,docs' if cmd == 'docs' else 'dev')
    if cmd == 'readme': render_readme()
    elif cmd == 'build': build(BIN/'python')
    elif cmd == 'sync':
        diff = sync()
        print('changed:', *diff, sep='\n  ') if diff else print('nothing changed')
    else: globals()[cmd]()
