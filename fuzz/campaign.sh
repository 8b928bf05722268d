#!/usr/bin/env bash
# A fuzzing campaign on a machine with many cores and no network (no toolchain there): the
# binaries are built here, packed with the corpora, run there all at once with libFuzzer's fork
# mode, and the grown corpora and any crash come back.
#
#   fuzz/campaign.sh pack DIR NAME [--corpus] TARGET...
#       here, after `cargo fuzz build -O` (fuzz/): writes DIR/NAME.tar.zst with the targets'
#       binaries without their debug info (and with --corpus the corpora of
#       ${GAIA_CACHE:-~/.cache/gaia}/fuzz/ and the seeds), this script and a zstd program.
#   fuzz/campaign.sh run DIR SECONDS OUT TARGET=PROCESSES...
#       on the machine: unpacks every DIR/*.tar.zst into /tmp/gaia-fuzz (once: a second run on
#       the same machine goes on from the first one's corpus), runs every target at once for SECONDS with
#       -fork=PROCESSES (one process a core), and writes OUT/stats.tsv (target, processes,
#       seconds, executions, executions/s of all its processes and of one, crashes, timeouts,
#       out-of-memory, corpus size),
#       OUT/crashes.tar (the inputs that crashed, if any), OUT/corpus.tar.zst and the logs' tails.
#   fuzz/campaign.sh unpack FILE
#       here: adds the corpora of a campaign's corpus.tar.zst to ${GAIA_CACHE}/fuzz/corpus/.
#
# CPU-hours of a target = its processes x the wall time (each libFuzzer process keeps one core
# busy; the classifier's and the webhook's helper threads take turns with it, not in parallel).
set -euo pipefail

zstd_cmd() {
  if command -v zstd >/dev/null 2>&1; then
    zstd "$@"
  else
    LD_LIBRARY_PATH="$campaign_dir/lib" "$campaign_dir/zstd" "$@"
  fi
}

case ${1:-} in
  pack)
    dir=$(realpath -m "$2")
    name=$3
    shift 3
    with_corpus=0
    if [[ ${1:-} == --corpus ]]; then
      with_corpus=1
      shift
    fi
    repo=$(cd "$(dirname "$0")/.." && pwd)
    cache=${GAIA_CACHE:-$HOME/.cache/gaia}/fuzz
    mkdir -p "$dir/lib"
    stage=$(mktemp -d)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/bin"
    for t in "$@"; do
      strip --strip-debug -o "$stage/bin/$t" "$repo/fuzz/target/x86_64-unknown-linux-gnu/release/$t"
    done
    parts=(bin)
    if ((with_corpus)); then
      python3 "$repo/fuzz/seeds.py" "$cache/seeds" >/dev/null
      mkdir -p "$cache/corpus"
      cp -r "$cache/corpus" "$stage/corpus"
      cp -r "$cache/seeds" "$stage/seeds"
      parts+=(corpus seeds)
    fi
    tar -C "$stage" -cf - "${parts[@]}" | zstd -q -T0 -"${GAIA_FUZZ_ZSTD_LEVEL:-15}" -f -o "$dir/$name.tar.zst"
    cp "$0" "$dir/campaign.sh"
    cp "$(command -v zstd)" "$dir/zstd"
    cp -L /lib/x86_64-linux-gnu/liblz4.so.1 "$dir/lib/" 2>/dev/null || true
    du -sh "$dir"/*
    ;;
  run)
    campaign_dir=$(realpath "$2")
    secs=$3
    out=$4
    shift 4
    work=/tmp/gaia-fuzz
    mkdir -p "$work"
    # Each pack once: a second run on the same machine goes on from the first one's corpus.
    for pack in "$campaign_dir"/*.tar.zst; do
      mark=$work/.unpacked-$(basename "$pack")
      [[ -e $mark ]] && continue
      zstd_cmd -q -d -c "$pack" | tar -C "$work" -xf -
      touch "$mark"
    done
    mkdir -p "$out" "$work/logs" "$work/artifacts"
    pids=()
    for spec in "$@"; do
      t=${spec%=*}
      n=${spec#*=}
      mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
      seeds=()
      case $t in
        classify_*) seeds=("$work/seeds/python") ;;
        admission_review | image_layer) seeds=("$work/seeds/$t") ;;
      esac
      # The fork-mode parent waits for its jobs in flight once the time is up; past 15 s more the
      # whole process group is interrupted (what those jobs found since their start is lost).
      (cd "$work" && date +%s >"$work/logs/$t.start" && timeout -k 5 -s INT $((secs + 15)) \
        "$work/bin/$t" -fork="$n" -max_total_time="$secs" \
        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 \
        "$work/corpus/$t" "${seeds[@]}" >"$work/logs/$t.log" 2>&1 || true
        date +%s >"$work/logs/$t.end") &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || true; done
    printf 'target\tprocesses\tseconds\texecutions\texec_per_s_all\texec_per_s_one\tcrashes\ttimeouts\tooms\tcorpus\n' >"$out/stats.tsv"
    for spec in "$@"; do
      t=${spec%=*}
      n=${spec#*=}
      log=$work/logs/$t.log
      # The fork-mode parent's status line: #EXECS: cov: .. ft: .. corp: .. exec/s N
      # oom/timeout/crash: O/T/C time: Ss job: ..
      last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n1 || true)
      execs=0 rate=0 otc=?
      [[ $last =~ ^#([0-9]+): ]] && execs=${BASH_REMATCH[1]}
      [[ $last =~ exec/s:?\ ?([0-9]+) ]] && rate=${BASH_REMATCH[1]} # one process, its last job
      [[ $last =~ oom/timeout/crash:\ ([0-9/]+) ]] && otc=${BASH_REMATCH[1]}
      # Wall time the target's processes held their cores: from its start to its parent's end.
      took=$(($(cat "$work/logs/$t.end") - $(cat "$work/logs/$t.start")))
      crashes=$(find "$work/artifacts/$t" -type f -name 'crash-*' | wc -l)
      timeouts=$(find "$work/artifacts/$t" -type f -name 'timeout-*' | wc -l)
      ooms=$(find "$work/artifacts/$t" -type f -name 'oom-*' | wc -l)
      corpus=$(find "$work/corpus/$t" -type f | wc -l)
      all=$((execs / (took > 0 ? took : 1)))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$n" "$took" "$execs" "$all" "$rate" \
        "$crashes" "$timeouts" "$ooms" "$corpus" >>"$out/stats.tsv"
      echo "== $t (oom/timeout/crash $otc)" >>"$out/logs.txt"
      tail -n 15 "$log" >>"$out/logs.txt"
    done
    (cd "$work" && tar -cf "$out/crashes.tar" artifacts)
    tar -C "$work" -cf - corpus | zstd_cmd -q -T0 -10 -o "$out/corpus.tar.zst"
    cat "$out/stats.tsv"
    ;;
  unpack)
    file=$(realpath "$2")
    cache=${GAIA_CACHE:-$HOME/.cache/gaia}/fuzz
    mkdir -p "$cache"
    zstd -q -d -c "$file" | tar -C "$cache" -xf -
    for d in "$cache"/corpus/*; do echo "$(basename "$d"): $(find "$d" -type f | wc -l) inputs"; done
    ;;
  *)
    sed -n '2,21p' "$0"
    exit 2
    ;;
esac
