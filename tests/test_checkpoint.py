"""Kill-and-resume tests: real training processes are SIGKILLed at random moments (and while a checkpoint is being
written), resumed, and their final weights compared bit for bit with an uninterrupted run."""
import os, sys, json, time, random, signal, resource, subprocess, shutil, tempfile
from pathlib import Path
import pytest, torch
from kaggle_kit.datasets import make_whales
from kaggle_kit.run import ckpt_pos, ckpt_files, read_status, CKPT_GLOB

HERE = Path(__file__).resolve().parent
SCRIPT = HERE/'train_resumable.py'
SEED = int(os.environ.get('KK_KILL_SEED', 20261122))
KILLS = int(os.environ.get('KK_KILLS', 3))     # random kill points per worker setting, besides the kill mid-write

@pytest.fixture(scope='module')
def data(tmp_path_factory): return make_whales(tmp_path_factory.mktemp('data')/'whales')

@pytest.fixture(scope='module')
def refs(tmp_path_factory): return tmp_path_factory.mktemp('refs')

def start(out, data, *args, **kw):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(out), str(data), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)

def run(out, data, *args, ok=True, **kw):
    p = start(out, data, *args, **kw)
    log, _ = p.communicate(timeout=900)
    if ok: assert p.returncode == 0, log[-4000:]
    return p.returncode, log

def weights(out): return torch.load(Path(out)/'final.pth', weights_only=True)
def same(a, b): return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

_refs = {}   # per refs folder: test_checkpoint_embed.py imports this with a folder of its own
def reference(data, tmp_root, workers, method='one_cycle', model='softmax'):
    "Final weights of an uninterrupted run without any checkpoint callback, and how long its training takes."
    key, args = (tmp_root, workers, method, model), ('--workers', workers, '--method', method, '--model', model)
    if key not in _refs:
        out = tmp_root/f'ref-{workers}-{method}-{model}'
        run(out, data, *args, '--no-ckpt')
        timed = tmp_root/f'timed-{workers}-{method}-{model}'          # training time: first checkpoint to the end
        p = start(timed, data, *args)
        while p.poll() is None and not ckpts(timed): time.sleep(0.01)
        t0 = time.time(); p.communicate(timeout=900)
        _refs[key] = weights(out), time.time() - t0
    return _refs[key]

def ckpts(out): return sorted(ckpt_files(out))

pos = ckpt_pos
def newest(out): return max((pos(f) for f in ckpts(out)), default=None)

def kill_at(p, out, target=None, extra=0., mid_write=False, timeout=300):
    """SIGKILL `p` `extra` s after it saved a checkpoint at or past `target` (fit, epoch, batch), or the moment it is
    writing a checkpoint file (`mid_write`). Returns what happened; `p.log` is the process's output."""
    def kill():
        if p.poll() is None: p.send_signal(signal.SIGKILL)
        p.log = p.communicate()[0]
    t0, first = time.time(), newest(out)
    while p.poll() is None and time.time() - t0 < timeout:
        if mid_write and list(Path(out).glob(f'.{CKPT_GLOB}*.tmp')):
            kill(); return 'killed while writing a checkpoint'
        cur = newest(out)
        if not mid_write and cur is not None and cur != first and cur >= target:
            time.sleep(extra)
            kill(); return f'killed {extra*1000:.0f} ms after checkpoint {cur}'
        time.sleep(0.0005 if mid_write else 0.002)
    kill()
    if p.returncode: raise AssertionError(f'the training process failed (exit {p.returncode}):\n{p.log[-3000:]}')
    return 'finished before the kill'

def killed_after(out, data, target, extra=0., *args, **kw):
    """Start a run in `out` and SIGKILL it `extra` s after it saved a checkpoint at or past `target`, checking that it
    really died of the SIGKILL with such a checkpoint on disk. Returns that newest checkpoint and the run's output."""
    p = start(out, data, *args, **kw)
    what = kill_at(p, out, target, extra)
    assert p.returncode == -signal.SIGKILL, f'{what}, yet exit {p.returncode} (not SIGKILL):\n{p.log[-3000:]}'
    f = max(ckpts(out), key=pos, default=None)
    assert f is not None and pos(f) >= target, f'{what}, yet the newest checkpoint is {f}, not at or past {target}'
    return f, p.log

