#!/usr/bin/env bash
# Compute engine benchmark, the body of `make bench-engine`.
#   compute/bench/run.sh                      Fashion-MNIST + WordNet (Debian packages dataset-fashion-mnist, wordnet-base)
#   VECTORS=DIR compute/bench/run.sh          DIR holds train.f32, test.f32 and optionally gt.i32
#   GRAPH=FILE.tsv compute/bench/run.sh       subject<TAB>predicate<TAB>object per line
# Optional: BENCH_SECTIONS=ann,graph,fusion  BENCH_ROUNDS=3  BENCH_CACHE=DIR  PG_BIN=/usr/lib/postgresql/15/bin
# Progress goes to stderr; the last line on stdout is the JSON summary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# The default data sets and g++ (for the C++ peer) come from Debian's packages; install them when missing.
need=()
[ -z "${VECTORS:-}" ] && ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1 && need+=(dataset-fashion-mnist)
[ -z "${GRAPH:-}" ] && ! dpkg -s wordnet-base >/dev/null 2>&1 && need+=(wordnet-base)
command -v g++ >/dev/null 2>&1 || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-engine: installing ${need[*]} from Debian's packages" >&2
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# The peer (hnswlib-node) is installed here, into compute/bench/peer/node_modules (gitignored).
if ! (cd "$here/peer" && node -e "require('hnswlib-node')" >/dev/null 2>&1); then
  echo "bench-engine: installing hnswlib-node (npm, node-gyp build)" >&2
  (cd "$here/peer" && npm install --no-audit --no-fund >&2)
fi

# The C++ peer: hnswlib itself, from the headers inside the hnswlib-node package, built for this CPU.
cpp_peer="$here/peer/hnsw_cpp"
if [ ! -x "$cpp_peer" ] || [ "$here/peer/hnsw_cpp.cpp" -nt "$cpp_peer" ]; then
  echo "bench-engine: compiling the C++ hnswlib peer (g++ -O3 -march=native)" >&2
  g++ -O3 -march=native -std=c++17 -I "$here/peer/node_modules/hnswlib-node/src" "$here/peer/hnsw_cpp.cpp" -o "$cpp_peer"
fi

dotnet build -c Release --nologo -v q "$here/MemoryCluster.Compute.Bench/MemoryCluster.Compute.Bench.csproj" >&2

exec dotnet "$here/MemoryCluster.Compute.Bench/bin/Release/net10.0/MemoryCluster.Compute.Bench.dll" \
  --peer "$here/peer" \
  --cpp-peer "$cpp_peer" \
  --rounds "${BENCH_ROUNDS:-3}" \
  --vectors "${VECTORS:-}" \
  --graph "${GRAPH:-}" \
  --sections "${BENCH_SECTIONS:-ann,graph,fusion}" \
  --pg-bin "${PG_BIN:-/usr/lib/postgresql/15/bin}" \
  --cache "${BENCH_CACHE:-$repo/artifacts/cache/compute-engine}"
