#!/usr/bin/env bash
# The CPU dry run of scripts/gpu_run.sh, end to end, as a GPU node would run it:
#
#   make gpu-dry-run                        (PROFILE=smoke; PROFILE=preflight adds a CIFAR-10 decode)
#
#   1. a bundle for this machine's Python (scripts/gpu_bundle.sh with its PYTHON_VERSION)
#   2. a "node": a fresh virtual environment with what the GPU nodes' python3 holds and the kit needs
#      (torch, torchvision, numpy, pandas, matplotlib, seaborn, tqdm, scikit-learn, pillow, at the pins of
#      requirements.txt, and the dependencies the bundle left out as provided), but no notebook packages
#   3. scripts/gpu_run.sh PROFILE with that node's python, and a look inside the archive it packed
#
# Everything lands in .gpu-dry-run/ (git-ignored); the node environment is kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-smoke}
HOST_PYTHON=${HOST_PYTHON:-python3}
work=.gpu-dry-run
mkdir -p $work
started=$SECONDS

version=$("$HOST_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "== 1. bundle for CPython $version"
BUNDLE=$work/bundle PYTHON_VERSION=$version TARGET_PYTHON=$HOST_PYTHON bash scripts/gpu_bundle.sh >$work/bundle.log 2>&1 \
    || { cat $work/bundle.log; exit 1; }
tail -1 $work/bundle.log

echo "== 2. the node environment"
if [[ ! -x $work/node/bin/python ]]; then
    "$HOST_PYTHON" -m venv $work/node
fi
core=$(grep -E -i '^(torch|torchvision|numpy|pandas|matplotlib|seaborn|tqdm|scikit-learn|pillow)==' requirements.txt)
# shellcheck disable=SC2086  # one requirement per word
$work/node/bin/python -m pip install --quiet --disable-pip-version-check $core -r $work/bundle/wheels/provided.txt
if $work/node/bin/python -c 'import papermill' 2>/dev/null; then
    echo "gpu-dry-run: the node environment must not hold papermill: delete $work/node" >&2
    exit 1
fi

echo "== 3. scripts/gpu_run.sh $PROFILE"
rm -rf $work/out
status=0
PYTHON=$work/node/bin/python BUNDLE=$work/bundle scripts/gpu_run.sh "$PROFILE" $work/out || status=$?
archive=$(ls $work/out/*.tar.gz)
echo "== the archive, $archive ($(du -h "$archive" | cut -f1)):"
tar tzf "$archive" | sort
echo "gpu-dry-run: gpu_run.sh exited $status; $((SECONDS - started)) s in all"
exit $status
