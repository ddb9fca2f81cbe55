#!/usr/bin/env bash
# CIFAR-10 pixel-by-pixel generation: the MNIST recipe's stages (recipes/mnist/run.sh) with this
# folder's configs; 3,072 steps per image (32 x 32 pixels x RGB sub-pixels).
# CIFAR-10 has no offline copy: give --data-dir with the binary version's files
# (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) or --download to fetch them.
#
# Usage: ./run.sh [--config conf/cpu.yaml] [--data-dir DIR | --download] [--stage N] [--stop-stage N]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RECIPE_DIR=$here exec "$here/../mnist/run.sh" "$@"
