"""The documentation site as a reader gets it: built by `python3 dev.py docs` (as the docs workflow builds it), served
under GitHub Pages' path `/kaggle-kit/`, and opened page by page in headless Chromium.

Every page: no console error, every image loaded, every link within the site to a page that exists and to an anchor
on it, code rendered (API pages). Search answers a query. The modules' public functions and classes each have their
entry where `kaggle_kit/_modidx.py` points, and every link of llms.txt is there. Screenshots of the home page, a
tutorial and an API page go to `_site_shots/` (CI keeps them as artifacts). The site shows the outputs the committed
notebooks store (`python3 dev.py docs --no-execute`: no notebook is run here); a notebook made here with a figure, a
table, text and a `show_doc` is built and opened too.

Chromium and its driver: Debian's `chromium` and `chromium-driver`, installed with apt-get when missing (as root, or
with `sudo -n`); a Chrome with `chromedriver` on PATH (GitHub's runners) does as well.
"""
import functools, importlib, inspect, json, os, re, shutil, subprocess, sys, threading, time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE, SHOTS = ROOT/'_site', ROOT/'_site_shots'
BASE = '/kaggle-kit/'   # GitHub Pages serves the site there: a link that escapes it breaks on the real site
sys.path.insert(0, str(ROOT/'docs'))
pytestmark = pytest.mark.filterwarnings('ignore:.*Check CHANGES for Sphinx API')   # MyST's, on Sphinx 9
from make_site import pages, process_nb, sphinx

def _find_chromium():
    "(browser, driver) paths, or Nones"
    browser = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'))), None)
    driver = shutil.which('chromedriver')
    if driver is None and os.environ.get('CHROMEWEBDRIVER'):   # GitHub's runners keep it there
        driver = shutil.which('chromedriver', path=os.environ['CHROMEWEBDRIVER'])
    return browser, driver

def chromium():
    "Paths of a headless-capable Chromium and its chromedriver: Debian's, installed with apt-get when missing"
    browser, driver = _find_chromium()
    if browser and driver: return browser, driver
    sudo = [] if os.geteuid() == 0 else ['sudo', '-n'] if shutil.which('sudo') else None
    if shutil.which('apt-get') and sudo is not None:
        env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
        apt = lambda *a: subprocess.run([*sudo, 'apt-get', *a], env=env, capture_output=True, text=True, timeout=900)
        print('installing chromium and chromium-driver with apt-get', flush=True)
        r = apt('install', '-y', '-q', '--no-install-recommends', 'chromium', 'chromium-driver')
        if r.returncode:   # a fresh machine's package lists may be missing or stale
            apt('update', '-q')
            r = apt('install', '-y', '-q', '--no-install-recommends', 'chromium', 'chromium-driver')
        browser, driver = _find_chromium()
        if not (browser and driver): pytest.fail(f'apt-get could not install chromium and chromium-driver:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}')
        return browser, driver
    pytest.fail('tests/test_site.py needs Chromium and chromedriver: `apt-get install chromium chromium-driver` (Debian), '
                'or a Chrome with `chromedriver` on PATH; this machine has neither, and no apt-get it may run')

@pytest.fixture(scope='module')
def site():
    "Build the site from the notebooks' stored outputs, running none (`python3 dev.py docs --no-execute`)"
    t = time.time()
    r = subprocess.run([sys.executable, ROOT/'dev.py', 'docs', '--no-execute'], cwd=ROOT, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, f'python3 dev.py docs exited {r.returncode}\n{r.stdout[-5000:]}\n{r.stderr[-5000:]}'
    print(f'site built in {time.time()-t:.0f}s', flush=True)
    return SITE

class _Handler(SimpleHTTPRequestHandler):
    "`SITE` under `BASE`, as GitHub Pages serves it; nothing outside it"
    def translate_path(self, path):
        p = urlsplit(path).path
        return super().translate_path('/' + p[len(BASE):]) if p.startswith(BASE) else str(SITE/'__outside_the_site__')
    def log_message(self, *args): pass

@pytest.fixture(scope='module')
def server(site):
    srv = ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Handler, directory=str(site)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}{BASE}'
    srv.shutdown(); srv.server_close()

