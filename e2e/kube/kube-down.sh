#!/usr/bin/env bash
# make kube-down: stops what make kube-up started (pods first, SIGTERM then SIGKILL after their grace), and
# removes its state folder; no process is left behind.
set -uo pipefail
cd "$(dirname "$0")/../.."
state="${KUBE_STATE:-$PWD/.kube-local}"
if [ -f "$state/pid" ]; then
  pid="$(cat "$state/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 900); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "kube-down: still running after 90 s: killing it"; kill -KILL "$pid"; }
  fi
fi
bash e2e/kube/kill-pods.sh "$state"
rm -rf "$state"
echo "kube-down: stopped"
