#!/usr/bin/env bash
# Standby failover on one machine: two standalone masters with the same
# command line and the same checkpoint folder (the drill's job, `dstream
# drill-job --master cluster`, each listening on its own ports) and two
# workers that know both (`dstream worker --master A,B`). KILLS times it
# SIGKILLs the active master (the one whose /readyz says ready) and times
# the standby's takeover: detection (from the kill to the new master's log
# line "holding the lease of the checkpoint location", by its time stamp),
# takeover to the end of its first completed interval (its UI's JSON API),
# and the kill to that interval; then it starts the killed master again,
# which becomes the standby. It prints a line per kill, then the median and
# the max of each figure.
#
#   bash bench/standby/failover.sh                 # KILLS=10, lease TTL 2s, batch 500ms
#   KILLS=3 TTL=1s bash bench/standby/failover.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
KILLS=${KILLS:-10}
TTL=${TTL:-2s}
BATCH=${BATCH:-500ms}
work=$(mktemp -d)
declare -a mpid wpid
cleanup() {
  for p in "${mpid[@]}" "${wpid[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/dstream" ./cmd/dstream
bin=$work/dstream
base=$((20000 + $$ % 20000))
cport=($base $((base + 1))) uiport=($((base + 2)) $((base + 3))) hport=($((base + 4)) $((base + 5)))
runs=(0 0)

now() { date +%s.%N; }
secs() { date -d "$1" +%s.%N; } # an RFC 3339 time to Unix seconds
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${hport[$1]}/readyz")" = 200 ]; }
log() { echo "$work/master-$1-${runs[$1]}.log"; }

# start_master I: master I, with a log of its own per run.
start_master() {
  runs[$1]=$((runs[$1] + 1))
  "$bin" drill-job --master cluster --insecure --lease-ttl "$TTL" --batch "$BATCH" --words 3000 \
    --checkpoint "$work/ck" --out "$work/out" -v \
    --cluster-listen "127.0.0.1:${cport[$1]}" --ui-listen "127.0.0.1:${uiport[$1]}" --health-listen "127.0.0.1:${hport[$1]}" \
    >/dev/null 2>"$(log "$1")" &
  mpid[$1]=$!
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds, or fail.
wait_for() {
  local what=$1 deadline=$(($(date +%s) + $2))
  shift 2
  until "$@" >/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "failover.sh: no $what within the time allowed; logs in $work" >&2
      trap - EXIT
      exit 1
    fi
    sleep 0.05
  done
}
standby_waits() { grep -q "standby: another master holds the lease" "$(log "$1")"; }
holds_lease() { grep -q "holding the lease" "$(log "$1")"; }
completed() { # the end times of master I's completed intervals, in Unix seconds
  curl -s "http://127.0.0.1:${uiport[$1]}/api/v1/batches?status=completed&limit=100" |
    jq -r '.[].processingEndTime // empty' | while read -r t; do secs "$t"; done
}
first_after() { # the first end time after $2 of master $1's intervals
  completed "$1" | awk -v t0="$2" '$1 > t0 { if (m == "" || $1 < m) m = $1 } END { if (m != "") print m; else exit 1 }'
}

start_master 0
wait_for "master" 60 holds_lease 0
start_master 1
wait_for "standby" 60 standby_waits 1
for i in 0 1; do
  "$bin" worker --master "127.0.0.1:${cport[0]},127.0.0.1:${cport[1]}" --insecure --slots 1 >"$work/worker-$i.log" 2>&1 &
  wpid[$i]=$!
done
active=0
sleep 5
echo "kill  from->to  detection  takeover->first-interval  kill->first-interval"
results=()
for k in $(seq "$KILLS"); do
  other=$((1 - active))
  wait_for "standby" 60 standby_waits "$other"
  wait_for "interval" 60 first_after "$active" "$(now)"
  t0=$(now)
  kill -9 "${mpid[$active]}"
  wait "${mpid[$active]}" 2>/dev/null || true
  wait_for "takeover" 60 ready "$other"
  end=""
  wait_for "first interval" 60 first_after "$other" "$t0"
  end=$(first_after "$other" "$t0")
  lease=$(secs "$(grep -m1 'holding the lease' "$(log "$other")" | sed 's/^time=\([^ ]*\).*/\1/')")
  line=$(awk -v t0="$t0" -v l="$lease" -v e="$end" 'BEGIN { printf "%.2f %.2f %.2f", l - t0, e - l, e - t0 }')
  results+=("$line")
  read -r det tko tot <<<"$line"
  printf "%4d  %d->%d  %6.2fs  %6.2fs  %6.2fs\n" "$k" "$active" "$other" "$det" "$tko" "$tot"
  start_master "$active"
  active=$other
done
printf '%s\n' "${results[@]}" | awk '
  { for (i = 1; i <= 3; i++) v[i, NR] = $i }
  END {
    split("detection takeover->first-interval kill->first-interval", name, " ")
    for (i = 1; i <= 3; i++) {
      n = 0; for (r = 1; r <= NR; r++) a[++n] = v[i, r]
      for (x = 1; x <= n; x++) for (y = x + 1; y <= n; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
      m = int((n + 1) / 2)
      printf "%s: median %.2fs, max %.2fs (%d kills)\n", name[i], a[m], a[n], n
    }
  }'
kill -TERM "${mpid[$active]}" "${mpid[$((1 - active))]}" 2>/dev/null || true
