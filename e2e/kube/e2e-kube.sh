#!/usr/bin/env bash
# make e2e-kube: the scenarios on a one-machine cluster of their own, through the real kubectl (RUNS failovers,
# default 5); ends with one JSON line of figures. Everything it starts is stopped, also on failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
state="$(mktemp -d /tmp/e2e-kube-XXXXXX)"
chmod 755 "$state"
cleanup() {
  leftover="$(pgrep -f "unshare .*$state/pods/" || true)"
  [ -n "$leftover" ] && kill -KILL $leftover 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT
. e2e/kube/prepare.sh "$state"
"$dotnet" "$cluster_dll" scenarios \
  --state "$state" --bin "$PWD/artifacts/memorycluster" --crd crds/memorycluster.io_memoryclusters.yaml \
  --chart "$state/chart.yaml" --runs "${RUNS:-5}"
