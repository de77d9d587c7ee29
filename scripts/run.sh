#!/usr/bin/env bash
# `make run`: check the Django project, look for the shared data set, and print
# how to split, train and evaluate with the ml package. The web site itself
# comes with the next issue.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV_PY="${VENV_PY:-.venv/bin/python}"
DATASET="../shared/datasets/sansuha-v1"

echo "==> Checking the Django project"
"$VENV_PY" manage.py check

echo
echo "==> Looking for the data set"
if [[ -d "$DATASET" ]]; then
    echo "Found: $DATASET"
else
    echo "WARNING: data set not found."
    echo "  looked for: $DATASET"
    echo "  (resolved:  $(realpath -m "$DATASET"))"
    echo "  Put the sansuha-v1 folder (cn/, jp/, manifest.csv) there before splitting."
fi

cat <<'TXT'

==> Training and evaluating with ml/
Activate the virtualenv first (. .venv/bin/activate), then:

  1. Split the data set into train/val/test folders under data/:
       python -m ml split ../shared/datasets/sansuha-v1 data --val 0.15 --test 0.15 --seed 0

  2. Train ResNet-18 (checkpoints and logs go to runs/resnet18/):
       python -m ml train --data data --out runs/resnet18

  3. Evaluate the best checkpoint on the held-out test split:
       python -m ml evaluate --checkpoint runs/resnet18/best.pt --data data --out runs/resnet18/eval

The gallery web site is not served yet; `make run` will start it once it exists.
TXT
