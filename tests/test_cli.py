"The `kaggle-kit` console script as a user runs it: a real process, real fastai training on the embedded data."
import torch, pytest
from conftest import run_cli

def weights(path): return torch.load(path, weights_only=True)

def same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

def test_help():
    r = run_cli('demo', '--help')
    assert '--budget' in r.stdout and '--workers' in r.stdout
    r = run_cli('nonsense', check=False)
    assert r.returncode == 2 and 'usage: kaggle-kit' in r.stdout

@pytest.mark.parametrize('workers', [0, 2])
def test_demo_is_bit_identical_for_a_seed(tmp_path, workers):
    args = ('--epochs', 1, '--workers', workers, '--seed', 7, '--quiet')
    r = run_cli('demo', '--out', tmp_path/'a', *args)
    assert 'accuracy on known individuals' in r.stdout
    run_cli('demo', '--out', tmp_path/'b', *args)
    a, b = weights(tmp_path/'a'/'fold_0'/'model.pth'), weights(tmp_path/'b'/'fold_0'/'model.pth')
    assert same(a, b)
    run_cli('demo', '--out', tmp_path/'c', '--epochs', 1, '--workers', workers, '--seed', 8, '--quiet')
    assert not same(a, weights(tmp_path/'c'/'fold_0'/'model.pth'))  # the seed matters: the check above can fail
