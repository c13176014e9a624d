#!/usr/bin/env bash
# The cost of rate limits and metrics on GET /videos/{id} in instructions (issue 24), the
# load-independent twin of bench/ops.sh: the same two configurations (the defaults with
# VIDI_RATE_LIMIT_READS=1000000, and VIDI_RATE_LIMIT=off VIDI_METRICS=off), each `vidi serve`
# run under `valgrind --tool=callgrind`, the same N keep-alive requests sent to each by one
# small client, and the server's instructions per request compared. wrk's figures move with
# whatever else the machine runs; an instruction count does not, so this is what shows where the
# difference goes (the annotated profiles are kept in bench/out/ops-callgrind/).
#
# Instrumentation is switched on only after startup and a warm-up (auth cache, rate-limit entry,
# per-thread metric handles all made), so the count is of the steady state: N requests plus
# what the server's background threads did meanwhile (the metrics upkeep among them).
#
# Environment:
#   VIDI_BIN         server binary (default target/release/vidi)
#   BENCH_REQUESTS   requests measured per configuration (default 20000)
#   BENCH_RESULTS    file to append KEY=VALUE results to
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init ops-callgrind
BENCH_KEEP=1
resolve_vidi_bin
for tool in valgrind callgrind_control callgrind_annotate python3; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
N=${BENCH_REQUESTS:-20000}
# `vidi serve` under callgrind, instrumentation off until asked; every other subcommand as is.
callgrind_serve '$PWD/callgrind.out'

# send URL AUTH N WANT_HEADER: N keep-alive GETs on one connection; fails on any non-200 answer
# or when the x-ratelimit-limit header is not as expected (present iff WANT_HEADER=1).
send() {
  python3 - "$@" <<'PY'
import base64, http.client, sys, urllib.parse
url, auth, n, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
u = urllib.parse.urlsplit(url)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
name, value = auth.split(": ", 1)
for i in range(n):
    c.request("GET", u.path, headers={name: value})
    r = c.getresponse()
    r.read()
    if r.status != 200 or (r.getheader("x-ratelimit-limit") is not None) != want:
        sys.exit(f"request {i}: {r.status}, x-ratelimit-limit {r.getheader('x-ratelimit-limit')}")
PY
}

declare -A IR
for mode in on off; do
  if [ $mode = on ]; then
    start_vidi "$WORK/$mode" VIDI_WORKERS=0 VIDI_RATE_LIMIT_READS=1000000
    want=1
  else
    start_vidi "$WORK/$mode" VIDI_WORKERS=0 VIDI_RATE_LIMIT=off VIDI_METRICS=off
    want=0
  fi
  id=$(create_video "bench ops $mode")
  send "$VIDI_URL/videos/$id" "$AUTH_HEADER" 500 $want || die "warm-up of '$mode' failed"
  (cd "$WORK/$mode" && callgrind_control -i on "$VIDI_PID" && callgrind_control -z "$VIDI_PID") >/dev/null 2>&1
  t0=$(now)
  send "$VIDI_URL/videos/$id" "$AUTH_HEADER" "$N" $want || die "the measured requests of '$mode' failed"
  t1=$(now)
  (cd "$WORK/$mode" && callgrind_control -d "$VIDI_PID") >/dev/null 2>&1
  stop_pid "$VIDI_PID"
  # The dump of `-d` is callgrind.out.1; the one at exit (the shutdown) is not counted.
  out=$WORK/$mode/callgrind.out.1
  [ -s "$out" ] || die "no callgrind dump for '$mode'"
  total=$(awk '/^summary:/ { print $2 }' "$out")
  IR[$mode]=$(awk -v t="$total" -v n="$N" 'BEGIN { printf "%.0f", t / n }')
  callgrind_annotate --auto=no --inclusive=yes "$out" >"$WORK/$mode/annotate-inclusive.txt" 2>/dev/null || true
  callgrind_annotate --auto=no --threshold=100 "$out" >"$WORK/$mode/annotate-self.txt" 2>/dev/null || true
  log "$mode: $total instructions for $N requests in $(elapsed "$t0" "$t1") s: ${IR[$mode]} a request"
done
result OPS_CG_IR_ON "${IR[on]}"
result OPS_CG_IR_OFF "${IR[off]}"
ratio_ir=$(ratio "${IR[off]}" "${IR[on]}")
result OPS_CG_OFF_ON_RATIO "$ratio_ir"
log "instructions a request: on ${IR[on]}, off ${IR[off]}; off/on $ratio_ir (the throughput ratio on/off if the server's CPU were all that counted; target >= 0.95)"
# Where the difference goes: each function's own instructions a request, on minus off.
python3 - "$WORK/on/annotate-self.txt" "$WORK/off/annotate-self.txt" "$N" <<'PY' | tee "$WORK/difference.txt"
import re, sys
def own(path):
    out = {}
    for line in open(path, errors="replace"):
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            fn = m.group(2).replace("/root/.cargo/registry/src/", "").replace("index.crates.io-1949cf8c6b5b557f/", "")
            out[fn] = out.get(fn, 0) + int(m.group(1).replace(",", ""))
    return out
on, off, n = own(sys.argv[1]), own(sys.argv[2]), int(sys.argv[3])
diff = sorted(((on.get(f, 0) - off.get(f, 0)) / n, f) for f in set(on) | set(off))
print("instructions a request, on minus off, by function (own cost; the 25 largest each way):")
for d, f in diff[::-1][:25] + diff[:25][::-1]:
    if abs(d) >= 1:
        print(f"{d:+10.0f}  {f[:150]}")
PY
log "profiles: $WORK/{on,off}/annotate-{inclusive,self}.txt, the difference in $WORK/difference.txt"
