"""Installing the kit as Colab and Kaggle users do, into image-like environments: real pip, real processes.

Each scenario starts from an "image": a venv that already holds a torch/torchvision pair other than the one a bare
`pip install torch torchvision` picks, and an older fastai, as Colab and Kaggle ship them. The kit is then installed
offline (`--no-index`) and must leave every file of torch and torchvision as it was, leave `pip check` clean, and
run `kaggle-kit demo`.

The image takes minutes to build (torch is a CUDA build, 5.5 GB installed), so it is built once per machine in
`KAGGLE_KIT_TEST_CACHE` (default ~/.cache/kaggle-kit-tests) and never modified: every scenario runs in a
`cp -al` copy (hard links; pip unlinks files before it replaces or removes them, so the image's files stay intact,
which the inode checks below also prove).
"""
import os, sys, json, shutil, subprocess, hashlib
from pathlib import Path
import pytest
from kaggle_kit.run import RunFolder
from conftest import ROOT, BIN

# torchvision 0.29.0 pins torch==2.14.0; a bare install here picks 2.14.1 + 0.29.1 (offered offline in scenario a)
IMAGE_TORCH = os.environ.get('KAGGLE_KIT_IMAGE_TORCH', 'torch==2.14.0 torchvision==0.29.0').split()
# fastai as the images ship it, --no-deps: its own pin (torch<2.7) would move torch
IMAGE_FASTAI = ['fastai==2.7.19', 'fastcore==1.7.29']
CACHE = Path(os.environ.get('KAGGLE_KIT_TEST_CACHE', Path.home()/'.cache'/'kaggle-kit-tests'))
DEMO = ('demo', '--n-folds', 1, '--epochs', 1, '--size', 16, '--quiet', '--no-tta')

def run(*args, timeout=1200, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)
    if r.returncode: raise AssertionError(f'{" ".join(map(str, args))} exited {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}')
    return r

def pip(env, *args, **kw): return run(env/'bin'/'python', '-m', 'pip', *args, **kw)
def site(env): return next((env/'lib').glob('python3*/site-packages'))
def versions(env): return {d['name'].lower(): d['version'] for d in json.loads(pip(env, 'list', '--format', 'json').stdout)}

def torch_files(env):
    "torch and torchvision as installed: dist-info name, RECORD, and (path, inode, mtime) of every file pip recorded."
    sp, res = site(env), {}
    for name in ('torch', 'torchvision'):
        info, = sp.glob(f'{name}-*.dist-info')
        record = (info/'RECORD').read_text()
        files = sorted(sp/l.split(',')[0] for l in record.splitlines() if l and '__pycache__' not in l)
        res[name] = (info.name, record, [(str(f.relative_to(sp)), f.stat().st_ino, f.stat().st_mtime_ns) for f in files])
    return res

@pytest.fixture(scope='session')
def image():
    "The image venv, built once per machine and pair; read-only from then on."
    key = hashlib.sha256(' '.join(IMAGE_TORCH + IMAGE_FASTAI + [sys.version]).encode()).hexdigest()[:12]
    env = CACHE/f'image-{key}'
    if not (env/'.complete').exists():
        shutil.rmtree(env, ignore_errors=True)
        run(sys.executable, '-m', 'venv', env)
        pip(env, 'install', '-q', *IMAGE_TORCH, timeout=3600)
        pip(env, 'install', '-q', '--no-deps', *IMAGE_FASTAI)
        (env/'.complete').write_text(' '.join(IMAGE_TORCH + IMAGE_FASTAI))
    v = versions(env)
    assert [f'{n}=={v[n]}' for n in ('torch', 'torchvision')] == IMAGE_TORCH and v['fastai'].startswith('2.7.')
    return env

@pytest.fixture(scope='session')
def wheel(tmp_path_factory):
    "The kit's wheel, built as a release builds it."
    out = tmp_path_factory.mktemp('dist')
    run(BIN/'python', '-m', 'build', '--wheel', '--no-isolation', '--outdir', out, ROOT)
    whl, = out.glob('kaggle_kit-*.whl')
    return whl

@pytest.fixture(scope='session')
def bundle(tmp_path_factory):
    "`kaggle-kit bundle` as a user runs it (the one step here that needs the package index)."
    dest = tmp_path_factory.mktemp('bundle')/'wheels'
    r = run(BIN/'kaggle-kit', 'bundle', dest, timeout=1800)
    return dest, r.stdout

def scenario(image, tmp_path, *install):
    "Copy the image, install the kit into the copy offline, and check what a Colab/Kaggle user relies on."
    env = tmp_path/'env'
    run('cp', '-al', image, env)
    before = torch_files(image)
    pip(env, 'install', '-q', '--no-index', *install)
    assert torch_files(env) == before, 'installing the kit touched torch or torchvision'
    assert torch_files(image) == before
    v = versions(env)
    assert v['fastai'].split('.')[:2] != ['2', '7'], v['fastai']   # the image's old fastai was upgraded
    pip(env, 'check')
    work = tmp_path/'work'; work.mkdir()
    r = run(env/'bin'/'python', '-c', 'import kaggle_kit; print(kaggle_kit.__file__)', cwd=work)
    assert r.stdout.startswith(str(site(env))), r.stdout   # the installed kit, not the source tree
    envvars = {**os.environ, 'OMP_NUM_THREADS': '1', 'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true'}
    envvars.pop('PYTHONPATH', None)
    run(env/'bin'/'kaggle-kit', *DEMO, '--out', work/'demo', cwd=work, env=envvars)
    assert (work/'demo'/'submission.csv').exists()
    assert RunFolder(work/'demo').status()['state'] == 'done'

def test_bundle_leaves_out_the_gpu_stack(bundle):
    dest, log = bundle
    names = [f.name.lower() for f in dest.glob('*.whl')]
    assert any(n.startswith('kaggle_kit-') for n in names) and any(n.startswith('fastai-2.8') for n in names), names
    assert not [n for n in names if n.split('-')[0] in ('torch', 'torchvision', 'triton') or n.startswith(('nvidia', 'cuda'))]
    assert '--no-index --find-links /kaggle/input/<dataset> kaggle-kit' in (dest/'install.txt').read_text()
    assert f'wrote {len(names)} wheels' in log and 'MB' in log

def test_wheel_install_keeps_the_image_torch(image, wheel, bundle, tmp_path):
    # offline, with the torchvision a bare install would pick on offer (it accepts the image's torch): pip must keep
    # the image's pair all the same
    bare = tmp_path/'bare'
    pip(image, 'download', '-q', '--no-deps', '-d', bare, 'torchvision')
    newer, = bare.glob('torchvision-*.whl')
    assert newer.name.split('-')[1] != IMAGE_TORCH[1].split('==')[1], newer.name
    scenario(image, tmp_path, '--find-links', bundle[0], '--find-links', bare, wheel)

def test_offline_bundle_install_keeps_the_image_torch(image, bundle, tmp_path):
    scenario(image, tmp_path, '--find-links', bundle[0], 'kaggle-kit')
