#!/usr/bin/env bash
# The one command a GPU session runs (issue 26), in the repository root of the device machine, as an internet-off
# Kaggle notebook would: the offline bundle (.gpu/wheels.tar.xz, built here by `python3 bench/gpu.py --prepare`)
# installed with `pip install --no-index` into the image's own Python, torch checked untouched, `kaggle-kit demo` on
# its smallest settings, the fold hashes (tests/test_fold_hashes.py: another CPU, the same folds?), then
# `bench/gpu.py --device cuda`. About 7 minutes on an H100. Logs in $OUT (6 files):
#   env.txt       the machine, the image's Python, glibc and packages before the install
#   install.log   pip's install and `pip check`, torch before/after
#   demo.log      kaggle-kit demo
#   folds.log     tests/test_fold_hashes.py: each strategy's fold hash against CI's machine's
#   gpu.log       bench/gpu.py --device cuda
#   verdicts.txt  every VERDICT line, and what each step returned
# KK_PARTS=resume,speed,ckpt,knn (default all) runs some parts of bench/gpu.py, e.g. on a rerun.
# Device call (bench/README.md, GPU): command "bash bench/gpu_device.sh", carry [".gpu/wheels.tar.xz"], timeout_s 600.
set -uo pipefail
export PYTHONUNBUFFERED=1 WANDB_MODE=offline WANDB_SILENT=true
OUT=${OUT:-/tmp/kk-out}; mkdir -p "$OUT"
PY=${PY:-python3}
T0=$(date +%s)
step() { echo "$(( $(date +%s) - T0 )) s: $*" | tee -a "$OUT/verdicts.txt"; }

{ nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c 'import sys, platform; print(sys.version, sys.executable, platform.libc_ver())'; ldd --version | head -1
  nproc; free -g | head -2; df -h /tmp | tail -1
  $PY -m pip list 2>/dev/null; } > "$OUT/env.txt" 2>&1

torch_id() { $PY - <<'EOF'
import hashlib, importlib.metadata as md
for n in ('torch', 'torchvision'):
    d = md.distribution(n); print(n, d.version, hashlib.sha256((d.read_text('RECORD') or '').encode()).hexdigest()[:16])
EOF
}
BEFORE=$(torch_id)
W=/tmp/kk-wheels; rm -rf $W; mkdir -p $W
tar -C $W -xJf .gpu/wheels.tar.xz || { step "FAILED: no .gpu/wheels.tar.xz (carry it: bench/README.md, GPU)"; exit 1; }
step "bundle unpacked: $(ls $W/*.whl | wc -l) wheels"
{ echo "torch before: $BEFORE"
  $PY -m pip install --no-index --find-links $W kaggle-kit; echo "pip install exit $?"
  $PY -m pip check; echo "pip check exit $?"
  echo "torch after: $(torch_id)"; } > "$OUT/install.log" 2>&1
AFTER=$(torch_id)
grep -q "pip install exit 0" "$OUT/install.log" && step "offline install of the bundle: ok" || { step "FAILED: offline install (install.log)"; tail -30 "$OUT/install.log"; exit 1; }
[ "$BEFORE" = "$AFTER" ] && step "VERDICT the offline bundle leaves torch untouched: met ($AFTER)" \
                         || step "VERDICT the offline bundle leaves torch untouched: NOT met (before: $BEFORE; after: $AFTER)"

# the kit the bundle installed is the tree's as of `--prepare`; if the tree changed since, run the tree's code
SITE=$($PY -c 'import kaggle_kit, os; print(os.path.dirname(kaggle_kit.__file__))')
if diff -rq --exclude=__pycache__ kaggle_kit "$SITE" >/dev/null; then step "installed kit == this tree's kaggle_kit"
else step "installed kit differs from this tree's (the bundle is older): running the tree's kaggle_kit"; export PYTHONPATH=$PWD; fi

D0=$(date +%s)
timeout 150 kaggle-kit demo --out /tmp/kk-demo --n-folds 1 --epochs 2 --no-tta --quiet > "$OUT/demo.log" 2>&1
RC=$?; step "kaggle-kit demo (1 fold, 2 epochs): exit $RC in $(( $(date +%s) - D0 )) s"
[ $RC = 0 ] && grep -q "test MAP@5" "$OUT/demo.log" && step "VERDICT kaggle-kit demo runs on the image from the offline bundle: met" \
             || step "VERDICT kaggle-kit demo runs on the image from the offline bundle: NOT met (demo.log)"

timeout 60 $PY tests/test_fold_hashes.py > "$OUT/folds.log" 2>&1   # same ids and seed, same folds on this other CPU?
step "fold hashes against CI's machine: exit $? (folds.log)"; grep "^VERDICT" "$OUT/folds.log" >> "$OUT/verdicts.txt"

timeout 420 $PY bench/gpu.py --device cuda --parts "${KK_PARTS:-resume,speed,ckpt,knn}" --out /tmp/kk-gpu 2>&1 | tee "$OUT/gpu.log" | grep -E "^(VERDICT|PART|==)"
step "bench/gpu.py exit ${PIPESTATUS[0]}"
grep "^VERDICT" "$OUT/gpu.log" >> "$OUT/verdicts.txt"
cat "$OUT/verdicts.txt"
