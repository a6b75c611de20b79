"""What a reader of README.md gets, checked in real processes.

- The one-cell workflow ("The whole workflow in one cell", the README's python block that calls `make_whales('whales')`), taken from
  README.md itself and run verbatim (but for 3 epochs instead of 10) twice, in two fresh processes and two empty working folders: the two
  `submission.csv` files must be byte-identical, although the cell never seeds anything (`run_cv` seeds each fold).
- The metric-learning cell (the block that calls `embedding_learner`), run once with 1 epoch instead of 40: a checked
  submission from two folds of embeddings, each fold scored by kNN.
- The any-competition cell (the block that calls `competition_learner`), run once with 2 epochs instead of 5: a checked
  submission in APTOS's format, from a folder whose target, ids and metric nobody named.
- Importing the kit prints no warning a user would read as "something is broken", and asks no server anything.
- In a notebook (a real kernel, through nbclient), predicting with TTA leaves no empty progress bar behind.
"""
import os, re, sys, subprocess, time
from pathlib import Path
import pytest
from kaggle_kit.run import RunFolder

ROOT = Path(__file__).resolve().parents[1]

def readme_block(word:str="make_whales('whales')") -> str:
    "The README's python block containing `word`."
    blocks = re.findall(r'^```python\n(.*?)^```', (ROOT/'README.md').read_text(), re.S | re.M)
    found = [b for b in blocks if word in b]
    assert len(found) == 1, f'{len(found)} python blocks of README.md contain {word!r}'
    return found[0]

