#!/usr/bin/env bash
# One command on a GPU node without network: the benchmark, then the notebooks one at a time, each packed
# into OUTDIR the moment it ends, so that a run cut at any moment (a deadline, a SIGKILL that no trap
# sees) still leaves in OUTDIR everything that finished, and a second call on the same machine resumes.
#
#   scripts/gpu_run.sh PROFILE OUTDIR [DEADLINE_S]       PROFILE: preflight, smoke, quick, fast or full
#
# Steps, each with its own time limit and never past the deadline:
#   node      nvidia-smi, and the node's Python and package versions (printed, and kept in status.txt)
#   install   the wheels of gpu-bundle/ (`make gpu-bundle`) beside the node's own torch, into a --target
#             folder on PYTHONPATH (nothing to do when the bundle holds no wheels)
#   data      the bundle's dataset archive, extracted (digits, the smoke data, is embedded)
#   decode    (preflight only) one decode of the dataset
#   bench     python -m tgkit.bench --plan: the throughput table, and what the batch should cost at the
#             rates just measured
#   NN_name   python -m tgkit batch --notebooks NN_name, one call per notebook (default 01-04, the paper's
#             figures), all sharing one run cache, so that a stage trained by one is read by the next
#
# OUTDIR: flat, at most 3 + (number of notebooks) files (7 by default; the device tool brings back 8), each
# written under a temporary name (*.part) in OUTDIR and renamed, so that every file is whole at any moment:
#   status.txt        every step's status and seconds ("started at N s, no result yet" for the one a kill
#                     cut), what did not start and why, the node's versions; rewritten before and after each step
#   logs.tar.gz       every step's log (logs/callN/STEP.log, earlier calls too) and batch_wall_clock.csv;
#                     rewritten after each step
#   bench.csv         the benchmark table
#   NN_name.tar.gz    one per finished notebook, as soon as it ends: its figures, CSV tables, manifest and
#                     executed copy, as PROFILE/DATASET/... (extract into figures/); at most 16 MiB: without
#                     the executed copy, then without the PDFs, if larger
#   NN_name.partial.tar.gz   what a notebook that failed or was cut left (its executed copy shows the
#                     failing cell); replaced when a later call finishes it
#
# Resuming: the work folder is kept ($TGKIT_GPU_WORK, default /tmp/tgkit-gpu-run: site/ and data/ shared
# by all profiles, PROFILE-DATASET/ with the run cache, figures, logs and archives). A second call on the
# same machine skips the install and the extraction (a marker is written after each succeeded), the bench
# when its table exists, and every notebook that finished before: its archive in the work folder says so
# (the device tool empties OUTDIR before each call) and is copied into OUTDIR again, so that each call's
# OUTDIR is complete. Skipped, not rerun from the cache: a rerun would spend a notebook's start-up and
# evaluations on the same figures. A notebook that was cut runs again and reads the stages it had finished
# from the run cache. FRESH=1 deletes PROFILE-DATASET/ first.
#
# PROFILE=preflight: the benchmark briefly, a decode of the dataset, and the smoke batch (digits) on the
# GPU: it catches a GPU-only failure (the node's torch and Python, bf16 autocast, channels_last).
#
# Exit status: 0 when every step succeeded or was done before, else the first failing step's (124: a time
# limit or the deadline); 2 for bad arguments.
#
# Settings (environment variables):
#   DEADLINE_S        seconds after the start by which the script has exited (default 570, for a 600 s
#                     slot; the third argument wins); steps end PACK_RESERVE_S (20) before it, and a notebook
#                     is not started with less than MIN_NOTEBOOK_S (30) left
#   BUNDLE            the bundle folder (default gpu-bundle)
#   DATASET           default: the profile's (cifar10; digits for smoke)
#   PYTHON            the node's interpreter with torch (default python3)
#   NOTEBOOKS         only these notebooks (names in notebooks/; default 01-04: 05 times inference on the
#                     CPU and needs onnxruntime, which the bundle leaves out)
#   CELL_TIMEOUT_S    the batch's --cell-timeout (default 540)
#   NODE_TIMEOUT_S, INSTALL_TIMEOUT_S, DATA_TIMEOUT_S, BENCH_TIMEOUT_S   the limits of the steps before the
#                     notebooks (default 120, 180, 180, 240 s)
#   BENCH_ARGS        more arguments for tgkit.bench
#   TGKIT_GPU_WORK    the work folder's parent (default /tmp/tgkit-gpu-run); FRESH=1: start PROFILE-DATASET over
#   TGKIT_GIT_COMMIT  the commit the manifests name where the copy on the node has no .git
set -euo pipefail
usage="usage: scripts/gpu_run.sh PROFILE OUTDIR [DEADLINE_S]   (PROFILE: preflight, smoke, quick, fast, full)"
if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "$usage" >&2
    exit 2