@pytest.fixture(scope='module')
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    path, driver_path = chromium()
    opts = webdriver.ChromeOptions()
    opts.binary_location = path
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1280,900',
              '--disable-extensions', '--no-first-run'): opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()

# in the page: wait for every image (lazy ones too), then what the checks need
_PAGE_JS = '''
const done = arguments[arguments.length - 1];
const imgs = [...document.images];
imgs.forEach(i => { i.loading = 'eager'; });
Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })))
  .then(() => done({
    bad_imgs: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src),
    links: [...document.querySelectorAll('a[href]')].map(a => new URL(a.getAttribute('href'), document.baseURI).href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    pres: document.querySelectorAll('pre').length,
    figures: document.querySelectorAll('article img').length,
    entries: document.querySelectorAll('a.kk-source').length,
    title: document.title,
  }));
'''

def _rel(url, server): return unquote(urldefrag(url)[0][len(server):]) or 'index.html'

def _open(browser, url:str, html:Path, tries:int=3) -> dict:
    "What `_PAGE_JS` reads of page `url` (file `html`), once the browser's document holds every id the file has"
    # On a loaded machine Chromium has handed back a document still being built (no ids at all, or a long page's last
    # entries missing): wait for it, and open it again if it stays short, so that only a page missing them fails
    from selenium.webdriver.support.ui import WebDriverWait
    want = set(re.findall(r'\bid="([^"]+)"', html.read_text()))
    for i in range(tries):
        browser.get(url)
        WebDriverWait(browser, 30).until(lambda b: b.execute_script('return document.readyState') == 'complete')
        info = browser.execute_async_script(_PAGE_JS)
        if want <= set(info['ids']): break
        print(f'{url}: the document lacked {len(want - set(info["ids"]))} of its ids (try {i+1} of {tries})', flush=True)
    return info

