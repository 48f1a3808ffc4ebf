#!/usr/bin/env bash
# One command on a GPU node without network: the benchmark, then the notebook batch, packed into one archive.
#
#   scripts/gpu_run.sh PROFILE OUTDIR        PROFILE: preflight, smoke, quick, fast or full
#
#   1. install   the wheels of gpu-bundle/ (`make gpu-bundle`) beside the node's own torch, into a
#                temporary --target on PYTHONPATH (skipped when the bundle holds no wheels)
#   2. data      the dataset archive of gpu-bundle/ extracted into a temporary TGKIT_DATA, whose run
#                cache starts empty: every stage is computed in this run
#   3. bench     python -m tgkit.bench --plan PROFILE: the throughput table, and what the batch should
#                cost at the rates just measured (a plan; the batch's own clock follows)
#   4. batch     python -m tgkit batch --profile PROFILE --cell-timeout, stopped at the deadline so
#                that step 5 always runs
#   5. pack      figures, CSV tables, manifests, the bench table, the logs and (when they fit) the
#                executed notebooks into OUTDIR/tgkit-PROFILE-DATASET.tar.gz, at most 16 MiB
#
# PROFILE=preflight: the benchmark briefly, a decode of the dataset, and the smoke batch (digits) on
# the GPU, in about a minute: it catches a GPU-only failure (the node's torch and Python, bf16
# autocast, channels_last) before the long run, and its plan says whether `fast` fits the slot.
#
# Exit status: 0 when every step succeeded, else the first failing step's (124: the deadline);
# the archive is packed either way, and status.txt in it lists every step's status and seconds.
#
# Settings (environment variables):
#   BUNDLE          the bundle folder (default gpu-bundle)
#   DATASET         default: the profile's (cifar10; digits for smoke), or the bundle's only archive
#   PYTHON          the node's interpreter with torch (default python3)
#   DEADLINE_S      seconds after the start at which the batch is stopped (default 560: packing fits
#                   in a 10-minute slot)
#   CELL_TIMEOUT_S  the batch's --cell-timeout (default 540)
#   NOTEBOOKS       only these notebooks (names in notebooks/); default 01-04, the paper's figures
#                   (05 times inference on the CPU and needs onnxruntime, which the bundle leaves out)
#   BENCH_ARGS      more arguments for tgkit.bench
#   TGKIT_GIT_COMMIT  the commit the manifests name where the copy on the node has no .git
set -uo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: scripts/gpu_run.sh PROFILE OUTDIR   (PROFILE: preflight, smoke, quick, fast, full)" >&2
    exit 2
fi
profile=$1
mkdir -p "$2" && outdir=$(cd "$2" && pwd) || { echo "gpu_run: cannot create $2" >&2; exit 2; }
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

BUNDLE=${BUNDLE:-gpu-bundle}
PYTHON=${PYTHON:-python3}
DEADLINE_S=${DEADLINE_S:-560}
CELL_TIMEOUT_S=${CELL_TIMEOUT_S:-540}
BENCH_ARGS=${BENCH_ARGS:-}
LIMIT_BYTES=$((16 * 1024 * 1024))
declare -A ARCHIVES=([cifar10]=cifar10-jpeg.tar.gz [tinyimagenet]=tiny-imagenet-200-32px.tar.gz)

case $profile in
    preflight) batch_profile=smoke batch_dataset=digits plan=fast
               dataset=${DATASET:-cifar10} bench=(--steps 5 --warmup 3 --rounds 1) ;;
    smoke) batch_profile=smoke batch_dataset=${DATASET:-digits} plan=smoke dataset=$batch_dataset bench=() ;;
    quick|fast|full) batch_profile=$profile batch_dataset=${DATASET:-cifar10} plan=$profile
                     dataset=$batch_dataset bench=() ;;
    *) echo "gpu_run: unknown profile '$profile'; use preflight, smoke, quick, fast or full" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/tgkit-gpu-run.XXXXXX")