def clean_env(**kw) -> dict:
    "This environment without what the kit sets itself, plus `kw`: what a new user's process starts with."
    env = {k: v for k, v in os.environ.items() if k not in ('NO_ALBUMENTATIONS_UPDATE', 'PYTHONWARNINGS')
           and not k.startswith('KAGGLE_KIT_') and k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    return env | {'OMP_NUM_THREADS': '1', 'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true'} | kw

def test_workflow_cell_is_reproducible(tmp_path):
    "Two uninterrupted runs of the README's cell write the same submission, byte for byte."
    code = readme_block()
    assert code.count('fit_one_cycle(10,') == 1, code
    code = code.replace('fit_one_cycle(10,', 'fit_one_cycle(3,')   # 3 epochs show it as well as 10, in a third of the time
    dirs = [tmp_path/'a', tmp_path/'b']
    t0, procs = time.time(), []
    for d in dirs:   # at once: one thread each (CI has 2 cores), results do not depend on what runs beside them
        d.mkdir(); (d/'cell.py').write_text(code)
        procs.append(subprocess.Popen([sys.executable, 'cell.py'], cwd=d, env=clean_env(), text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    logs = [p.communicate(timeout=900)[0] for p in procs]
    for p, log in zip(procs, logs): assert p.returncode == 0, log[-4000:]
    print(f'two runs of the README cell at once: {time.time() - t0:.0f} s')
    a, b = (d/'submission.csv' for d in dirs)
    assert a.read_text().count('\n') == 451                 # header + 450 test images
    assert a.read_bytes() == b.read_bytes()

def test_metric_learning_cell_writes_a_checked_submission(tmp_path):
    "The README's ArcFace + kNN cell, verbatim but for the epochs: every fold done with its gallery, a checked submission."
    code = readme_block('embedding_learner')
    assert code.count('fit_one_cycle(40,') == 1, code
    (tmp_path/'cell.py').write_text(code.replace('fit_one_cycle(40,', 'fit_one_cycle(1,'))
    r = subprocess.run([sys.executable, 'cell.py'], cwd=tmp_path, env=clean_env(), text=True, capture_output=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert 'have not learned the classes' in r.stderr, r.stderr[-3000:]   # one epoch from scratch: the report says it learned nothing
    sub = (tmp_path/'submission.csv').read_text().splitlines()
    test = (tmp_path/'flukes'/'test_labels.csv').read_text().splitlines()
    assert sub[0] == 'Image,Id' and len(sub) == len(test)   # one row per test image (save_submission checked the rest)
    runs = list(tmp_path.rglob('runs/flukes'))
    assert len(runs) == 1 and all(RunFolder(runs[0]).file(n, k).exists() for k in (0, 1) for n in ('done', 'gallery')), runs

def test_competition_cell_writes_a_checked_submission(tmp_path):
    "The README's any-competition cell, verbatim but for the epochs: ints 0-4 in the sample's order, the metric in the report."
    code = readme_block('competition_learner')
    assert code.count('fit_one_cycle(5,') == 1, code
    (tmp_path/'cell.py').write_text(code.replace('fit_one_cycle(5,', 'fit_one_cycle(2,') + "\nprint(rep.to_string())\n")
    r = subprocess.run([sys.executable, 'cell.py'], cwd=tmp_path, env=clean_env(), text=True, capture_output=True, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "metric     'qwk'" in r.stdout and 'qwk_tuned' in r.stdout, r.stdout[-3000:]   # the decisions printed, the metric reported
    sub, sample = ((tmp_path/f).read_text().splitlines() for f in ('submission.csv', 'aptos/sample_submission.csv'))
    assert sub[0] == 'id_code,diagnosis' and [l.split(',')[0] for l in sub] == [l.split(',')[0] for l in sample]
    assert {l.split(',')[1] for l in sub[1:]} <= set('01234')

WARNINGS = ['torch.jit.script', 'Albumentations', 'albumentations']

@pytest.mark.parametrize('mod', ['kaggle_kit.all', 'kaggle_kit.data', 'kaggle_kit.cli'])
def test_import_is_quiet(mod):
    "No deprecation warning from torch through fastai, no update check (a request to PyPI and a warning) by albumentations."
    code = ("import sys\n"
            "reqs = []\n"
            "sys.addaudithook(lambda ev, args: reqs.append(args[0]) if ev in ('urllib.Request', 'socket.connect') else None)\n"
            f"import {mod}\n"
            "print('REQUESTS', reqs)\n")
    r = subprocess.run([sys.executable, '-W', 'default', '-c', code], capture_output=True, text=True, timeout=300,
                       env=clean_env(), cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    assert 'REQUESTS []' in r.stdout, r.stdout
    for w in WARNINGS: assert w not in r.stderr, r.stderr

NB_CELLS = ["""
from kaggle_kit.all import *
path = make_whales('whales', size=16)
df = add_folds(pd.read_csv(path/'train.csv'), 'stratified', n_folds=2, label_col='Id', fn_col='Image')
def learner_fn(fold):
    dls = get_dls(df, path/'train', fold, size=16, bs=32, drop_classes=['new_whale'],
                  batch_tfms=Normalize.from_stats(*imagenet_stats))
    return timm_learner(dls, 'test_resnet', loss_func=CrossEntropyLossKnown(), cbs=SeededDLCallback())
learn = learner_fn(0)
learn.fit(1)
""", "p = tta_preds(learn, n=2)",
"""
test_df = pd.read_csv(path/'sample_submission.csv')[['Image']]
rep = run_cv(df, learner_fn, lambda l, cbs: l.fit(1, cbs=cbs), 'run', test_df=test_df, test_folder=path/'test',
             predict=lambda l, dl: l.tta(dl=dl, n=2))
""", """
import time
clock = SessionClock(limit_h=1/3600, start=time.time() - 60)   # no session time left: the first fold stops
try: run_cv(df, learner_fn, lambda l, cbs: l.fit(1, cbs=cbs), 'run2', ckpt_kwargs=dict(clock=clock))
except SessionLimitReached: pass
"""]

def test_notebook_leaves_no_empty_bar(tmp_path):
    """A kernel runs a fit, `tta_preds` and `run_cv` with fastai's `tta` (finished, then stopped by the session limit).
    (A bare `learn.tta` is fastai's own, with its empty bar: the kit no longer replaces fastai's method.)"""
    nbformat, nbclient = pytest.importorskip('nbformat'), pytest.importorskip('nbclient')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in NB_CELLS])
    old = os.environ.copy()
    os.environ.clear(); os.environ.update(clean_env())   # the kernel inherits this process's environment
    try: nbclient.NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}).execute()
    finally: os.environ.clear(); os.environ.update(old)
    for i, c in enumerate(nb.cells):
        for o in c.outputs:   # nbclient applies `update_display_data`: what is left on screen once the cell is done
            html = o.get('data', {}).get('text/html', '')
            assert '<progress' not in html, (i, c.source, html[:500])
