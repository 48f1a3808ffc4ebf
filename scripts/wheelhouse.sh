#!/usr/bin/env bash
# Download the wheels that an air-gapped GPU node needs beyond its own torch and torchvision.
#
#   scripts/wheelhouse.sh                    (or: make wheelhouse)
#   PYTHON_VERSION=3.11 PLATFORM=manylinux2014_x86_64 scripts/wheelhouse.sh
#
# The list is requirements.txt without torch and torchvision, so the pins stay in one place; it is
# written next to the wheels as $WHEELHOUSE/requirements.txt, and the node installs from both, offline:
#
#   python3 -m pip install --no-index --find-links wheelhouse -r wheelhouse/requirements.txt
#
# Settings (environment variables):
#   PYTHON_VERSION  the node's CPython, major.minor. Default 3.12: the GPU nodes' python3 is 3.12.
#   PLATFORM        the newest manylinux tag the node's glibc accepts (space-separated for several).
#                   Default manylinux_2_28_x86_64: the nodes run torch's manylinux_2_28 wheels, so
#                   their glibc is at least 2.28.
#   WHEELHOUSE      where the wheels go. Default wheelhouse/ (git-ignored).
#   REQUIREMENTS    the pinned list to start from. Default requirements.txt.
#   TARGET_PYTHON   a CPython of version PYTHON_VERSION here, whose pip downloads. Default
#                   python$PYTHON_VERSION. It must be that version: pip evaluates environment markers
#                   (papermill's `aiohttp; python_version == "3.12"`) for the interpreter it runs in,
#                   whatever --python-version says, and would silently leave such dependencies out.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_VERSION=${PYTHON_VERSION:-3.12}
PLATFORM=${PLATFORM:-manylinux_2_28_x86_64}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
REQUIREMENTS=${REQUIREMENTS:-requirements.txt}
TARGET_PYTHON=${TARGET_PYTHON:-python$PYTHON_VERSION}

found_version=$("$TARGET_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [[ $found_version != "$PYTHON_VERSION" ]]; then
    echo "wheelhouse: need a CPython $PYTHON_VERSION to download with, but '$TARGET_PYTHON' is ${found_version:-not runnable}." >&2
    echo "Set TARGET_PYTHON=/path/to/python$PYTHON_VERSION (e.g. from pyenv or uv python install)." >&2
    exit 1
fi

# Every platform tag that a node accepting $1 accepts too. pip's --platform matches tags literally
# (a manylinux_2_28 node also runs manylinux_2_17 and manylinux2014 wheels, but pip would not pick
# them), so the older manylinux tags are spelled out. Tags other than manylinux pass through as given.
compatible_platforms() {
    local tag=$1 glibc_minor arch
    if [[ $tag =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
        glibc_minor=${BASH_REMATCH[1]} arch=${BASH_REMATCH[2]}
    elif [[ $tag =~ ^manylinux2014_(.+)$ ]]; then
        glibc_minor=17 arch=${BASH_REMATCH[1]}
    elif [[ $tag =~ ^manylinux2010_(.+)$ ]]; then
        glibc_minor=12 arch=${BASH_REMATCH[1]}
    elif [[ $tag =~ ^manylinux1_(.+)$ ]]; then
        glibc_minor=5 arch=${BASH_REMATCH[1]}
    else
        echo "$tag"
        return
    fi
    local minor
    for ((minor = glibc_minor; minor >= 5; minor--)); do
        echo "manylinux_2_${minor}_${arch}"
    done
    # the legacy names of manylinux_2_17, _2_12 and _2_5
    ((glibc_minor >= 17)) && echo "manylinux2014_${arch}"
    ((glibc_minor >= 12)) && echo "manylinux2010_${arch}"
    echo "manylinux1_${arch}"
}

# requirements.txt less comments, blank lines, and the node's own torch and torchvision.
node_requirements() {
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$REQUIREMENTS" \
        | grep -v -E '^$|^(torch|torchvision)([^A-Za-z0-9._-]|$)'
}

mkdir -p "$WHEELHOUSE"
node_requirements >"$WHEELHOUSE/requirements.txt"

platform_args=()
for tag in $PLATFORM; do
    for compatible in $(compatible_platforms "$tag"); do
        platform_args+=(--platform "$compatible")
    done
done

echo "downloading wheels for CPython $PYTHON_VERSION on $PLATFORM into $WHEELHOUSE/:"
sed 's/^/    /' "$WHEELHOUSE/requirements.txt"
"$TARGET_PYTHON" -m pip download --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version "$PYTHON_VERSION" "${platform_args[@]}" \
    -d "$WHEELHOUSE" -r "$WHEELHOUSE/requirements.txt"

echo "$(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1) in $WHEELHOUSE/."
echo "On the node: python3 -m pip install --no-index --find-links $WHEELHOUSE -r $WHEELHOUSE/requirements.txt"
