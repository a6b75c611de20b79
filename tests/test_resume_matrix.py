"""The exact-resume matrix: each training recipe a Kaggler adds to a fit (fastai's `MixUp`, `CutMix`,
`GradientAccumulation`, mixed precision in bf16 and fp16, `EarlyStoppingCallback`, `SaveModelCallback`, the kit's
`EMACallback`, `fine_tune`'s two fits) is trained in a real process, SIGKILLed at seeded random points (mid-epoch
included), resumed, and its final weights compared bit for bit with an uninterrupted run of the same recipe.

    python3 dev.py test tests/test_resume_matrix.py            # the default rows
    python3 dev.py test tests/test_resume_matrix.py -m slow    # the others (KK_MATRIX_KILLS=5 kill points a row)

The kill points of a row are seeded from KK_KILL_SEED and the row's name, and printed (`-s` shows them)."""
import os, signal, random
import pytest
from kaggle_kit.store import load_checkpoint
from test_checkpoint import start, run, weights, same, ckpts, pos, kill_at, kill_points, resumed_from, SEED

KILLS = int(os.environ.get('KK_MATRIX_KILLS', 5))   # kill points a row
N_ITER = 20   # kill targets stay within the first 20 batches of an epoch (the embedded whales give 23)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from kaggle_kit.datasets import make_whales
    return make_whales(tmp_path_factory.mktemp('data')/'whales')

def matrix_row(data, tmp, recipe, workers=0, method='one_cycle', epochs=2, fits=1, kill_epochs=None, need=None):
    """Run `recipe` uninterrupted, then killed at `KILLS` seeded points (in its first `kill_epochs` epochs) and resumed
    each time; assert the final weights are bit-identical. `need(state)` says a checkpoint holds the state the row is
    about: if the kills left none, the last resume starts from the newest one that does, its newer files deleted, which
    is what a kill a batch or two earlier leaves. Returns the states resumed from, and the report."""
    args = ('--workers', workers, '--recipe', recipe, '--method', method, '--epochs', epochs)
    run(tmp/'ref', data, *args, '--no-ckpt')
    want, out = weights(tmp/'ref'), tmp/'killed'
    rng, report, states, prev = random.Random(f'{SEED}-{recipe}-{workers}-{method}'), [], [], None
    targets = sorted((f, *t[1:]) for f in range(fits) for t in kill_points(rng, KILLS, kill_epochs or epochs, N_ITER)[f::fits])
    for target in targets:
        p = start(out, data, *args)
        what = kill_at(p, out, target, rng.uniform(0, 0.08))
        assert p.returncode == -signal.SIGKILL, f'target {target}: {what}, exit {p.returncode}\n{p.log[-3000:]}'
        f = max(ckpts(out), key=pos)
        if prev is not None: assert resumed_from(prev, p.log), f'did not resume from {prev}:\n{p.log[-3000:]}'
        report.append(f'target {target}: {what}'); states.append(load_checkpoint(f)); prev = f
    if need and not any(map(need, states)):
        fs = sorted(ckpts(out), key=pos, reverse=True)
        f = next((f for f in fs if need(load_checkpoint(f))), None)
        assert f is not None, f'{recipe}: no checkpoint holds the state this row is about: {fs}'
        for g in fs[:fs.index(f)]: g.unlink()
        report.append(f'resumed from {f.name}, the newer {fs.index(f)} deleted'); states.append(load_checkpoint(f)); prev = f
    print(f'\n{recipe} {method} workers={workers} KK_KILL_SEED={SEED}:', *report, sep='\n  ')
    rc, log = run(out, data, *args)
    assert resumed_from(prev, log), f'did not resume from {prev}:\n{log[-3000:]}'
    assert same(weights(out), want), f"{recipe}: the resumed weights differ from the uninterrupted run's"
    return states, report

def mid_accumulation(st): return st['learn']['cbs']['gradient_accumulation']['count'] > 0

def test_recipes_together(data, tmp_path):
    "A training cell as Kaggle kernels write it: MixUp, gradient accumulation, EMA, early stopping and the best model kept."
    states, report = matrix_row(data, tmp_path, 'mixup,grad_acc,ema,early_stop,save_model', workers=2, epochs=4,
                                kill_epochs=3, need=mid_accumulation)
    assert sum('killed' in r for r in report) == KILLS, report
    later = [s['learn']['cbs'] for s in states if s['epoch'] >= 1]   # after a validation: a best value, an EMA going on
    assert later and all(c['ema']['step'] > 0 and c['save_model']['best'] < float('inf') for c in later), report
    assert any(mid_accumulation(s) for s in states)

ROWS = [   # recipe, epochs, epochs the kills fall in, what a checkpoint resumed from must hold for the row to test its name
    ('mixup', 2, 2, None),
    ('cutmix', 2, 2, None),
    ('grad_acc', 2, 2, mid_accumulation),                                                     # between two steps
    ('bf16', 2, 2, None),
    ('fp16', 2, 2, lambda st: st['learn']['scaler'] is not None and float(st['learn']['scaler']['scale']) != 2.**8),
    ('early_stop', 4, 3, lambda st: st['learn']['cbs']['early_stopping']['wait'] > 0),       # stops after epoch 3 of 4
    ('save_model', 2, 2, lambda st: st['learn']['cbs']['save_model']['best'] < float('inf')),
    ('ema', 2, 2, lambda st: st['learn']['cbs']['ema']['step'] > 0),
]

@pytest.mark.slow
@pytest.mark.parametrize('workers', [0, 2])
@pytest.mark.parametrize('recipe,epochs,kill_epochs,need', ROWS, ids=[r[0] for r in ROWS])
def test_recipe_kill_resume(data, tmp_path, recipe, epochs, kill_epochs, need, workers):
    states, report = matrix_row(data, tmp_path, recipe, workers=workers, epochs=epochs, kill_epochs=kill_epochs, need=need)
    assert sum('killed' in r for r in report) == KILLS, report
    if need: assert any(map(need, states)), report

@pytest.mark.slow
def test_fine_tune_with_ema_kill_resume(data, tmp_path):
    "`fine_tune`'s two fits (frozen, then unfrozen) with the EMA going on across them."
    states, report = matrix_row(data, tmp_path, 'ema', method='fine_tune', epochs=2, fits=2)
    assert sum('killed' in r for r in report) == KILLS, report
    assert {s['fit'] for s in states} == {0, 1}, report