@pytest.fixture(scope='module')
def visited(site, server, browser):
    "Every HTML page of the site opened in the browser: {page: what it holds, and its console errors}"
    SHOTS.mkdir(exist_ok=True)
    shots = {'index.html': 'home.png', 'tutorials/whale.html': 'tutorial-whale.png', 'folds.html': 'api-folds.png'}
    res, t = {}, time.time()
    for f in sorted(site.rglob('*.html')):
        page = f.relative_to(site).as_posix()
        info = _open(browser, server + page, f)
        info['errors'] = [e['message'] for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        if page in shots: browser.save_screenshot(str(SHOTS/shots[page]))
        res[page] = info
    print(f'opened {len(res)} pages in headless Chromium in {time.time()-t:.0f}s; screenshots in {SHOTS}', flush=True)
    return res

def test_every_page(visited):
    "The pages that make up the site are all there, load without a console error, and show all their images"
    want = {p.with_suffix('.html').as_posix() for p in pages().values()} | {'search.html', 'genindex.html'}
    assert not want - set(visited), f'pages missing from the site: {sorted(want - set(visited))}'
    errs = {p: i['errors'] for p, i in visited.items() if i['errors']}
    assert not errs, f'console errors: {json.dumps(errs, indent=1)}'
    imgs = {p: i['bad_imgs'] for p, i in visited.items() if i['bad_imgs']}
    assert not imgs, f'images that did not load: {json.dumps(imgs, indent=1)}'

def _stored_figures(nb:Path)->int:
    "Figures (PNG outputs) a notebook stores"
    cells = json.loads(nb.read_text())['cells']
    return sum('image/png' in o.get('data', {}) for c in cells for o in c.get('outputs', []))

def test_tutorials_show_their_figures(visited):
    "Each tutorial's page shows every figure its notebook stores (folds, augmentations, finder, CV...), loaded"
    tuts = {page.with_suffix('.html').as_posix(): nb for nb, page in pages().items() if page.parts[0] == 'tutorials'}
    assert len(tuts) >= 4, tuts
    for page, nb in tuts.items():
        n = _stored_figures(nb)
        assert n >= 3, f'{nb} stores {n} figures: run `python3 dev.py docs {nb}`'
        assert visited[page]['figures'] >= n and not visited[page]['bad_imgs'], (page, visited[page]['figures'], n)

def test_internal_links(visited, server):
    "Every link within the site reaches a file of it, and every #anchor an element of its page"
    bad = []
    for page, info in visited.items():
        for url in info['links']:
            if not url.startswith(server.split(BASE)[0]): continue   # another site
            if not url.startswith(server): bad.append(f'{page}: {url} leaves {BASE}'); continue
            target, anchor = _rel(url, server), unquote(urldefrag(url)[1])
            if target.endswith('/'): target += 'index.html'
            if not (SITE/target).is_file(): bad.append(f'{page}: {url} (no {target})')
            elif anchor and target.endswith('.html') and anchor not in visited[target]['ids']:
                bad.append(f'{page}: {url} (no #{anchor} on {target})')
    assert not bad, 'broken links:\n' + '\n'.join(sorted(set(bad)))

def test_api_pages(visited):
    "Each module's page shows code, and each public function and class has its entry where `_modidx` points"
    mods = [p for p in pages().values() if p.suffix == '.ipynb' and p.parts[0] != 'tutorials']
    assert len(mods) >= 20
    no_code = [p.as_posix() for p in mods if visited[p.with_suffix('.html').as_posix()]['pres'] < 1]
    assert not no_code, f'API pages without a code block: {no_code}'
    from kaggle_kit._modidx import d
    missing, n = [], 0
    for mod, syms in d['syms'].items():
        m = importlib.import_module(mod)
        for nm in getattr(m, '__all__', []):
            if not (inspect.isfunction(getattr(m, nm)) or inspect.isclass(getattr(m, nm))): continue   # constants
            page, _, anchor = d['syms'][mod][f'{mod}.{nm}'][0].partition('#')
            n += 1
            if anchor not in visited[page]['ids']: missing.append(f'{page}#{anchor}')
    assert n > 50 and not missing, f'{len(missing)} of {n} public symbols without their entry: {missing}'

def test_search(server, browser):
    "The built-in search finds a function by name"
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(server + 'search.html?q=add_folds')
    hits = WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, '#search-results ul.search li a'))
    assert any('folds.html' in h.get_attribute('href') for h in hits), [h.get_attribute('href') for h in hits]
    errs = [e['message'] for e in browser.get_log('browser') if e['level'] == 'SEVERE']
    assert not errs, errs

def test_md_pages_and_llms_txt(site):
    "Each page's markdown twin (the modules' `Docs:` links) and every link of llms.txt are in the site"
    doc_url = 'https://kaggle-kit.github.io/kaggle-kit/'
    links = re.findall(r'\]\((https://[^)]+)\)', (site/'llms.txt').read_text())
    assert links and all(l.startswith(doc_url) for l in links), links
    missing = [l for l in links if not (site/l[len(doc_url):]).is_file()]
    missing += [f'{p}.md' for p in (p.with_suffix('.html').as_posix() for p in pages().values()) if not (site/f'{p}.md').is_file()]
    assert not missing, missing