pack=$work/pack
mkdir -p "$pack/logs" "$work/data"
trap 'rm -rf "$work"' EXIT
export TGKIT_DATA=$work/data JUPYTER_RUNTIME_DIR=$work/jupyter IPYTHONDIR=$work/ipython PYTHONUNBUFFERED=1
export PYTHONPATH=$work/site:$repo${PYTHONPATH:+:$PYTHONPATH}
if [[ -z ${TGKIT_GIT_COMMIT:-} ]]; then
    TGKIT_GIT_COMMIT=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
fi
export TGKIT_GIT_COMMIT

first_failure=0
# step NAME COMMAND...: run, log to logs/NAME.log (and the terminal), record status and seconds
step() {
    local name=$1 began=$SECONDS rc
    shift
    echo "=== $name: $*"
    "$@" > >(tee "$pack/logs/$name.log") 2>&1
    rc=$?
    printf '%-8s %3d %6d s\n' "$name" "$rc" $((SECONDS - began)) >>"$pack/status.txt"
    echo "=== $name: exit $rc after $((SECONDS - began)) s"
    if ((rc != 0 && first_failure == 0)); then first_failure=$rc; fi
    return $rc
}

install_bundle() {
    local wheels=("$BUNDLE"/wheels/*.whl)
    if [[ ! -e ${wheels[0]} ]]; then
        echo "no wheels in $BUNDLE/wheels: using the packages $PYTHON already has"
        return 0
    fi
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-cache-dir \
        --target "$work/site" "${wheels[@]}"
}

extract_data() {
    local archive=${ARCHIVES[$dataset]:-}
    if [[ -z $archive || ! -f $BUNDLE/$archive ]]; then
        if [[ $batch_dataset == digits ]]; then echo "digits is embedded: nothing to extract"; return 0; fi
        echo "gpu_run: $BUNDLE/${archive:-<archive of $dataset>} is missing: run 'make gpu-bundle DATASETS=$dataset'" >&2
        return 1
    fi
    tar xzf "$BUNDLE/$archive" -C "$work/data"
}

describe_node() {
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
    "$PYTHON" - <<'PY'
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device {torch.cuda.get_device_name()}, bf16 supported {torch.cuda.is_bf16_supported()}")
PY
}

decode_data() {
    "$PYTHON" -c "from tgkit import data; print(data.load_dataset('$dataset', download=False))"
}

run_batch() {
    local remaining=$((DEADLINE_S - (SECONDS - started)))
    if ((remaining < 30)); then
        echo "gpu_run: only $remaining s left before the deadline: the batch is not started" >&2
        return 124
    fi
    # shellcheck disable=SC2206  # NOTEBOOKS is a list of words
    local notebooks=(--notebooks ${NOTEBOOKS:-01_teacher_training 02_importance_per_layer 03_sparsity_sweep 04_colt_latency})
    echo "the batch may run $remaining s (DEADLINE_S=$DEADLINE_S)"
    timeout --kill-after=15 "$remaining" "$PYTHON" -m tgkit batch --profile "$batch_profile" \
        --dataset "$batch_dataset" --figures-root "$pack/figures" --cell-timeout "$CELL_TIMEOUT_S" "${notebooks[@]}"
}

step node describe_node
step install install_bundle
if step data extract_data; then
    if [[ $profile == preflight ]]; then step decode decode_data; fi
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
    step bench "$PYTHON" -m tgkit.bench --plan "$plan" --plan-dataset "$dataset" --csv "$pack/bench.csv" \
        "${bench[@]}" $BENCH_ARGS
    step batch run_batch
fi

archive=$outdir/tgkit-$profile-$batch_dataset.tar.gz
echo "total $((SECONDS - started)) s" >>"$pack/status.txt"
pack_into() {  # pack_into EXCLUDE...: the archive, leaving out what the patterns name
    tar czf "$archive" -C "$pack" "${@/#/--exclude=}" .
}
pack_into
if (($(stat -c %s "$archive") > LIMIT_BYTES)); then
    echo "the archive exceeds 16 MiB: packing it again without the executed notebooks"
    pack_into '*/executed'
fi
if (($(stat -c %s "$archive") > LIMIT_BYTES)); then
    echo "still over 16 MiB: packing it again without the PDF figures"
    pack_into '*/executed' '*.pdf'
fi
echo "packed $archive ($(du -h "$archive" | cut -f1)); status of every step:"
cat "$pack/status.txt"
exit "$first_failure"
