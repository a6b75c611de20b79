"""`kaggle-kit baseline` on a stand-in of each competition layout (`make_competition`): a real process from the
folder to a checked `submission.csv` in the sample's exact format, the report's metric equal to scikit-learn's on the
same out-of-fold predictions, and a SIGKILL in the middle of training resumed by the same command to the same file."""
import os, json, time, signal, subprocess
from pathlib import Path
import numpy as np, pandas as pd, pytest
from sklearn.metrics import roc_auc_score, cohen_kappa_score, mean_squared_error, accuracy_score
from conftest import run_cli, BIN
from kaggle_kit.layouts import make_competition
from kaggle_kit.ranking import map_at_k
from kaggle_kit.run import RunFolder

FAST = ('--n-folds', 2, '--epochs', 2, '--size', 32, '--tta', 2, '--every', 0.02, '--num-workers', 0, '--quiet')
# the Kaggle metric of each layout, on the OOF rows, written with scikit-learn alone (the kit must agree)
def _auc(t, p): return roc_auc_score(t, p[:, 1] if p.ndim == 2 and t.ndim == 1 else p, average='macro')
def _qwk(t, p): return cohen_kappa_score(t.astype(int), np.clip(np.floor(p.ravel() + .5), t.min(), t.max()).astype(int), weights='quadratic')
def _rmse(t, p): return mean_squared_error(t, p.ravel())**.5
def _acc(t, p): return accuracy_score(t, p.argmax(1))
LAYOUTS = {'plant': ([], 'auc', _auc), 'aptos': (['--metric', 'qwk'], 'qwk', _qwk), 'pawpularity': ([], 'rmse', _rmse),
           'melanoma': ([], 'auc', _auc), 'cassava': ([], 'accuracy', _acc), 'happywhale': ([], 'map5', None)}

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('comps')
    return {k: make_competition(root/k, k) for k in LAYOUTS}

def check_sub(f, path):
    "The submission has the sample's header, ids in its order, and values of the sample's kind"
    sub, sample = (pd.read_csv(x, dtype=str, keep_default_na=False) for x in (f, path/'sample_submission.csv'))
    assert list(sub.columns) == list(sample.columns)
    assert sub.iloc[:, 0].tolist() == sample.iloc[:, 0].tolist()
    return pd.read_csv(f), pd.read_csv(path/'sample_submission.csv')

@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_baseline(layout, data, tmp_path):
    args, name, ref = LAYOUTS[layout]
    r = run_cli('baseline', data[layout], '--out', tmp_path, *args, *FAST)
    assert 'change:' in r.stdout and 'add_folds:' in r.stdout, r.stdout[-3000:]   # every choice printed, with its override
    sub, sample = check_sub(tmp_path/'submission.csv', data[layout])
    rep = json.loads(RunFolder(tmp_path).file('report').read_text())
    run = RunFolder(tmp_path); oof = run.oof()
    if ref is not None:   # predictions are stored as float32: equal to float32's precision
        assert abs(rep['oof'][name] - ref(oof['targs'], oof['preds'])) <= 1e-6*max(1, abs(rep['oof'][name])), (rep['oof'], layout)
    truth = pd.read_csv(data[layout]/'test_labels.csv')
    if layout == 'aptos': assert sub.diagnosis.dtype.kind == 'i' and sub.diagnosis.between(0, 4).all()
    if layout == 'cassava':
        assert sub.label.dtype.kind == 'i' and set(sub.label) <= set(range(5))
        assert run.vocab == [0, 1, 2, 3, 4] and all(type(v) is int for v in run.vocab)   # int classes stay ints
    if layout in ('melanoma', 'pawpularity'): assert sub.iloc[:, 1].dtype.kind == 'f'
    if layout == 'plant': assert (sub.iloc[:, 1:].to_numpy() >= 0).all() and (sub.iloc[:, 1:].to_numpy() <= 1).all()
    if layout == 'happywhale':
        toks = sub.predictions.str.split()
        assert (toks.str.len() == 5).all() and 'new_whale' not in sub.predictions.str.cat(sep=' ')
        assert toks.str[0].eq('new_individual').any()   # the open set answered with the competition's own label
        t = truth.set_index('image').loc[sub.image, 'individual_id'].tolist()
        print(f"happywhale test MAP@5 {map_at_k(toks.tolist(), t):.3f}, OOF {rep['oof']['map5_tuned']:.3f}")

@pytest.mark.parametrize('layout', [l if l == 'aptos' else pytest.param(l, marks=pytest.mark.slow) for l in LAYOUTS])
def test_baseline_killed_then_resumed(layout, data, tmp_path):
    "SIGKILL while fold 0 trains (a checkpoint exists); the same command continues, to the uninterrupted run's file."
    cmd = [str(BIN/'kaggle-kit'), 'baseline', str(data[layout]), *LAYOUTS[layout][0], *map(str, FAST)]
    run_cli(*cmd[1:3], '--out', tmp_path/'ref', *cmd[3:])
    p = subprocess.Popen(cmd + ['--out', str(tmp_path/'run')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while p.poll() is None and not RunFolder(tmp_path/'run').checkpoints(0) and time.time() - t0 < 300: time.sleep(0.02)
    killed = p.poll() is None
    if killed: os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert killed and not (tmp_path/'run'/'submission.csv').exists()
    run_cli(*cmd[1:3], '--out', tmp_path/'run', *cmd[3:])
    assert (tmp_path/'run'/'submission.csv').read_bytes() == (tmp_path/'ref'/'submission.csv').read_bytes()

def test_baseline_names_a_bad_folder(tmp_path):
    r = run_cli('baseline', tmp_path/'nope', '--out', tmp_path/'o', check=False)
    assert r.returncode == 2 and 'does not exist' in r.stderr and 'Traceback' not in r.stderr, r.stderr