def _nb_with_outputs(path):
    "A module-style notebook whose cells store what a run leaves: a show_doc's markdown, text, a table, a figure"
    import base64, io, matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from nbdev.showdoc import show_doc
    from kaggle_kit.folds import add_folds
    fig, ax = plt.subplots(figsize=(2, 1.5)); ax.plot([0, 1, 4]); buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)
    md = lambda i, s: {'cell_type': 'markdown', 'id': f'md{i}', 'metadata': {}, 'source': s}
    code = lambda i, s, outs: {'cell_type': 'code', 'id': f'cc{i}', 'metadata': {}, 'execution_count': i, 'source': s, 'outputs': outs}
    cells = [md(0, '# Outputs\n\n> Stored outputs, shown as stored.'), code(1, '#| hide\nsecret = 1', [
                 {'output_type': 'stream', 'name': 'stdout', 'text': 'HIDDEN-OUTPUT\n'}]),
             md(2, '## The pieces'),
             code(3, 'show_doc(add_folds)', [{'output_type': 'display_data', 'metadata': {}, 'data': {
                 'text/markdown': show_doc(add_folds)._repr_markdown_(), 'text/plain': '<nbdev.showdoc.BasicMarkdownRenderer>'}}]),
             code(4, 'print("fold sizes")\ndf', [{'output_type': 'stream', 'name': 'stdout', 'text': 'STREAM-TEXT fold sizes\n'},
                 {'output_type': 'execute_result', 'execution_count': 4, 'metadata': {}, 'data': {'text/plain': 'a table',
                  'text/html': '<table class="dataframe"><tr><th>fold</th><td>0</td></tr></table>'}}]),
             code(5, 'plt.plot([0, 1, 4])', [{'output_type': 'display_data', 'metadata': {}, 'data': {'text/plain': '<Figure>',
                 'image/png': base64.b64encode(buf.getvalue()).decode()}}])]
    nb = {'cells': cells, 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))
    return path

def test_stored_outputs(tmp_path, browser):
    "A notebook's stored outputs are on its page (nothing is run): show_doc's markdown, text, a table, a loaded figure"
    from selenium.webdriver.common.by import By
    nb, shown = process_nb(_nb_with_outputs(tmp_path/'outputs.ipynb'))
    assert 'add_folds' in shown and not any('HIDDEN' in json.dumps(c) for c in nb['cells'])
    src = tmp_path/'src'; src.mkdir()
    (src/'outputs.ipynb').write_text(json.dumps(nb))
    (src/'index.md').write_text('# Home\n\n```{toctree}\noutputs\n```\n')
    html = sphinx(src, tmp_path/'build')
    info = _open(browser, (html/'outputs.html').as_uri(), html/'outputs.html')
    SHOTS.mkdir(exist_ok=True); browser.save_screenshot(str(SHOTS/'stored-outputs.png'))
    assert 'add_folds' in info['ids'] and info['entries'] == 1, info['ids']
    text = browser.find_element(By.TAG_NAME, 'article').text
    assert 'STREAM-TEXT fold sizes' in text and 'HIDDEN' not in text
    assert browser.find_elements(By.CSS_SELECTOR, 'article table.dataframe')
    imgs = browser.find_elements(By.CSS_SELECTOR, 'article img')
    assert len(imgs) == 1 and not info['bad_imgs'], info['bad_imgs']
    errs = [e['message'] for e in browser.get_log('browser') if e['level'] == 'SEVERE']
    assert not errs, errs

def test_broken_links_fail_the_build(tmp_path, capfd):
    "A link to a missing page, or to an anchor missing from its page, fails the build; links that hold do not"
    def build(name, links):
        src = tmp_path/name; src.mkdir()
        (src/'index.md').write_text(f'# Home\n\n## Part\n\n{links}\n\n```{{toctree}}\nother\n```\n')
        (src/'other.md').write_text('# Other\n\n## Part two\n')
        return sphinx(src, tmp_path/f'{name}-build')
    assert (build('good', '[a](other.md#part-two) [b](#part)')/'index.html').is_file()
    with pytest.raises(SystemExit, match='sphinx-build exited'): build('bad', '[a](other.md#nope) [b](missing.md) [c](#nowhere)')
    err = capfd.readouterr().err
    assert all(s in err for s in ("'nope'", "'missing.md'", "'nowhere'")), err
