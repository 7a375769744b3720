#!/usr/bin/env bash
# Kills every process of the one-machine cluster's pods under state folder "$1" that is still running: the node's
# unshare processes, and every process in a pod's namespaces (found by the pod's bind mounts in its mountinfo).
# Killing an unshare alone is not enough: its child becomes the container's user, which clears the parent-death
# signal, so the pod's processes outlive it. Prints what it killed; kills nothing else.
set -uo pipefail
state="${1:?usage: kill-pods.sh STATE}"
pids="$(pgrep -f "unshare .*$state/pods/" || true)"
for info in /proc/[0-9]*/mountinfo; do
  grep -qF " $state/pods/" "$info" 2>/dev/null && pids="$pids ${info//[^0-9]/}"
done
pids="$(echo $pids | tr ' ' '\n' | grep -v "^$$\$" | sort -un | tr '\n' ' ')"
if [ -n "${pids// /}" ]; then
  echo "killing the pods' processes left behind: $pids"
  kill -KILL $pids 2>/dev/null || true
fi
