"""Issue 23, BAD 2: a checkpoint resumes only under the settings that wrote it. Each setting that changes what a fit
computes (the loss and its settings, the sampler, the augmentation, the model's construction settings, the fold
assignment, the seed, a training callback's settings) is refused with its field named, and nothing saved is touched; the same cell resumes.

    .venv/bin/python -m pytest tests/test_fingerprint.py -q
"""
import warnings
from pathlib import Path
import numpy as np, pytest, torch
from kaggle_kit.checkpoint import TimedCheckpoint
from kaggle_kit.store import CheckpointError
from kaggle_kit.env import seed_everything
from kaggle_kit.datasets import whale_learner, whale_dls   # the `whales` fixture is in conftest.py
from kaggle_kit.embed import embedding_learner
from kaggle_kit.resize import ProgressiveResize
from kaggle_kit.losses import FocalLossKnown, CrossEntropyLossKnown

def softmax(whales, df=None, loss=None, **kw):
    "The kit's test classifier; `loss` replaces its cross-entropy."
    seed_everything(0)
    learn = whale_learner(whales[0] if df is None else df, whales[1], fold=0, size=16, bs=64, **kw)
    if loss is not None: learn.loss_func = loss
    return learn

def embed(whales, **kw):
    "A metric-learning learner: GeM, neck, sub-center ArcFace head."
    seed_everything(0)
    return embedding_learner(whale_dls(whales[0], whales[1], 0, size=16, bs=64), 'test_resnet', emb_dim=16, **kw)

def fit(learn, run):
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(1, 5e-3, cbs=TimedCheckpoint(run, every=60, budget=False, search=[]))
    return learn

def files(run): return {f.name: f.read_bytes() for f in Path(run).iterdir() if f.is_file() and f.name != '.lock'}

def refused(learn, run, named):
    before = files(run)
    with pytest.raises(CheckpointError, match=rf"refusing to resume from it:(.|\n)*\n  {named}[^\n]*: checkpoint has (.|\n)*Use another run folder"):
        fit(learn, run)
    assert files(run) == before   # nothing saved is touched

@pytest.fixture(scope='module')
def softmax_run(whales, tmp_path_factory):
    run = tmp_path_factory.mktemp('softmax')/'run'
    fit(softmax(whales), run)
    return run

def reshuffled(df, seed):
    "The same rows with folds drawn from another seed."
    df = df.copy(); df['fold'] = np.random.RandomState(seed).permutation(len(df)) % 5
    return df

CLASSIFIER = {   # change -> the fingerprint field that names it
    'focal loss': (dict(loss=lambda: FocalLossKnown(gamma=2.)), 'loss'),
    'label smoothing': (dict(loss=lambda: CrossEntropyLossKnown(label_smoothing=0.1)), 'loss'),
    'class weights': (dict(loss=lambda: CrossEntropyLossKnown(weight=torch.ones(40))), 'loss'),
    'balanced sampler': (dict(dls_kwargs={'wgts': 'balanced'}), 'loader.train'),
    'another seed': (dict(seed=7), 'loader.train'),
    'no augmentation': (dict(train_tfms=False), 'tfms.train'),
    'dropout ps': (dict(ps=0.25), r'model\.1\.\d+'),
    'folds of another seed': (dict(df=lambda w: reshuffled(w[0], 1)), 'items.train'),
    'progressive resizing': (dict(cbs=lambda: [ProgressiveResize(initial=0.5)]), r'cbs\.progressive_resize'),
}

@pytest.mark.parametrize('change', CLASSIFIER)
def test_a_changed_classifier_setting_is_refused_naming_it(whales, softmax_run, change):
    kw, named = CLASSIFIER[change]
    kw = {k: (v(whales) if k == 'df' else v()) if callable(v) else v for k, v in kw.items()}
    refused(softmax(whales, **kw), softmax_run, named)

def test_the_same_classifier_cell_resumes(whales, softmax_run):
    ref = {k: v.clone() for k, v in softmax(whales).model.state_dict().items()}   # the fresh model, for contrast
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        learn = fit(softmax(whales), softmax_run)   # finished: its final weights are loaded
    assert any(not torch.equal(v, ref[k]) for k, v in learn.model.state_dict().items())

@pytest.fixture(scope='module')
def embed_run(whales, tmp_path_factory):
    run = tmp_path_factory.mktemp('embed')/'run'
    fit(embed(whales, learn_p=True, m=0.4), run)
    return run

EMBEDDING = {
    'ArcFace scale s': (dict(s=20.), 'model.head'),
    'ArcFace margin m': (dict(m=0.3), 'model.head'),
    'GeM p': (dict(p=4.), r'model\.pools\.\d+'),
    'sub-centers': (dict(k=3), 'model.head'),
    'label smoothing': (dict(label_smoothing=0.1), 'loss'),
}

@pytest.mark.parametrize('change', EMBEDDING)
def test_a_changed_embedding_setting_is_refused_naming_it(whales, embed_run, change):
    kw, named = EMBEDDING[change]
    refused(embed(whales, **{'learn_p': True, 'm': 0.4, **kw}), embed_run, named)

def test_the_same_embedding_cell_resumes_with_its_own_margin_and_p(whales, embed_run):
    learn = fit(embed(whales, learn_p=True, m=0.4), embed_run)
    assert torch.allclose(learn.model.head.m, torch.full_like(learn.model.head.m, 0.4))