fi
profile=$1
DEADLINE_S=${3:-${DEADLINE_S:-570}}
if [[ ! $DEADLINE_S =~ ^[0-9]+$ ]]; then
    echo "gpu_run: the deadline must be whole seconds, not '$DEADLINE_S'" >&2
    exit 2
fi
mkdir -p "$2" && outdir=$(cd "$2" && pwd) || { echo "gpu_run: cannot create the output folder $2" >&2; exit 2; }
# the work folder, kept between calls (absolute: the notebooks' kernels run in notebooks/)
base=${TGKIT_GPU_WORK:-/tmp/tgkit-gpu-run}
mkdir -p "$base" && base=$(cd "$base" && pwd) || {
    echo "gpu_run: cannot create the work folder $base: set TGKIT_GPU_WORK to a writable folder" >&2
    exit 2
}
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

BUNDLE=${BUNDLE:-gpu-bundle}
PYTHON=${PYTHON:-python3}
CELL_TIMEOUT_S=${CELL_TIMEOUT_S:-540}
NODE_TIMEOUT_S=${NODE_TIMEOUT_S:-120}
INSTALL_TIMEOUT_S=${INSTALL_TIMEOUT_S:-180}
DATA_TIMEOUT_S=${DATA_TIMEOUT_S:-180}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-240}
PACK_RESERVE_S=${PACK_RESERVE_S:-20}
MIN_NOTEBOOK_S=${MIN_NOTEBOOK_S:-30}
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
notebooks=()
for name in ${NOTEBOOKS:-01_teacher_training 02_importance_per_layer 03_sparsity_sweep 04_colt_latency}; do
    notebooks+=("$(basename "$name" .ipynb)")
