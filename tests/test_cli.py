"The `kaggle-kit` console script as a user runs it: real processes, real fastai training on the embedded data."
import time, json
import torch, pytest
from conftest import run_cli
from kaggle_kit.run import RunFolder

FAST = ('--n-folds', 2, '--epochs', 2, '--size', 16, '--every', 0.02, '--quiet')

def weights(path): return torch.load(path, weights_only=True)
def same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_help():
    r = run_cli('demo', '--help')
    assert '--budget' in r.stdout and '--num-workers' in r.stdout and 'resiz' in r.stdout
    r = run_cli('nonsense', check=False)
    assert r.returncode == 2 and 'usage: kaggle-kit' in r.stdout

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An uninterrupted demo run with workers=0: its folder, its output, and the seconds it took"
    out, t = tmp_path_factory.mktemp('ref'), time.time()
    r = run_cli('demo', '--out', out, *FAST, '--num-workers', 0)
    return out, r.stdout, time.time() - t

def test_demo_summary_and_files(reference):
    out, log, _ = reference
    for s in ('MAP@5 without thresholding', 'MAP@5 with thresholding', 'new_whale threshold', 'known-individual accuracy'):
        assert s in log, log[-2000:]
    assert RunFolder(out).status()['state'] == 'done'
    for k in (0, 1): assert RunFolder(out).file('model', k).exists() and RunFolder(out).file('done', k).exists()
    assert (out/'submission.csv').read_text().startswith('Image,Id\n')

@pytest.mark.parametrize('workers', [0, 2])
def test_demo_is_bit_identical_for_a_seed(tmp_path, reference, workers):
    "The same seed gives the same weights and submission as the reference run (workers=0), with any worker count."
    run_cli('demo', '--out', tmp_path/'a', *FAST, '--num-workers', workers)
    ref = reference[0]
    for k in (0, 1): assert same(weights(RunFolder(tmp_path/'a').file('model', k)), weights(RunFolder(ref).file('model', k)))
    assert (tmp_path/'a'/'submission.csv').read_bytes() == (ref/'submission.csv').read_bytes()

def test_another_seed_gives_other_weights(tmp_path, reference):
    run_cli('demo', '--out', tmp_path, *FAST, '--num-workers', 0, '--seed', 43, '--n-folds', 1)
    assert not same(weights(RunFolder(tmp_path).file('model', 0)), weights(RunFolder(reference[0]).file('model', 0)))

def test_budget_stop_then_same_command_resumes_to_the_same_submission(tmp_path, reference):
    # the budget counts from the process start: give each run its start-up time (imports, measured now, so a loaded
    # machine gets more) plus 45% of the reference run's work (its time less the start-up): enough for the data set-up,
    # the margin (budget/10) and some training, so every run makes progress, and never the whole of it at once (a fixed
    # 8 s did it all in one run on a faster machine)
    t0 = time.time(); run_cli('demo', '--help'); start = time.time() - t0
    budget = (start + 0.45 * max(reference[2] - start, 5)) / 60
    runs = []
    for i in range(30):
        r = run_cli('demo', '--out', tmp_path, *FAST, '--num-workers', 0, '--budget', f'{budget:.4f}')
        st = RunFolder(tmp_path).status()
        runs.append(st['state'])
        if st['state'] == 'done': break
        assert 'Run the same cell or command again' in r.stdout and 'Traceback' not in r.stderr, r.stdout[-2000:]
    print('states of the runs:', runs)
    assert runs[-1] == 'done' and 'stopped' in runs, runs
    assert (tmp_path/'submission.csv').read_bytes() == (reference[0]/'submission.csv').read_bytes()

def test_demo_flukes_both_methods_side_by_side_then_again(tmp_path):
    "`--data flukes --method both`: two runs on the same folds, a submission each, the table; the same command again trains nothing."
    args = ('demo', '--out', tmp_path, '--data', 'flukes', '--method', 'both', '--n-folds', 1, '--epochs', 1, '--size', 32,
            '--no-tta', '--every', 0.02, '--quiet')
    r = run_cli(*args)
    assert 'top-5 recall, individuals with 1-2 training images' in r.stdout and 'kaggle-kit demo (arcface)' in r.stdout, r.stdout[-3000:]
    assert 'train_accuracy' in r.stdout and r.stderr.count('have not learned the classes') == 2, r.stderr[-3000:]   # 1 epoch: both warn
    st = RunFolder(tmp_path).status()
    assert st['state'] == 'done' and 0 <= st['arcface']['test_map5'] <= 1 and 0 <= st['softmax']['test_map5'] <= 1, st
    for m in ('softmax', 'arcface'):
        assert (tmp_path/m/'submission.csv').read_text().startswith('Image,Id\n')
        assert RunFolder(tmp_path/m).file('gallery', 0).exists() == (m == 'arcface')   # kNN's gallery: the embedding run only
    run = {m: json.loads(RunFolder(tmp_path/m).file('run').read_text()) for m in ('softmax', 'arcface')}
    assert run['softmax']['rows'] == run['arcface']['rows'], 'both methods must train on the same folds'
    subs = {m: (tmp_path/m/'submission.csv').read_bytes() for m in ('softmax', 'arcface')}
    stamps = {m: RunFolder(tmp_path/m).file('model', 0).stat().st_mtime_ns for m in ('softmax', 'arcface')}
    run_cli(*args)
    for m in subs:
        assert (tmp_path/m/'submission.csv').read_bytes() == subs[m]
        assert RunFolder(tmp_path/m).file('model', 0).stat().st_mtime_ns == stamps[m]   # finished folds are not trained again

def test_demo_refuses_an_unknown_data_set_or_method(tmp_path):
    for flag, value in (('--data', 'cats'), ('--method', 'triplet')):
        r = run_cli('demo', '--out', tmp_path, flag, value, check=False)
        assert r.returncode == 2 and f'{flag} must be' in r.stderr and value in r.stderr, r.stderr
    assert not (tmp_path/'data').exists()   # refused before anything is written
