"""The whale tutorial survives "Run all" after a disconnect: run in a real Jupyter kernel in a fresh folder (its
`./working` is where the data and the run live), killed during training or stopped by a session budget, then run
again in a new kernel, it writes the submission of an uninterrupted run, byte for byte.

Five Run alls in all, about a minute each on an idle CPU (the quick configuration: 2 folds of 4 epochs, TTA)."""
import os, json, time, signal, inspect
from pathlib import Path
import pytest
from nb_run import run_all, cell_text, failed_cells, DeadKernelError, CellExecutionError
from kaggle_kit.checkpoint import TimedCheckpoint
from kaggle_kit.run import RunFolder, ckpt_files, read_status

NB = Path(__file__).resolve().parents[1]/'nbs'/'tutorials'/'whale.ipynb'
RUN = Path('working')/'runs'/'whale'   # the tutorial's RUN, relative to the notebook's working directory

def state(fold_dir):
    try: st = read_status(fold_dir)
    except (OSError, ValueError): return None
    return None if st is None else st['state']

@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    "An uninterrupted Run all: its submission's bytes, and when fold 0 trained (seconds after the kernel started)."
    cwd, seen = tmp_path_factory.mktemp('whale-ref'), {}
    def watch(pid, stop, t0):
        fold0 = RunFolder(cwd/RUN).fold_dir(0)
        while not stop.wait(0.05):
            if 'ckpt' not in seen and ckpt_files(fold0): seen['ckpt'] = time.time() - t0
            if 'done' not in seen and state(fold0) == 'done': seen['done'] = time.time() - t0
    t = time.time()
    nb, err, _ = run_all(NB, cwd, watch=watch)
    assert err is None, err
    assert seen.keys() == {'ckpt', 'done'}, seen
    return dict(sub=(cwd/RUN/'submission.csv').read_bytes(), time=time.time() - t, **seen)

def test_uninterrupted(reference):
    assert reference['sub'].startswith(b'Image,Id\n')
    print(f"Run all: {reference['time']:.0f} s; fold 0 trained from {reference['ckpt']:.0f} s to {reference['done']:.0f} s")

def test_kill_then_run_all(reference, tmp_path):
    "SIGKILL the kernel as soon as a checkpoint exists, then Run all in a new kernel: the same submission."
    killed = []
    def watch(pid, stop, t0):
        while not stop.wait(0.05):
            r = RunFolder(tmp_path/RUN)
            if any(r.checkpoints(k) for k in r.started):
                os.kill(pid, signal.SIGKILL); killed.append(time.time() - t0); return
    nb, err, _ = run_all(NB, tmp_path, watch=watch)
    assert killed and isinstance(err, DeadKernelError), err
    assert not (tmp_path/RUN/'submission.csv').exists()
    nb, err, _ = run_all(NB, tmp_path)
    assert err is None, err
    assert (tmp_path/RUN/'submission.csv').read_bytes() == reference['sub']

def test_budget_stop_then_run_all(reference, tmp_path):
    """A session budget (`KAGGLE_KIT_SESSION_HOURS`) that ends while fold 0 trains: Run all ends at a cell that shows
    the resume message and no traceback. Run all again without the budget: the same submission."""
    margin = inspect.signature(TimedCheckpoint).parameters['margin'].default*60   # seconds kept free before the limit
    # seconds of session: until fold 0's first checkpoint in the reference run. Not later: under a changing load a run
    # can be much faster than the reference (its kernel started cold), and a budget at the middle of fold 0 was then
    # never reached. A slower run stops earlier in fold 0, or right at its start: each is a budget stop to resume from.
    left = reference['ckpt']
    start = time.time()
    env = dict(KAGGLE_KIT_SESSION_START=f'{start:.3f}', KAGGLE_KIT_SESSION_HOURS=f'{(margin + left)/3600:.9f}')
    nb, err, _ = run_all(NB, tmp_path, env=env)
    assert isinstance(err, CellExecutionError) and err.ename == 'SessionLimitReached', err
    [cell] = failed_cells(nb)
    out = cell_text(cell)
    assert 'Run the same cell' in out and 'Traceback' not in out, out
    print(f"stopped at cell {cell.id}:", *[t for o in cell.outputs if o.output_type == 'error' for t in o.traceback])
    assert not (tmp_path/RUN/'submission.csv').exists()
    nb, err, _ = run_all(NB, tmp_path)
    assert err is None, err
    assert (tmp_path/RUN/'submission.csv').read_bytes() == reference['sub']
