#!/usr/bin/env bash
# WordCount across hosts against local-cluster[2], on one machine.
#
# "Across hosts": the wordcount master, two workers and the client each in
# a network namespace of their own, joined by a bridge (needs root and
# `ip netns`); every byte between them crosses a veth pair and the bridge,
# as between machines (without a physical network's latency). The
# reference: `--master 'local-cluster[2]'` on loopback. Each run sends the
# same N generated records with acknowledgements (`dstream send --generate
# words --seed 1`: stored on two processes before they are acknowledged),
# then stops wordcount gracefully, which processes everything received.
# It prints the seconds from the first record to the acknowledgement of the
# last (ingestion) and to wordcount's exit (processed), and the words
# counted (equal in both runs, or the script fails).
#
#   sudo bash bench/hosts/wordcount.sh            # N=1000000, 3 rounds
#   N=300000 ROUNDS=1 bash bench/hosts/wordcount.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
if [ "$(id -u)" -ne 0 ]; then
  echo "wordcount.sh: needs root to make network namespaces (ip netns)" >&2
  exit 2
fi
work=$(mktemp -d)
P=wcb$$
cleanup() {
  pkill -P $$ 2>/dev/null || true
  for i in 1 2 3 4; do ip netns pids ${P}n$i 2>/dev/null | xargs -r kill -9 2>/dev/null || true; ip netns del ${P}n$i 2>/dev/null || true; done
  ip link del ${P}br 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/" ./examples/wordcount ./cmd/dstream
ip link add ${P}br type bridge
ip link set ${P}br up
for i in 1 2 3 4; do
  ip netns add ${P}n$i
  ip link add ${P}v$i type veth peer name eth0 netns ${P}n$i
  ip link set ${P}v$i master ${P}br up
  ip -n ${P}n$i addr add 10.231.0.$i/24 dev eth0
  ip -n ${P}n$i link set eth0 up
  ip -n ${P}n$i link set lo up
done
ns() { local n=$1; shift; ip netns exec ${P}n$n "$@"; }

# sum_counts DIR: the words counted in every committed interval.
sum_counts() {
  find "$1" -path '*/words-*/part-*' -exec cat {} + 2>/dev/null | awk -F'\t' '{s+=$2} END {print s+0}'
}

# one NAME: one run; the master's command is in master[], where the client
# sends in to[], and workers[] holds the workers' commands (if any).
one() {
  local name=$1 out="$work/out-$1-$RANDOM" log="$work/$1.log"
  "${master[@]}" --out "$out" --batch 1s --ui-listen "" > "$log" 2>&1 &
  local mpid=$!
  local addr=""
  for _ in $(seq 300); do
    addr=$(sed -n 's/^wordcount: listening on \([^ ,]*\).*/\1/p' "$log" | head -1)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "$name: wordcount did not start:"; cat "$log"; exit 1; }
  local wpids=()
  for w in "${workers[@]}"; do
    eval "$w" >> "$log.workers" 2>&1 &
    wpids+=($!)
  done
  if [ ${#workers[@]} -gt 0 ]; then
    for _ in $(seq 300); do grep -q "local workers joined\|worker joined" "$log" 2>/dev/null && [ "$(grep -c 'worker joined' "$log")" -ge 2 ] && break; sleep 0.1; done
  fi
  local t0=$(date +%s.%N)
  "${to[@]}" "$work/dstream" send --to "$addr" --generate words --seed 1 --count "$N" --rate 0 > /dev/null 2>>"$log"
  local t1=$(date +%s.%N)
  kill -TERM $mpid
  wait $mpid || { echo "$name: wordcount exited with $?"; tail -20 "$log"; exit 1; }
  local t2=$(date +%s.%N)
  for p in "${wpids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  local words
  words=$(sum_counts "$out")
  printf '%-18s ingestion %6.2f s   processed %6.2f s   words %s\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t0" | bc)" "$words"
  echo "$words" >> "$work/words"
}

for r in $(seq "$ROUNDS"); do
  master=("$work/wordcount" --master 'local-cluster[2]' --listen 127.0.0.1:0)
  workers=()
  to=()
  one local-cluster[2]
  master=(ip netns exec ${P}n1 "$work/wordcount" --master cluster --insecure --cluster-listen 10.231.0.1:7077 --listen 10.231.0.1:9999)
  workers=("ns 2 $work/wordcount worker --master 10.231.0.1:7077 --insecure --listen 10.231.0.2:0 --slots 1"
    "ns 3 $work/wordcount worker --master 10.231.0.1:7077 --insecure --listen 10.231.0.3:0 --slots 1")
  to=(ip netns exec ${P}n4)
  one hosts
done
if [ "$(sort -u "$work/words" | wc -l)" -ne 1 ]; then
  echo "the runs counted different numbers of words:"; sort "$work/words" | uniq -c
  exit 1
fi