def resumed_from(f, log):
    "Did the run whose output is `log` start from checkpoint `f`, to go on training or with its fit already finished?"
    return f'Resuming from {f}:' in log or f'{f}: this fit is already finished' in log

def kill_points(rng, n, epochs, n_iter):
    "`n` random (fit, epoch, batch) positions in increasing order, leaving a few batches to train after the last."
    g = sorted(rng.sample(range(1, epochs*n_iter - 3), n))
    return [(0, i // n_iter, i % n_iter + 1) for i in g]

def n_iter(refs, workers=0, method='one_cycle', model='softmax'): return max(pos(f)[2] for f in ckpts(refs/f'timed-{workers}-{method}-{model}'))

@pytest.mark.parametrize('workers', [0, pytest.param(2, marks=pytest.mark.slow)])   # 2 workers by default: test_resume_matrix
def test_sigkill_at_random_moments_then_resume_is_bit_identical(data, refs, tmp_path, workers):
    ref, dur = reference(data, refs, workers)
    assert same(weights(refs/f'timed-{workers}-one_cycle-softmax'), ref), "TimedCheckpoint alone changed the training"
    rng = random.Random(SEED + workers)
    out, report = tmp_path/'killed', []
    report.append(kill_at(start(out, data, '--workers', workers), out, mid_write=True))
    for target in kill_points(rng, KILLS, 2, n_iter(refs, workers)):
        report.append(f'target {target}: ' + kill_at(start(out, data, '--workers', workers), out, target, rng.uniform(0, 0.1)))
    print(f'\nworkers={workers}, KK_KILL_SEED={SEED}:', *report, sep='\n  ')
    assert sum(r.startswith('target') and 'killed' in r for r in report) == KILLS, report
    rc, log = run(out, data, '--workers', workers)
    assert 'Resuming from' in log
    assert same(weights(out), ref)

@pytest.mark.parametrize('method', [pytest.param('flat_cos', marks=pytest.mark.slow), 'fine_tune'])   # fine_tune: two fits
def test_kill_resume_other_schedules(data, refs, tmp_path, method):
    ref, dur = reference(data, refs, 0, method)
    out, rng = tmp_path/'killed', random.Random(SEED)
    fits = 2 if method == 'fine_tune' else 1
    prev = None                                    # the checkpoint the previous run was killed after
    for target in [(0, 0, rng.randrange(1, 20)), (fits - 1, 1, rng.randrange(1, 15))]:
        f, log = killed_after(out, data, target, rng.uniform(0, 0.1), '--method', method)
        print(f'target {target}: killed after {f.name}')
        if prev is not None: assert resumed_from(prev, log), f'did not resume from {prev}:\n{log[-3000:]}'
        prev = f
    rc, log = run(out, data, '--method', method)
    assert resumed_from(prev, log), f'did not resume from {prev}:\n{log[-3000:]}'
    assert same(weights(out), ref)

def test_budget_stop_then_same_command_continues(data, refs, tmp_path):
    ref, dur = reference(data, refs, 0)
    # half the reference's training time; should this run be much faster than the reference was (the machine less
    # loaded), it finishes inside its budget (then its weights must be the reference's): a new run with half the budget
    for i, frac in enumerate((0.5, 0.25, 0.125)):
        out = tmp_path/f'budget{i}'
        rc, log = run(out, data, '--budget-s', round(max(2., frac*dur), 2))
        if 'FINISHED' not in log: break
        assert same(weights(out), ref)
    assert 'Stopped for the session limit' in log and 'Run the same cell or command again' in log, log[-3000:]
    assert 'Traceback' not in log
    st = read_status(out)
    assert st['state'] == 'stopped' and st['reason'] == 'for the session limit'
    assert not (out/'final.pth').exists()
    rc, log = run(out, data)
    assert 'Resuming from' in log
    assert read_status(out)['state'] == 'done'
    assert same(weights(out), ref)

def test_truncated_newest_checkpoint_falls_back_to_previous(data, refs, tmp_path):
    ref, dur = reference(data, refs, 0)
    out = tmp_path/'trunc'
    kill_at(start(out, data), out, (0, 1, 5))
    fs = ckpts(out); assert len(fs) >= 2, fs   # keep=2, plus at most one written but not yet pruned at the kill
    fs[-1].write_bytes(fs[-1].read_bytes()[:1000])
    rc, log = run(out, data)
    assert 'Skipping a bad checkpoint' in log and fs[-1].name in log and f'Resuming from {fs[-2]}' in log, log[-3000:]
    assert same(weights(out), ref)

def test_mismatched_configuration_is_refused(data, refs, tmp_path):
    out = tmp_path/'mismatch'
    kill_at(start(out, data), out, (0, 0, 3))
    before = {f.name: f.read_bytes() for f in ckpts(out)}
    rc, log = run(out, data, '--epochs', 3, ok=False)
    assert rc != 0 and 'is from another configuration' in log and 'n_epoch: checkpoint has 2, now 3' in log, log[-3000:]
    assert {f.name: f.read_bytes() for f in ckpts(out)} == before   # nothing saved was lost

def _disk_full():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

def test_failing_saves_keep_the_previous_checkpoint(data, refs, tmp_path):
    ref, dur = reference(data, refs, 0)
    out = tmp_path/'full'
    kill_at(start(out, data), out, (0, 0, 10))
    before = {f.name: f.read_bytes() for f in ckpts(out)}
    assert before
    rc, log = run(out, data, ok=False, preexec_fn=_disk_full)   # every write fails: 'File too large', like a full disk
    assert 'Could not write checkpoint' in log and 'is intact; training goes on' in log, log[-3000:]
    assert {f.name: f.read_bytes() for f in ckpts(out)} == before
    run(out, data)                                               # space again: resume from the intact checkpoint
    assert same(weights(out), ref)

NOBODY = 65534   # the unprivileged user and group of Debian, Ubuntu and Kaggle's images

def _as_user():
    "Popen arguments running the child unprivileged, so that permission bits hold for it: as `nobody` under root."
    return dict(user=NOBODY, group=NOBODY, extra_groups=[]) if os.geteuid() == 0 else {}

def _read_only(folder):
    "Take write permission away on `folder` and everything in it, as on Kaggle's /kaggle/input."
    for d, _, fs in os.walk(folder):
        for f in fs: os.chmod(Path(d)/f, 0o444)
        os.chmod(d, 0o555)

def test_resume_from_a_read_only_copy(data, refs, tmp_path):
    "Kaggle: the previous version's output is attached read-only under /kaggle/input; the run continues from it."
    ref, dur = reference(data, refs, 0)
    first = tmp_path/'v1'
    last, _ = killed_after(first, data, (0, 1, 2))
    saved = {f.name: f.read_bytes() for f in ckpts(first)}
    root = Path(tempfile.mkdtemp(prefix='kk-read-only-'))   # not in tmp_path: only its owner may enter pytest's folders
    try:
        os.chmod(root, 0o755)
        ro, inp, work = root/'input', root/'data', root/'working'
        shutil.copytree(first, ro/'v1'); shutil.copytree(data, inp)
        _read_only(ro); _read_only(inp)
        work.mkdir()
        if os.geteuid() == 0: os.chown(work, NOBODY, NOBODY)
        probe = subprocess.run([sys.executable, '-c', f'open({str(ro/"v1"/"x")!r}, "wb")'], capture_output=True,
                               text=True, **_as_user())
        assert probe.returncode and 'PermissionError' in probe.stderr, f'{ro} is writable by the run: {probe}'
        env = {**os.environ, 'HOME': str(work), 'KAGGLE_KIT_TEST_SEARCH': str(ro/'v1')}
        second = work/'v2'
        rc, log = run(second, inp, env=env, **_as_user())
        assert f'Resuming from {ro/"v1"/last.name}:' in log, log[-3000:]
        assert 'Permission denied' not in log and 'Could not write' not in log, log[-3000:]   # nothing tried to write there
        assert same(weights(second), ref)
        assert {f.name: f.read_bytes() for f in ckpts(ro/'v1')} == saved   # the attached copy is as the first run left it
        assert newest(second) == (0, 2, 0) and all(pos(f) > pos(last) for f in ckpts(second)), ckpts(second)
    finally:
        for d, _, _ in os.walk(root): os.chmod(d, 0o755)   # an unprivileged owner could not delete it otherwise
        shutil.rmtree(root)
