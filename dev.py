#!/usr/bin/env python3
"""One entry point for developers, needing only Python 3.10+ and pip.

    python3 dev.py demo [--out DIR] [demo flags...]   # kaggle-kit demo on the embedded data
    python3 dev.py test                                # sync checks, nbdev-test, pytest (what CI runs)
    python3 dev.py readme                              # render nbs/index.ipynb to README.md
    python3 dev.py sync                                # nbdev-export + readme + nbdev-clean, then report

Each command creates `.venv` when it is missing and installs the project with its `dev` extra
(again whenever `pyproject.toml` changes), so nothing has to be installed by hand.
"""
import hashlib, json, os, subprocess, sys, venv
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

def ensure_env():
    "Create `.venv` and (re)install the project when `pyproject.toml` changed since the last install."
    if not (BIN/'python').exists():
        print(f'creating {VENV}', flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT/'pyproject.toml').read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != want:
        sh(BIN/'python', '-m', 'pip', 'install', '-q', '-e', '.[dev]')
        STAMP.write_text(want)

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
    print('library, README and notebooks are in sync and clean', flush=True)
    sh(BIN/'nbdev-test', '--n-workers', '2', '--timing')
    r = sh(BIN/'python', '-m', 'pytest', '-q', *sys.argv[2:], check=False)
    if r.returncode == 5:
        print('FAIL: pytest collected no tests (exit code 5): the process-level test suite is missing.')
        sys.exit(1)
    sys.exit(r.returncode)

def demo():
    sh(BIN/'kaggle-kit', 'demo', *(sys.argv[2:] or ['--out', 'demo_out']))

if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'help'
    if cmd not in ('demo', 'test', 'readme', 'sync'): sys.exit(__doc__)
    ensure_env()
    if cmd == 'readme': render_readme()
    elif cmd == 'sync':
        diff = sync()
        print('changed:', *diff, sep='\n  ') if diff else print('nothing changed')
    else: globals()[cmd]()
