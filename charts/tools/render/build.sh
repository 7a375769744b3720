#!/usr/bin/env bash
# Builds the chart renderer offline from Debian's Go packages into artifacts/chart-render/render and prints
# its path. GOPATH mode (GO111MODULE=off) over /usr/share/gocode: no module proxy, no network.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."

packages="golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev"
if ! command -v go >/dev/null; then
  echo "go is missing: apt-get install -y $packages (.ci/run installs them)" >&2
  exit 2
fi
for dir in github.com/Masterminds/sprig gopkg.in/yaml.v3 github.com/xeipuuv/gojsonschema; do
  if [ ! -d "/usr/share/gocode/src/$dir" ]; then
    echo "/usr/share/gocode/src/$dir is missing: apt-get install -y $packages (.ci/run installs them)" >&2
    exit 2
  fi
done

out=artifacts/chart-render/render
mkdir -p "$(dirname "$out")"
GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOTOOLCHAIN=local \
  GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/go-build}" \
  go build -o "$out.tmp.$$" ./charts/tools/render
mv -f "$out.tmp.$$" "$out"
echo "$out"
