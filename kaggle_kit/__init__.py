"""Notebook-first Kaggle kit on fastai and timm: folds, albumentations, timm splitters, progressive resizing, timed checkpoints with exact resume, MAP@5 and new_whale thresholding, submissions.

Modules:

- `kaggle_kit.augment`: Image augmentation for fastai loaders: a resize whose size can change between epochs, albumentations as a fastai transform whose draws are not correlated, a default pipeline without black corners, and a grid to look at the draws.
- `kaggle_kit.checkpoint`: Save the whole training state every few minutes, stop cleanly before the session limit, and continue exactly where it stopped when the same cell runs again.
- `kaggle_kit.cli`: `kaggle-kit baseline`: any image competition's folder to a checked submission; `kaggle-kit demo`: the whole kit on the embedded data; `kaggle-kit bundle`: the kit's wheels for an offline Kaggle kernel.
- `kaggle_kit.competition`: A Kaggle competition's folder read once: its id column, where its images are and how an id names a file, the kind of target, the submission's shape, the label for "none of the known", and the metric.
- `kaggle_kit.cv`: Train every fold resumably, keep out-of-fold and test predictions keyed by image id, and report the CV score honestly.
- `kaggle_kit.data`: DataLoaders from a DataFrame and a fold, with albumentations, per-item deterministic augmentation, `new_whale` handling and oversampling.
- `kaggle_kit.datasets`: Kaggle-style identification data sets, no download: scikit-learn's handwritten digits as whales, and rendered whale flukes with a long tail and identity in fine detail.
- `kaggle_kit.embed`: Embeddings for identification: a timm body, GeM pooling over its last stages, a BatchNorm neck, and an ArcFace, sub-center ArcFace or per-class-margin head that trains with fastai and lives in the model.
- `kaggle_kit.env`: Where the code runs (Kaggle, Colab, local), where files live, how much session time is left, seeds, and fetching files.
- `kaggle_kit.folds`: One call that gives every row of a training table a fold: stratified, grouped, multilabel, and the same whatever the row order.
- `kaggle_kit.images`: Image files read as 8-bit RGB whatever they hold, file names as a table spells them, and every image of a table checked at once, with one error naming the bad ones.
- `kaggle_kit.infer`: Dihedral test-time augmentation, blending and stacking of out-of-fold predictions, and pseudo-labels.
- `kaggle_kit.knn`: Cosine nearest neighbours by blocks of matrix products, per-individual similarities averaged over models, and `new_whale` by a similarity threshold.
- `kaggle_kit.layouts`: Small stand-ins of six image competitions, no download, in their exact Kaggle layouts (files, columns, ids, sample submission), with images whose content sets the target and the hidden test labels.
- `kaggle_kit.losses`: Losses that leave the rows marked `IGNORE_IDX` (`new_whale`, unlabelled rows) out of the mean: cross-entropy, focal loss for imbalanced classes, soft F1 for tags.
- `kaggle_kit.metrics`: The fastai pieces that report MAP@k with `new_whale` at its best threshold while training, and every other image-competition metric (accuracy, AUC, QWK, RMSE, log loss, F1) from scikit-learn, as one `KaggleMetric` that scores, tunes and reports.
- `kaggle_kit.models`: timm architectures in fastai: weights from a local file, a Kaggle dataset or a link; parameter groups per stage or block from timm's `group_matcher`, so discriminative learning rates, layer decay and `freeze_to` follow the real depth.
- `kaggle_kit.ranking`: MAP@k as Kaggle scores it, the tie-aware top k of a score matrix, `new_whale` put back into the top k at a threshold, and the threshold search: the ranking that the metrics, the kNN retrieval and the submission files share.
- `kaggle_kit.resize`: Train on small images first and at full size for the final stretch: the schedule, a callback that resizes batches on the device or shrinks the item transforms, and its checkpointable state.
- `kaggle_kit.retrieval`: MAP@5 by kNN while an embedding model trains, and a metric-learning run's out-of-fold rows, test answers and submission by each image's nearest training images.
- `kaggle_kit.run`: The one owner of a run folder's layout: its file names, its `status.json`, its lock.
- `kaggle_kit.savemodel`: fastai's `SaveModelCallback` with its best model kept beside the checkpoints, checksummed, and loaded with `weights_only=True`.
- `kaggle_kit.state`: What a checkpoint saves of a fit, and what must match for a checkpoint to be resumed: each brought by the object that holds it.
- `kaggle_kit.store`: Checksummed files that survive a kill, and that never run code when they are loaded.
- `kaggle_kit.submit`: Submission files in the sample's exact format (any image competition's, from a `Competition`), checked before they are written.
- `kaggle_kit.train`: What a Kaggler adds to `fit_one_cycle`: an exponential moving average of the weights, proven under exact resume (the losses for imbalanced classes are in `kaggle_kit.losses`).
- `kaggle_kit.watch`: Score every checkpoint of a run in another process, so that training never pauses for validation.
- `kaggle_kit.weights`: Weights for timm models from a local file, a Kaggle dataset folder or a link: read safely, checked as far as the format allows, and loaded into a fastai or timm model all or nothing, with a note on what was loaded."""

__version__ = "0.1.0"

# Quiet by default. This file runs before any other kit module imports fastai or albumentations:
import os as _os, warnings as _warnings
_os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')   # else albumentations asks PyPI for a newer version at import, and warns
with _warnings.catch_warnings():   # fastai.layers decorates a few activations with `torch.jit.script`, which torch deprecates
    _warnings.filterwarnings('ignore', r'`torch\.jit\.script` is deprecated', FutureWarning, r'torch\.jit\._script')
    import fastai.layers
