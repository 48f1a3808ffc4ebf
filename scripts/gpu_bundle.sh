#!/usr/bin/env bash
# Everything scripts/gpu_run.sh needs on a GPU node without network, beyond the node's own Python
# packages, into one git-ignored folder (default gpu-bundle/, at most 60 MiB):
#
#   make gpu-bundle                               wheels for the nodes' CPython 3.12, and CIFAR-10
#   make gpu-bundle DATASETS="cifar10 tinyimagenet"
#   make gpu-bundle PYTHON_VERSION=3.11 TARGET_PYTHON=python3.11 NODE_PACKAGES=...   (a CPU dry run)
#
#   gpu-bundle/wheels/*.whl            the notebook batch's packages (papermill, nbclient, nbformat,
#                                      ipykernel, ipywidgets, jupyter_client) with their dependencies,
#                                      pinned by requirements.txt, less what the node already has
#   gpu-bundle/wheels/provided.txt     the dependencies left out because the node has them
#   gpu-bundle/<archive>.tar.gz        the data archives of $SHARED_DATA that DATASETS names
#
# Run it where PyPI is reachable. Settings (environment variables): PYTHON_VERSION, PLATFORM and
# TARGET_PYTHON as in scripts/wheelhouse.sh (default: CPython 3.12, manylinux_2_28_x86_64);
# NODE_PACKAGES, the list of distributions the node has (default scripts/gpu-node-packages.txt);
# DATASETS (default cifar10); SHARED_DATA (default ../shared/data); BUNDLE (default gpu-bundle).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${BUNDLE:-gpu-bundle}
DATASETS=${DATASETS:-cifar10}
SHARED_DATA=${SHARED_DATA:-../shared/data}
NODE_PACKAGES=${NODE_PACKAGES:-scripts/gpu-node-packages.txt}
LIMIT_MIB=60
# the batch only: the sweep's jobs (submitit) are not part of it, and no module the notebooks load
# imports them (tests/test_imports.py)
BATCH_PACKAGES="papermill nbclient nbformat ipykernel ipywidgets jupyter_client"

declare -A ARCHIVES=([cifar10]=cifar10-jpeg.tar.gz [tinyimagenet]=tiny-imagenet-200-32px.tar.gz)
for dataset in $DATASETS; do
    archive=${ARCHIVES[$dataset]:-}
    if [[ -z $archive ]]; then
        echo "gpu-bundle: no archive known for dataset '$dataset'; known: ${!ARCHIVES[*]}" >&2
        exit 1
    fi
    if [[ ! -f $SHARED_DATA/$archive ]]; then
        echo "gpu-bundle: $SHARED_DATA/$archive is missing; set SHARED_DATA to the folder that holds it" >&2
        exit 1
    fi
done

mkdir -p "$BUNDLE"
find "$BUNDLE" -maxdepth 1 -name '*.tar.gz' -delete
list=$(mktemp)
trap 'rm -f "$list"' EXIT
tr ' ' '\n' <<<"$BATCH_PACKAGES" >"$list"
WHEELHOUSE=$BUNDLE/wheels REQUIREMENTS=$list CONSTRAINTS=requirements.txt EXCLUDE="" PROVIDED=$NODE_PACKAGES \
    bash scripts/wheelhouse.sh
for dataset in $DATASETS; do
    cp "$SHARED_DATA/${ARCHIVES[$dataset]}" "$BUNDLE/"
done

size_kib=$(du -sk "$BUNDLE" | cut -f1)
echo "gpu-bundle: $((size_kib / 1024)) MiB in $BUNDLE/ (datasets: $DATASETS)"
if ((size_kib > LIMIT_MIB * 1024)); then
    echo "gpu-bundle: larger than $LIMIT_MIB MiB: bundle fewer DATASETS at a time" >&2
    exit 1
fi
