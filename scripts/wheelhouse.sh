#!/usr/bin/env bash
# Download the wheels that an air-gapped GPU node needs beyond its own torch and torchvision.
#
#   scripts/wheelhouse.sh                    (or: make wheelhouse)
#   PYTHON_VERSION=3.11 PLATFORM=manylinux_2_28_x86_64 scripts/wheelhouse.sh
#
# The list is requirements.txt less EXCLUDE, so the pins stay in one place. It is written next to the
# wheels as $WHEELHOUSE/requirements.txt, and the node installs both offline, e.g. beside its torch:
#
#   python3 -m pip install --no-index --find-links wheelhouse --target /tmp/site -r wheelhouse/requirements.txt
#   export PYTHONPATH=/tmp/site
#
# Settings (environment variables):
#   PYTHON_VERSION  the node's CPython, major.minor. Default 3.12: the GPU nodes' python3 is 3.12.
#   PLATFORM        the newest manylinux tag the node's glibc accepts (space-separated for several).
#                   Default manylinux_2_28_x86_64: the nodes run torch's manylinux_2_28 wheels, so
#                   their glibc is at least 2.28. (manylinux2014 is too old for numpy 2.4's wheels.)
#   EXCLUDE         packages of requirements.txt the node brings itself. Default "torch torchvision".
#                   Whatever comes back as a dependency of another package keeps its pin.
#   WHEELHOUSE      where the wheels go; emptied of wheels first, so that it holds one target's set.
#                   Default wheelhouse/ (git-ignored).
#   REQUIREMENTS    the list to start from. Default requirements.txt.
#   CONSTRAINTS     the pins every downloaded package keeps. Default requirements.txt.
#   PROVIDED        a file naming distributions the node already has (one per line, # comments):
#                   their wheels are deleted after the download and listed in $WHEELHOUSE/provided.txt
#                   with the version the download resolved. Default: none.
#   TARGET_PYTHON   a CPython of version PYTHON_VERSION here, whose pip downloads. Default
#                   python$PYTHON_VERSION, else pyenv's install of that version. It must be that version: pip evaluates environment markers
#                   (papermill's `aiohttp; python_version == "3.12"`) for the interpreter it runs in,
#                   whatever --python-version says, and would silently leave such dependencies out.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_VERSION=${PYTHON_VERSION:-3.12}
PLATFORM=${PLATFORM:-manylinux_2_28_x86_64}
EXCLUDE=${EXCLUDE:-torch torchvision}
WHEELHOUSE=${WHEELHOUSE:-wheelhouse}
REQUIREMENTS=${REQUIREMENTS:-requirements.txt}
CONSTRAINTS=${CONSTRAINTS:-requirements.txt}
PROVIDED=${PROVIDED:-}
if [[ -z ${TARGET_PYTHON:-} ]]; then
    TARGET_PYTHON=python$PYTHON_VERSION
    # a pyenv install of that version that is not the active one is not on PATH
    if ! "$TARGET_PYTHON" -c "" 2>/dev/null && command -v pyenv >/dev/null 2>&1; then
        for candidate in "$(pyenv root)"/versions/"$PYTHON_VERSION"*/bin/python"$PYTHON_VERSION"; do
            if [[ -x $candidate ]]; then TARGET_PYTHON=$candidate; fi
        done
    fi
fi

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
    if ((glibc_minor >= 17)); then echo "manylinux2014_${arch}"; fi
    if ((glibc_minor >= 12)); then echo "manylinux2010_${arch}"; fi
    echo "manylinux1_${arch}"
}

# requirements.txt less comments, blank lines and the EXCLUDE'd packages (names compared as PEP 503
# normalises them: case, and runs of - _ . alike).
node_requirements() {
    local excluded
    excluded=$(tr ' ' '\n' <<<"$EXCLUDE" | sed -E 's/[-_.]+/[-_.]+/g' | paste -sd '|' -)
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$REQUIREMENTS" \
        | grep -v -i -E "^$|^(${excluded:-.^})([^A-Za-z0-9._-]|$)"
}

platform_args=()
for tag in $PLATFORM; do
    for compatible in $(compatible_platforms "$tag"); do
        platform_args+=(--platform "$compatible")
    done
done

mkdir -p "$WHEELHOUSE"
find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' -delete
node_requirements >"$WHEELHOUSE/requirements.txt"
echo "downloading wheels for CPython $PYTHON_VERSION on $PLATFORM into $WHEELHOUSE/:"
sed 's/^/    /' "$WHEELHOUSE/requirements.txt"
"$TARGET_PYTHON" -m pip download --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version "$PYTHON_VERSION" "${platform_args[@]}" \
    -d "$WHEELHOUSE" -r "$WHEELHOUSE/requirements.txt" -c "$CONSTRAINTS"

# A wheel's file name starts with its distribution name (underscores for - and .) and its version.
normalized() { tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/-/g'; }
if [[ -n $PROVIDED ]]; then
    provided=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$PROVIDED" | grep -v '^$' | normalized)
    : >"$WHEELHOUSE/provided.txt"
    for wheel in "$WHEELHOUSE"/*.whl; do
        file=$(basename "$wheel")
        name=$(cut -d- -f1 <<<"$file" | normalized) version=$(cut -d- -f2 <<<"$file")
        if grep -qx -- "$name" <<<"$provided"; then
            echo "$name==$version" >>"$WHEELHOUSE/provided.txt"
            rm "$wheel"
        fi
    done
    echo "left out $(wc -l <"$WHEELHOUSE/provided.txt") wheels the node provides (listed in $WHEELHOUSE/provided.txt)."
fi

echo "$(find "$WHEELHOUSE" -maxdepth 1 -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1) in $WHEELHOUSE/."
if [[ -n $PROVIDED ]]; then  # the node's own packages complete the set, which pip's resolver cannot see under --target
    echo "On the node: python3 -m pip install --no-index --no-deps --target /tmp/site $WHEELHOUSE/*.whl"
else
    echo "On the node: python3 -m pip install --no-index --find-links $WHEELHOUSE --target /tmp/site -r $WHEELHOUSE/requirements.txt"
fi
echo "             export PYTHONPATH=/tmp/site"
