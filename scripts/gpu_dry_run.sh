#!/usr/bin/env bash
# The CPU dry run of scripts/gpu_run.sh, end to end, as a GPU node would run it, with the node's Python
# and torch when asked, and the oldest numpy, pandas and matplotlib the kit supports (README, "Supported
# versions"): what passes here is what a node within that range runs.
#
#   make gpu-dry-run                        (PROFILE=smoke; PROFILE=preflight adds a CIFAR-10 decode)
#   NODE_PYTHON=/root/.pyenv/versions/3.12.1/bin/python3.12 NODE_TORCH=2.11.0 NODE_TORCHVISION=0.26.0 make gpu-dry-run
#
#   1. a bundle for the node Python's version (scripts/gpu_bundle.sh, downloaded by NODE_PYTHON)
#   2. a "node": a virtual environment of NODE_PYTHON (kept, one per Python and torch version) with torch
#      and torchvision (PyPI's CUDA builds, used on the CPU), numpy, pandas and matplotlib at their floors,
#      seaborn, tqdm, scikit-learn and pillow at the pins of requirements.txt, and the dependencies the
#      bundle left out as provided, but no notebook packages
#   3. scripts/gpu_run.sh PROFILE with that node's python, in a fresh work folder; OUTDIR is checked (at
#      most 8 files, no folder, every archive readable, the versions it reports are those installed)
#   4. the same call again: it resumes from the work folder and skips every step already done
#
# Settings (environment variables):
#   NODE_PYTHON       the node's CPython (default python3; the GPU nodes run 3.12)
#   NODE_TORCH        torch's version (default: requirements.txt's pin; the GPU nodes run 2.11.0)
#   NODE_TORCHVISION  torchvision's version (default: requirements.txt's pin; the GPU nodes run 0.26.0)
#   NODE_NUMPY, NODE_PANDAS, NODE_MATPLOTLIB   default: the kit's floors, 1.26.0, 2.2.0 and 3.10.0
#   PROFILE           smoke (default) or preflight; DEADLINE_S and NOTEBOOKS pass on to gpu_run.sh
#
# Everything lands in .gpu-dry-run/ (git-ignored): bundle-pyX.Y/, node-pyX.Y-torchV/ (about 5 GB with
# the CUDA libraries torch pulls), gpu-work/, out/ and out-resumed/.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-smoke}
NODE_PYTHON=${NODE_PYTHON:-${HOST_PYTHON:-python3}}
pin() { sed -n "s/^$1==//p" requirements.txt; }
NODE_TORCH=${NODE_TORCH:-$(pin torch)}
NODE_TORCHVISION=${NODE_TORCHVISION:-$(pin torchvision)}
NODE_NUMPY=${NODE_NUMPY:-1.26.0}
NODE_PANDAS=${NODE_PANDAS:-2.2.0}
NODE_MATPLOTLIB=${NODE_MATPLOTLIB:-3.10.0}
work=.gpu-dry-run
mkdir -p $work
started=$SECONDS
phase_started=$SECONDS
phase_end() { echo "-- $((SECONDS - phase_started)) s"; phase_started=$SECONDS; }

version=$("$NODE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || {
    echo "gpu-dry-run: NODE_PYTHON=$NODE_PYTHON does not run; give a CPython, e.g." \
        "NODE_PYTHON=/root/.pyenv/versions/3.12.1/bin/python3.12" >&2
    exit 1
}
bundle=$work/bundle-py$version
node=$work/node-py$version-torch$NODE_TORCH
echo "== 1. bundle for CPython $version ($NODE_PYTHON) in $bundle"
BUNDLE=$bundle PYTHON_VERSION=$version TARGET_PYTHON=$NODE_PYTHON bash scripts/gpu_bundle.sh >$work/bundle.log 2>&1 \
    || { cat $work/bundle.log; exit 1; }
tail -1 $work/bundle.log
phase_end

echo "== 2. the node environment $node"
if [[ ! -x $node/bin/python ]]; then
    "$NODE_PYTHON" -m venv "$node"
fi
others=$(grep -E -i '^(seaborn|tqdm|scikit-learn|pillow)==' requirements.txt)
# shellcheck disable=SC2086  # one requirement per word
"$node/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$NODE_TORCH" \
    "torchvision==$NODE_TORCHVISION" "numpy==$NODE_NUMPY" "pandas==$NODE_PANDAS" "matplotlib==$NODE_MATPLOTLIB" \
    $others -r "$bundle/wheels/provided.txt" || {
    echo "gpu-dry-run: the node environment could not be installed (above: pip's reason); the versions" \
        "asked for: torch $NODE_TORCH, torchvision $NODE_TORCHVISION, numpy $NODE_NUMPY, pandas $NODE_PANDAS," \
        "matplotlib $NODE_MATPLOTLIB" >&2
    exit 1
}
if "$node/bin/python" -c 'import papermill' 2>/dev/null; then
    echo "gpu-dry-run: the node environment must not hold papermill: delete $node" >&2
    exit 1
fi
phase_end

# check_outdir DIR: what the device tool brings back (at most 8 files, none in a folder), every archive
# readable, and the versions status.txt reports are the node's
check_outdir() {
    local dir=$1 count archive name want
    count=$(find "$dir" -mindepth 1 | wc -l)
    if ((count > 8)) || [[ -n $(find "$dir" -mindepth 1 ! -type f) ]]; then
        echo "gpu-dry-run: $dir holds $count entries or a folder; the device tool brings back 8 files" >&2
        return 1
    fi
    for archive in "$dir"/*.tar.gz; do
        tar tzf "$archive" >/dev/null || { echo "gpu-dry-run: $archive is not readable" >&2; return 1; }
    done
    for want in "python $version" "numpy $NODE_NUMPY" "pandas $NODE_PANDAS" "matplotlib $NODE_MATPLOTLIB" \
        "torchvision $NODE_TORCHVISION" "torch $NODE_TORCH"; do
        name=${want% *}
        if ! grep -q -E "^versions: .*\b$name ${want#* }[.+,]" <(sed 's/$/,/' "$dir/status.txt"); then
            echo "gpu-dry-run: status.txt reports $(grep -o -E "\b$name [^,]+" "$dir/status.txt" | head -1)," \
                "not $want" >&2
            return 1
        fi
    done
}

echo "== 3. scripts/gpu_run.sh $PROFILE, a fresh work folder"
rm -rf $work/gpu-work $work/out $work/out-resumed
status=0
TGKIT_GPU_WORK=$work/gpu-work PYTHON=$node/bin/python BUNDLE=$bundle scripts/gpu_run.sh "$PROFILE" $work/out \
    || status=$?
echo "== OUTDIR $work/out:"
ls -l $work/out
check_outdir $work/out || status=1
phase_end

echo "== 4. the same call again, into an empty OUTDIR: it resumes"
resumed=0
TGKIT_GPU_WORK=$work/gpu-work PYTHON=$node/bin/python BUNDLE=$bundle scripts/gpu_run.sh "$PROFILE" $work/out-resumed \
    >$work/resumed.log 2>&1 || resumed=$?
cat $work/out-resumed/status.txt
check_outdir $work/out-resumed || resumed=1
if grep -E '^[0-9]{2}_[a-z_]+: (ok|failed|cut|started)' $work/out-resumed/status.txt; then
    echo "gpu-dry-run: the second call ran a notebook the first had finished" >&2
    resumed=1
fi
phase_end
echo "gpu-dry-run: gpu_run.sh exited $status, the resumed call $resumed; $((SECONDS - started)) s in all"
if ((status == 0)); then status=$resumed; fi
exit $status
