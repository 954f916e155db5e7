#!/usr/bin/env bash
# Runs the simulated-rack demo with already-built binaries.
# Usage: deploy/run-demo.sh BIN_DIR [RACK_FILE]
# Everything it writes goes to ./demo-run/ (store, agent work dirs, logs).
set -euo pipefail
BIN=$(cd "${1:?usage: run-demo.sh BIN_DIR [RACK_FILE]}" && pwd)
RACK=$(realpath "${2:-config/demo-rack.ini}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(pwd)/demo-run
AGENTS_EP=${FR_DEMO_AGENTS_EP:-tcp://127.0.0.1:7710}
CLIENTS_EP=${FR_DEMO_CLIENTS_EP:-tcp://127.0.0.1:7711}
MIRROR_PORT=${FR_DEMO_MIRROR_PORT:-7712}
ORIGIN_PORT=${FR_DEMO_ORIGIN_PORT:-7713}
PAGE_PORT=${FR_DEMO_PAGE_PORT:-7714}
export FLASHRACK_CONTROLLER=$CLIENTS_EP

rm -rf "$RUN"
mkdir -p "$RUN"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The firmware publisher: a stand-in IPSW (a real zip with a BuildManifest) on a
# local web server, so the download path is the real one: publisher -> the
# controller's mirror (one download for the site) -> each agent's verified cache.
mkdir -p "$RUN/publisher"
IPSW=$RUN/publisher/iPhone_demo_18.2_22C152_Restore.ipsw
URL=http://127.0.0.1:$ORIGIN_PORT/$(basename "$IPSW")
# ... and the site's firmware catalog (what ipsw.me would say about it, per model)
python3 "$SRC/sim/make-demo-ipsw.py" "$IPSW" --rack "$RACK" --size-mb "${FR_DEMO_IPSW_MB:-96}" \
  --catalog "$RUN/catalog" --url "$URL"
python3 -m http.server "$ORIGIN_PORT" --bind 127.0.0.1 --directory "$RUN/publisher" \
  >"$RUN/publisher.log" 2>&1 &
pids+=($!)

# CURVE keys, as a site makes them: the controller's keypair and its allowlist in
# $RUN/keys, an operator key for the CLI and the simulator's operator, one key per agent.
export FLASHRACK_KEYS_DIR=$RUN/keys FLASHRACK_KEY=$RUN/operator.key
export FLASHRACK_CONTROLLER_KEY=$RUN/keys/controller.key.pub
mkdir -p "$FLASHRACK_KEYS_DIR"
"$BIN/flashrack" keys gen "$FLASHRACK_KEYS_DIR/controller.key" >/dev/null
"$BIN/flashrack" keys gen "$FLASHRACK_KEY" >/dev/null
"$BIN/flashrack" keys authorize --operator demo --role operator "$FLASHRACK_KEY.pub" >/dev/null
for host in A B; do
  "$BIN/flashrack" keys gen "$RUN/agent-$host.key" >/dev/null
  "$BIN/flashrack" keys authorize --agent "$host" "$RUN/agent-$host.key.pub" >/dev/null
done

export FLASHRACK_SIM_SOCKET=$RUN/sim.sock
# The simulator's usbmuxd: phones in normal mode reach the agents through the real
# libimobiledevice path (usbmuxd, lockdownd), as on a real host.
export USBMUXD_SOCKET_ADDRESS=UNIX:$RUN/usbmuxd.sock
"$BIN/flashrack-sim" "$RACK" --socket "$FLASHRACK_SIM_SOCKET" --usbmuxd "$RUN/usbmuxd.sock" \
  --operator "$CLIENTS_EP" >"$RUN/sim.log" 2>&1 &
pids+=($!)
"$BIN/flashrackd" --set controller.store="$RUN/flashrack.db" \
  --set controller.agents_endpoint="$AGENTS_EP" \
  --set controller.clients_endpoint="$CLIENTS_EP" \
  --set mirror.listen="127.0.0.1:$MIRROR_PORT" --set mirror.dir="$RUN/mirror" \
  --set page.listen="127.0.0.1:$PAGE_PORT" \
  --set firmware.catalog_dir="$RUN/catalog" --set security.keys_dir="$FLASHRACK_KEYS_DIR" \
  >"$RUN/flashrackd.log" 2>&1 &
controller_pid=$!
pids+=($controller_pid)

for host in A B; do
  mkdir -p "$RUN/agent-$host"
  cat >"$RUN/agent-$host/agent.ini" <<INI
[agent]
id = $host
controller = $AGENTS_EP
slots = 24
work_dir = $RUN/agent-$host
key = $RUN/agent-$host.key
controller_key = $FLASHRACK_CONTROLLER_KEY

[seams]
topology = sim
discovery = sim+usbmuxd
power = sim
sim_socket = $FLASHRACK_SIM_SOCKET

[engine]
path = $BIN/flashrack-sim-restore
watchdog_s = 30
INI
  "$BIN/flashrack-agent" -c "$RUN/agent-$host/agent.ini" >"$RUN/agent-$host.log" 2>&1 &
  pids+=($!)
done

echo "flashrack demo: controller $CLIENTS_EP (CURVE, keys in $RUN/keys), agents A and B, logs in $RUN"
echo "flashrack demo: the live rack page is on http://127.0.0.1:$PAGE_PORT/ (open it in a browser)"
deadline=$((SECONDS + 30))
while :; do
  if ! kill -0 "$controller_pid" 2>/dev/null; then
    echo "flashrack demo: the controller stopped; its log ($RUN/flashrackd.log) ends with:" >&2
    tail -5 "$RUN/flashrackd.log" >&2
    exit 1
  fi
  online=$("$BIN/flashrack" --timeout 1 agents -o json 2>/dev/null | grep -o '"online"' | wc -l || true)
  [ "$online" -ge 2 ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "flashrack demo: the agents did not come online within 30 s; logs are in $RUN" >&2
    exit 1
  fi
  sleep 0.2
done
"$BIN/flashrack" agents

echo
"$BIN/flashrack" firmware show iPhone12,1 latest | head -2
job=$("$BIN/flashrack" submit --agent A --agent B --name demo --firmware latest \
  -o json | sed -n 's/.*"job_id": *\([0-9]*\).*/\1/p')
echo "submitted job $job: every unit to the latest signed iOS for its model"
rc=0
"$BIN/flashrack" watch "$job" || rc=$?
echo
"$BIN/flashrack" report "$job" || true
echo

# The signed sanitization record of every unit (written when each run ended), as JSON,
# CSV and a PDF certificate per unit; checked offline against the controller's record key.
"$BIN/flashrack" record "$job" -o json --out "$RUN/records" >/dev/null
"$BIN/flashrack" record "$job" -o csv --out "$RUN/records" >/dev/null
"$BIN/flashrack" record "$job" -o pdf --out "$RUN/records" >/dev/null
nrec=$(ls "$RUN/records"/*.json | wc -l)
echo "records: $nrec signed records, a CSV and $(ls "$RUN/records"/*.pdf | wc -l) PDF certificates in $RUN/records"
one=$(ls "$RUN/records"/*.json | head -1)
"$BIN/flashrack" record verify "$one"
sed 's/"manufacturer":"Apple"/"manufacturer":"Apqle"/' "$one" >"$RUN/records/tampered.json.txt"
if "$BIN/flashrack" record verify "$RUN/records/tampered.json.txt"; then
  echo "flashrack demo: a tampered record verified" >&2
  exit 1
fi
echo "(a copy with one byte changed fails, as it must)"
echo
"$BIN/flashrack" ports | awk 'NR == 1 || $10 > 0'
echo
# The bad cable on A-05: its phone lost the link and was moved; the next tray's phone,
# plugged in there, lost it too: two units, one port, so the port is quarantined.
echo "Quarantined ports:"
"$BIN/flashrack" ports --quarantined
quarantined=$("$BIN/flashrack" ports --quarantined -o json | python3 -c '
import json, sys
ports = json.load(sys.stdin)["ports"]
print("; ".join("%s %s, %d strikes by %s: %s" % (p["agent"], p["label"], p["strikes"],
      " and ".join(sorted({h["ecid"] for h in p["history"]})), p["reason"]) for p in ports))')
echo
echo "firmware: the publisher served $(grep -c '"GET .*\.ipsw' "$RUN/publisher.log" || true) IPSW download(s) for the whole site;"
echo "the agents fetched it from the controller's mirror into their verified caches:"
"$BIN/flashrack" firmware list | sed -n '/^mirror/,$p' || true
# watch exits 1 when units failed or are suspected faulty: that is the demo's story, not an error
[ "$rc" -le 1 ] || exit "$rc"
echo
if [ -n "$quarantined" ]; then
  echo "flashrack demo: quarantined: $quarantined"
else
  echo "flashrack demo: no port was quarantined"
fi
echo "flashrack demo: done. The store, logs and engine output are in $RUN."
