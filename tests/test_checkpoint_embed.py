"""Kill-and-resume of a metric-learning fit: `tests/train_resumable.py --model embed` SIGKILLed mid-epoch, resumed, and
its final weights compared bit for bit with an uninterrupted run. A file of its own so that pytest-xdist runs it beside
`test_checkpoint.py` (whose helpers it uses) rather than after it."""
import random
import pytest
from test_checkpoint import SEED, data, refs, reference, weights, same, kill_points, n_iter, killed_after, run, resumed_from

@pytest.mark.parametrize('workers', [0, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_then_resume_of_a_metric_learning_fit_is_bit_identical(data, refs, tmp_path, workers):
    "An `embedding_learner` (learned GeM p, dynamic margins, sub-center ArcFace head, kNN validation) killed mid-epoch."
    ref, dur = reference(data, refs, workers, model='embed')
    assert same(weights(refs/f'timed-{workers}-one_cycle-embed'), ref), "TimedCheckpoint alone changed the training"
    assert any(k.endswith('.p') for k in ref) and 'head.m' in ref   # the state a resume must bring back is in the weights
    rng, out, prev = random.Random(SEED + 10 + workers), tmp_path/'killed', None
    for target in kill_points(rng, 2, 2, n_iter(refs, workers, model='embed')):
        f, log = killed_after(out, data, target, rng.uniform(0, 0.1), '--workers', workers, '--model', 'embed')
        print(f'workers={workers} target {target}: killed after {f.name}')
        if prev is not None: assert resumed_from(prev, log), f'did not resume from {prev}:\n{log[-3000:]}'
        prev = f
    rc, log = run(out, data, '--workers', workers, '--model', 'embed')
    assert resumed_from(prev, log), f'did not resume from {prev}:\n{log[-3000:]}'
    assert same(weights(out), ref)
