"""`run_cv` against what a notebook's environment and a second process can do to it (issue 14, items 8 and 10):
leftover `torchrun` variables must fail within a bounded time, not wait a day for peers that never come; a second
`run_cv` on a run folder another process is using must fail at once, not overwrite its files."""
import os, sys, time, socket, subprocess, textwrap
from pathlib import Path
import pytest, pandas as pd
from kaggle_kit.run import RunFolder

DF = "pd.DataFrame({'Image': ['a.png', 'b.png', 'c.png', 'd.png'], 'fold': [0, 1, 0, 1]})"
DIST = ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'TORCHELASTIC_RUN_ID')

def clean_env(**kw):
    "This process's environment without any process-group variables, plus `kw`."
    env = {k: v for k, v in os.environ.items() if k not in DIST}
    return env | {'OMP_NUM_THREADS': '1', 'WANDB_MODE': 'offline', 'WANDB_SILENT': 'true'} | {k: str(v) for k, v in kw.items()}

def python(code, *args, env=None, **kw):
    "Start `code` in a new Python process (stdout and stderr as text)."
    return subprocess.Popen([sys.executable, '-c', textwrap.dedent(code), *map(str, args)], env=env or clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

LEFTOVER = f"""
    import sys, pandas as pd
    from kaggle_kit.cv import run_cv
    def learner_fn(fold): raise SystemExit('TRAINED')   # never reached: no peer ever joins
    run_cv({DF}, learner_fn, None, sys.argv[1])
"""

def test_leftover_torchrun_variables_fail_fast(tmp_path):
    "WORLD_SIZE=2 RANK=0 left in a notebook: rank 0 would wait for a rank 1 that never starts."
    t0 = time.time()
    p = python(LEFTOVER, tmp_path/'run', env=clean_env(WORLD_SIZE=2, RANK=0, MASTER_ADDR='127.0.0.1', MASTER_PORT=free_port(),
                                                       KAGGLE_KIT_PEER_TIMEOUT=5))
    try: out, err = p.communicate(timeout=150)   # without the peer timeout: a day (gloo's 24 h)
    finally:
        if p.poll() is None: p.kill(); p.wait()
    assert p.returncode != 0 and 'TRAINED' not in out + err, err[-3000:]
    assert 'none joined within 5 s' in err and 'WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=' in err, err[-3000:]
    assert 'TORCHELASTIC_RUN_ID is not set' in err and 'torchrun --nproc_per_node' in err, err[-3000:]
    assert "os.environ.pop(k, None)" in err and 'KAGGLE_KIT_PEER_TIMEOUT' in err, err[-3000:]
    assert not RunFolder(tmp_path/'run').file('run').exists()   # stopped before touching the folder
    assert time.time() - t0 < 120

WAITS = """
    import os, sys, time
    import torch.distributed as dist
    from kaggle_kit.cv import _procs, _on_rank0, _dist
    with _procs() as grp:
        if _dist()[0] == 1: time.sleep(8)   # e.g. rank 1 still trains its fold
        print(f'rank {_dist()[0]}: got', _on_rank0(lambda: 42, grp), flush=True)
"""

def test_short_peer_timeout_only_for_joining():
    "Under torchrun, a rank waiting for another longer than KAGGLE_KIT_PEER_TIMEOUT still gets its answer."
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                        '--no-python', sys.executable, '-c', textwrap.dedent(WAITS)],
                       env=clean_env(KAGGLE_KIT_PEER_TIMEOUT=3), capture_output=True, text=True, timeout=180)
    log = r.stdout + r.stderr
    assert r.returncode == 0 and 'rank 0: got 42' in log and 'rank 1: got 42' in log, log[-3000:]

HOLDER = f"""
    import sys, time, pandas as pd
    from pathlib import Path
    from kaggle_kit.cv import run_cv
    def learner_fn(fold): Path(sys.argv[2]).touch(); time.sleep(300)   # holds the run folder while 'training'
    run_cv({DF}, learner_fn, None, sys.argv[1])
"""

class _Stop(Exception): pass

def test_second_run_cv_on_a_folder_in_use_fails_at_once(tmp_path):
    from kaggle_kit.cv import run_cv
    run, ready = tmp_path/'run', tmp_path/'ready'
    df = eval(DF)
    def learner_fn(fold): raise _Stop(f'fold {fold} started')
    holder = python(HOLDER, run, ready)
    try:
        t0 = time.time()
        while not ready.exists():
            assert holder.poll() is None, holder.communicate()[1][-3000:]
            assert time.time() - t0 < 120; time.sleep(0.2)
        t0 = time.time()
        with pytest.raises(RuntimeError, match=rf'The run folder {run} is in use by another process \(PID {holder.pid}\)'):
            run_cv(df, learner_fn, None, run)
        assert time.time() - t0 < 10
    finally: holder.kill(); holder.wait()
    with pytest.raises(_Stop, match='fold 0 started'): run_cv(df, learner_fn, None, run)   # the OS freed the holder's lock
