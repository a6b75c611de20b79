"""`wandb_init` with an API key and a W&B server that cannot be reached, in fresh processes (wandb reads its environment
once per process): a closed port, a server that accepts connections and never answers, and a server that answers but
never starts the run. Each run must go offline within a bounded time, say so naming the server, and leave no key in
`~/.netrc` (HOME is a temporary folder). Everything is on 127.0.0.1; `WANDB_MODE` is unset in the child, so the
online path is really taken."""
import os, sys, json, time, socket, threading, subprocess, contextlib, http.server
from pathlib import Path
import pytest

KEY = 'k' * 40   # a well-formed fake key
CHILD = """import json, sys, time, warnings
import wandb, fastai.callback.wandb   # imported before the clock starts: on a busy machine they take seconds
from kaggle_kit.env import wandb_init
t = time.monotonic()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    run = wandb_init(dir=sys.argv[1], timeout=float(sys.argv[2]))
seconds, mode = time.monotonic() - t, run.settings.mode
run.log({'loss': 1.0}); run.finish()
print(json.dumps(dict(mode=mode, seconds=seconds, warnings=[str(x.message) for x in w])), flush=True)
if sys.argv[3] == 'skip-exit':   # the offline run is finished and on disk; see test_server_that_never_starts_the_run
    import os; os._exit(0)"""

@contextlib.contextmanager
def silent_server():
    "Accepts connections (the kernel's backlog does) and never answers."
    s = socket.create_server(('127.0.0.1', 0))
    try: yield f'http://127.0.0.1:{s.getsockname()[1]}'
    finally: s.close()

@contextlib.contextmanager
def closed_port():
    s = socket.create_server(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    yield f'http://127.0.0.1:{port}'

@contextlib.contextmanager
def stuck_api():
    "Answers HEAD and GET at once, but never answers the API (POST): reachable, yet no run can start."
    stop = threading.Event()
    class H(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self): self.send_response(200); self.end_headers()
        do_GET = do_HEAD
        def do_POST(self): stop.wait(120)
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H); srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{srv.server_address[1]}'
    finally: stop.set(); srv.shutdown(); srv.server_close()

def start_child(tmp_path, url, timeout, exit='exit'):
    "Start `wandb_init(timeout=timeout)` in a fresh process with a key and `WANDB_BASE_URL=url`; returns (process, HOME, dir)."
    home, runs = tmp_path/'home', tmp_path/'runs'
    home.mkdir(parents=True)
    drop = ('KAGGLE_', 'COLAB_', 'WANDB_', 'NETRC')
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HOME=str(home), WANDB_API_KEY=KEY, WANDB_BASE_URL=url)   # WANDB_MODE unset: the key means online
    p = subprocess.Popen([sys.executable, '-c', CHILD, str(runs), str(timeout), exit], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    return p, home, runs

@pytest.fixture(scope='module')
def children(tmp_path_factory):
    "The three cases in three processes at once (each spends most of its time importing torch and fastai)."
    cases = dict(silent=(silent_server, 'exit'), closed=(closed_port, 'exit'), stuck=(stuck_api, 'skip-exit'))
    with contextlib.ExitStack() as stack:
        started = {}
        for k, (server, exit) in cases.items():
            url = stack.enter_context(server())
            started[k] = (url, *start_child(tmp_path_factory.mktemp(k), url, timeout=3, exit=exit))
        yield started
        for _, p, *_ in started.values(): p.kill(); p.wait()

def result(child, limit=90):
    "What the child reported, after checking that it ended within `limit` seconds and left no key behind."
    url, p, home, runs = child
    try: out, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired: pytest.fail(f'wandb_init against {url} had not returned after {limit} s')
    assert p.returncode == 0, err[-3000:]
    res = json.loads(out.splitlines()[-1])
    assert not (home/'.netrc').exists(), (home/'.netrc').read_text()
    leaks = [f for f in home.rglob('*') if f.is_file() and KEY.encode() in f.read_bytes()]
    assert not leaks, f'the API key was written to {leaks}'
    assert list((runs/'wandb').glob('offline-run-*')), 'no offline run for `wandb sync` to upload'
    return url, res

@pytest.mark.parametrize('case', ['silent', 'closed'])
def test_unreachable_server_goes_offline_at_once(children, case):
    url, res = result(children[case])
    assert res['mode'] == 'offline'
    assert res['seconds'] < 3 + 8, res          # the probe's timeout, then an offline start
    assert any(url in w and 'offline' in w for w in res['warnings']), res['warnings']

def test_server_that_never_starts_the_run_goes_offline(children):
    # The online attempt reached wandb, which tears it down when the process exits, sending its own telemetry to the
    # stuck server (about 45 s here): wandb's behaviour, not waited for in this test.
    url, res = result(children['stuck'])
    assert res['mode'] == 'offline'
    assert res['seconds'] < 3 + 25, res         # wandb's init_timeout, its account look-ups, then an offline start
    assert any(url in w and 'offline' in w and 'CommError' in w for w in res['warnings']), res['warnings']