done
if ((3 + ${#notebooks[@]} > 8)); then
    echo "gpu_run: warning: ${#notebooks[@]} notebooks make up to $((3 + ${#notebooks[@]})) files in OUTDIR;" \
        "the device tool brings back 8" >&2
fi

# ---- the work folder: site/ and data/ for every profile, PROFILE-DATASET/ for this one
site=$base/site
data=$base/data
work=$base/$profile-$dataset
if [[ ${FRESH:-0} == 1 ]]; then rm -rf "$work"; fi
mkdir -p "$site" "$data" "$work/runs" "$work/figures" "$work/archives" "$work/logs" || {
    echo "gpu_run: cannot create the work folder $work: set TGKIT_GPU_WORK to a writable folder" >&2
    exit 2
}
call=1
while [[ -e $work/logs/call$call ]]; do call=$((call + 1)); done
logs=$work/logs/call$call
mkdir -p "$logs"
figures=$work/figures/$batch_profile/$batch_dataset
export TGKIT_DATA=$data TGKIT_RUNS=$work/runs JUPYTER_RUNTIME_DIR=$work/jupyter IPYTHONDIR=$work/ipython
export PYTHONUNBUFFERED=1 PYTHONPATH=$site:$repo${PYTHONPATH:+:$PYTHONPATH}
if [[ -z ${TGKIT_GIT_COMMIT:-} ]]; then
    TGKIT_GIT_COMMIT=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
fi
export TGKIT_GIT_COMMIT
rm -f "$outdir"/*.part  # what a kill left half-written by an earlier call

# ---- OUTDIR: every file written under a temporary name and renamed
publish() {  # publish FILE NAME: copy FILE to OUTDIR/NAME
    cp "$1" "$outdir/$2.part" && mv -f "$outdir/$2.part" "$outdir/$2"
}

steps=(node install data)
if [[ $profile == preflight ]]; then steps+=(decode); fi
steps+=(bench "${notebooks[@]}")
declare -A result=()
first_failure=0
deadline_at=$((started + DEADLINE_S - PACK_RESERVE_S))

write_status() {  # status.txt: the header, the node's versions, one line per step, the time so far
    local step status=$work/status.txt.part
    {
        echo "scripts/gpu_run.sh $profile (batch: $batch_profile on $batch_dataset), call $call in $work"
        echo "commit $TGKIT_GIT_COMMIT, deadline $DEADLINE_S s"
        if [[ -s $work/versions.txt ]]; then cat "$work/versions.txt"; else echo "versions: not known yet"; fi
        for step in "${steps[@]}"; do echo "$step: ${result[$step]:-not started}"; done
        echo "${1:-elapsed} $((SECONDS - started)) s"
    } >"$status" && publish "$status" status.txt
}

pack_logs() {  # logs.tar.gz: the logs of every call, and the notebooks' wall-clock
    local members=(logs)
    if [[ -f $work/batch_wall_clock.csv ]]; then members+=(batch_wall_clock.csv); fi
    tar czf "$outdir/logs.tar.gz.part" -C "$work" "${members[@]}" \
        && mv -f "$outdir/logs.tar.gz.part" "$outdir/logs.tar.gz"
}

# bounded COMMAND...: run a program until the step's time is up (exit 124), TERM then KILL 10 s later.
# --foreground keeps it in this script's process group: a kill of the group reaches it too.
bounded() {
    local left=$((step_ends - SECONDS))
    if ((left <= 0)); then return 124; fi
    timeout --foreground --kill-after=10 "$left" "$@"
}

# run_step NAME LIMIT_S COMMAND...: run COMMAND with its output in logs/callN/NAME.log and on the terminal,
# within LIMIT_S seconds and the deadline; status.txt names the step as started first; its result is kept
run_step() {
    local name=$1 limit=$2 began=$SECONDS rc=0
    shift 2
    step_ends=$((SECONDS + limit < deadline_at ? SECONDS + limit : deadline_at))
    result[$name]="started at $((SECONDS - started)) s, no result yet"
    write_status
    echo "=== $name: $*"
    "$@" 2>&1 | tee "$logs/$name.log" || rc=${PIPESTATUS[0]}
    local seconds=$((SECONDS - began))
    if ((rc == 0)); then
        result[$name]="ok, $seconds s"
    elif ((rc == 124 || rc == 137)) && ((SECONDS >= deadline_at)); then
        result[$name]="cut at the deadline after $seconds s (exit $rc)"
    elif ((rc == 124 || rc == 137)); then
        result[$name]="timed out after $seconds s (exit $rc; limit $limit s)"
    else
        result[$name]="failed (exit $rc) after $seconds s"
    fi
    echo "=== $name: ${result[$name]}"
    if ((rc != 0 && first_failure == 0)); then first_failure=$rc; fi
    return $rc
}

# step NAME LIMIT_S COMMAND...: run_step, then its status and logs into OUTDIR
step() {
    local rc=0
    run_step "$@" || rc=$?
    write_status
    pack_logs
    return $rc
}

describe_node() {
    if command -v nvidia-smi >/dev/null; then bounded nvidia-smi 2>&1; else echo "nvidia-smi: not on PATH"; fi
    bounded "$PYTHON" - "$work/versions.txt" <<'PY'
import platform, sys
from importlib import metadata

versions = {"python": platform.python_version()}
for name in ("numpy", "pandas", "matplotlib", "seaborn", "torchvision", "torch"):
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = "missing"
line = "versions: " + ", ".join(f"{name} {version}" for name, version in versions.items())
print(f"{sys.executable}\n{line}", flush=True)
with open(sys.argv[1], "w") as file:
    print(line, file=file)
import torch

print(f"cuda available {torch.cuda.is_available()}")
if torch.cuda.is_available():
    print(f"device {torch.cuda.get_device_name()}, bf16 supported {torch.cuda.is_bf16_supported()}")
PY
}

wheels_key() {  # what the install marker records: the interpreter and the bundle's wheels
    echo "$PYTHON"
    find "$BUNDLE/wheels" -maxdepth 1 -name '*.whl' -printf '%f\n' 2>/dev/null | sort
}

install_bundle() {
    local wheels=("$BUNDLE"/wheels/*.whl)
    if [[ ! -e ${wheels[0]} ]]; then
        echo "no wheels in $BUNDLE/wheels: using the packages $PYTHON already has"
        return 0
    fi
    # a folder a cut install left behind would make pip skip what it holds
    rm -rf "$site" && mkdir -p "$site" || return
    bounded "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-cache-dir \
        --no-compile --target "$site" "${wheels[@]}" || return
    wheels_key >"$site/.installed"
}

archive_of_dataset() { echo "${ARCHIVES[$dataset]:-}"; }

extract_data() {
    local archive
    archive=$(archive_of_dataset)
    if [[ -z $archive || ! -f $BUNDLE/$archive ]]; then
        if [[ $dataset == digits ]]; then echo "digits is embedded: nothing to extract"; return 0; fi
        echo "gpu_run: $BUNDLE/${archive:-<archive of $dataset>} is missing:" \
            "run 'make gpu-bundle DATASETS=$dataset'" >&2
        return 1
    fi
    rm -f "$data/.extracted-$archive"
    bounded tar xzf "$BUNDLE/$archive" -C "$data" || return
    stat -c %s "$BUNDLE/$archive" >"$data/.extracted-$archive"
}

decode_data() {
    bounded "$PYTHON" -c "from tgkit import data; print(data.load_dataset('$dataset', download=False))"
}

bench_table() {
    # shellcheck disable=SC2086  # BENCH_ARGS is a list of words
    bounded "$PYTHON" -m tgkit.bench --plan "$plan" --plan-dataset "$dataset" --csv "$work/bench.part.csv" \
        "${bench[@]}" $BENCH_ARGS || return
    mv -f "$work/bench.part.csv" "$work/bench.csv" && publish "$work/bench.csv" bench.csv
}

# the notebook's files in the figures folder: NN_* and executed/NN_name.ipynb, relative to the figures root
notebook_files() {
    local prefix=${1%%_*}_
    (cd "$work/figures" && ls -d "$batch_profile/$batch_dataset/$prefix"* \
        "$batch_profile/$batch_dataset/executed/$1.ipynb" 2>/dev/null) || true
}

# pack_notebook NAME ARCHIVE: the notebook's files into ARCHIVE (under 16 MiB: without the executed copy,
# then without the PDFs, if larger) in the work folder, then into OUTDIR
pack_notebook() {
    local name=$1 archive=$2 part=$work/archives/$2.part files excludes=() try
    mapfile -t files < <(notebook_files "$name")
    if ((${#files[@]} == 0)); then return 0; fi
    for try in whole no-executed no-pdf; do
        case $try in
            no-executed) excludes=(--exclude='*/executed/*') ;;
            no-pdf) excludes+=(--exclude='*.pdf') ;;
        esac
        tar czf "$part" -C "$work/figures" "${excludes[@]}" "${files[@]}" || return
        if (($(stat -c %s "$part") <= LIMIT_BYTES)); then break; fi
        echo "$archive is over 16 MiB ($try): packing it again with less"
    done
    mv -f "$part" "$work/archives/$archive" && publish "$work/archives/$archive" "$archive"
}

# the wall-clock row the batch wrote for one notebook, appended to the run's batch_wall_clock.csv
keep_wall_clock() {
    local table=$figures/batch_wall_clock.csv
    if [[ ! -f $table ]]; then return 0; fi
    if [[ ! -f $work/batch_wall_clock.csv ]]; then head -1 "$table" >"$work/batch_wall_clock.csv"; fi
    tail -n +2 "$table" >>"$work/batch_wall_clock.csv"
    rm -f "$table"
}

# ---- the steps
rm -f "$work/versions.txt"
step node "$NODE_TIMEOUT_S" describe_node || true
cat "$work/versions.txt" 2>/dev/null || true

if [[ -f $site/.installed && $(cat "$site/.installed") == "$(wheels_key)" ]]; then
    result[install]="skipped (installed by an earlier call into $site)"
else
    step install "$INSTALL_TIMEOUT_S" install_bundle || true
fi

data_ready=1
archive=$(archive_of_dataset)
if [[ -n $archive && -f $BUNDLE/$archive && -f $data/.extracted-$archive
    && $(cat "$data/.extracted-$archive") == "$(stat -c %s "$BUNDLE/$archive")" ]]; then
    result[data]="skipped (extracted by an earlier call into $data)"
else
    step data "$DATA_TIMEOUT_S" extract_data || data_ready=0
fi

if ((data_ready)); then
    if [[ $profile == preflight ]]; then step decode "$DATA_TIMEOUT_S" decode_data || true; fi
    if [[ -f $work/bench.csv ]]; then
        publish "$work/bench.csv" bench.csv
        result[bench]="skipped (measured by an earlier call)"
    else
        step bench "$BENCH_TIMEOUT_S" bench_table || true
    fi
    mkdir -p "$figures/executed"
    for notebook in "${notebooks[@]}"; do
        if [[ -f $work/archives/$notebook.tar.gz ]]; then
            publish "$work/archives/$notebook.tar.gz" "$notebook.tar.gz"
            rm -f "$outdir/$notebook.partial.tar.gz"
            result[$notebook]="skipped (finished by an earlier call)"
            continue
        fi
        left=$((deadline_at - SECONDS))
        if ((left < MIN_NOTEBOOK_S)); then
            result[$notebook]="not started (deadline: $left s left, less than MIN_NOTEBOOK_S=$MIN_NOTEBOOK_S)"
            if ((first_failure == 0)); then first_failure=124; fi
            continue
        fi
        # its files of an earlier, cut try go: the archive holds this run's only
        mapfile -t stale < <(notebook_files "$notebook")
        (cd "$work/figures" && rm -f "${stale[@]}")
        rc=0
        run_step "$notebook" "$left" bounded "$PYTHON" -m tgkit batch --profile "$batch_profile" \
            --dataset "$batch_dataset" --figures-root "$work/figures" --cell-timeout "$CELL_TIMEOUT_S" \
            --notebooks "$notebook" || rc=$?
        keep_wall_clock
        if ((rc == 0)); then
            pack_notebook "$notebook" "$notebook.tar.gz"
            rm -f "$outdir/$notebook.partial.tar.gz" "$work/archives/$notebook.partial.tar.gz"
        else
            pack_notebook "$notebook" "$notebook.partial.tar.gz"
        fi
        write_status  # after the archive: status.txt never names a notebook finished whose archive is missing
        pack_logs
    done
else
    for name in bench "${notebooks[@]}"; do result[$name]="not started (the data step failed)"; done
fi

write_status total
pack_logs
echo "OUTDIR $outdir:"
ls -l "$outdir"
echo "status.txt:"
cat "$outdir/status.txt"
exit "$first_failure"
