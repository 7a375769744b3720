#!/usr/bin/env bash
# make images-test: the images of make images, started for real with podman (host networking only, as root).
# Each image answers `memorycluster --version`; three instance containers, each on its own loopback address with
# its peers' names as --add-host entries and the files the operator would mount (its rendered config, secrets,
# TLS, a data folder), elect a primary that answers `select 1` over TLS (the CA verified); once both replicas
# stream, the primary's container is killed and another member takes over; the compute image serves /healthz
# against the new primary. Everything started is removed at the end, also on failure (KEEP=1 keeps it for a look).
# Prints one line per check and "images-test: passed", or the failure and the instances' last log lines (exit 1).
set -euo pipefail
trap 'echo "images-test: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
. "$(dirname "$0")/common.sh"
net="127.21.0"
names=(mc-0 mc-1 mc-2)
state="$(mktemp -d /tmp/images-test-XXXXXX)"
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then echo "images-test: kept the containers and $state (KEEP=1); remove them with podman rm -f and rm -rf" >&2; return; fi
  # One at a time: podman 4.3 given a name that does not exist among others removed none of them and exited 0.
  for c in "${names[@]/#/mcsmoke-}" mcsmoke-compute; do podman rm -f -t 0 --ignore "$c" >/dev/null 2>&1 || true; done
  rm -rf "$state"
}
trap cleanup EXIT
fail() { echo "images-test: FAILED: $*" >&2; for n in "${names[@]}"; do echo "== $n" >&2; podman logs --tail 15 "mcsmoke-$n" 2>&1 | cut -c1-300 >&2 || true; done; exit 1; }
# Polls "$@" every 0.5 s for up to $1 seconds; true once it succeeds.
until_ok() { local limit=$1; shift; for _ in $(seq 1 $((limit * 2))); do "$@" && return 0; sleep 0.5; done; return 1; }

for image in operator compute instance; do
  out="$(podman run --rm --network=none "localhost/memorycluster-$image:$version" --version)" || fail "memorycluster-$image does not start"
  echo "images-test: memorycluster-$image:$version runs: memorycluster --version = $out"
done

# What the operator would put in the pods' volumes: instance.conf and postgresql.conf as the operator image renders
# them for a MemoryCluster mc in namespace smoke (peers at mc-N.mc-hl.smoke.svc, given as --add-host entries), the
# generated secrets, and a CA with a server certificate for every member's name and address.
random() { head -c "$1" /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
mkdir -p "$state/config" "$state/tls" "$state/secrets"/{cluster-key,replication,app,superuser}
printf 'apiVersion: memorycluster.io/v1alpha1\nkind: MemoryCluster\nmetadata:\n  name: mc\n  namespace: smoke\nspec:\n  instances: 3\n  replication:\n    mode: quorum\n' \
  | podman run --rm -i --network=none "localhost/memorycluster-operator:$version" operator render -f - > "$state/render.yaml" \
  || fail "memorycluster-operator could not render a MemoryCluster"
python3 - "$state/render.yaml" "$state/config" <<'PY' || fail "no ConfigMap mc-config in the operator's render"
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"] == "mc-config":
        for key, text in doc["data"].items():
            open(f"{sys.argv[2]}/{key}", "w").write(text)
        sys.exit(0)
sys.exit(1)
PY
random 32 > "$state/secrets/cluster-key/key"
for s in replication app superuser; do random 24 > "$state/secrets/$s/password"; done
sans="DNS:localhost"
hosts=()
for i in 0 1 2; do
  sans="$sans,DNS:${names[$i]}.mc-hl.smoke.svc,IP:$net.$((i + 1))"
  hosts+=(--add-host "${names[$i]}.mc-hl.smoke.svc:$net.$((i + 1))")
done
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=images-test-ca" -keyout "$state/tls/ca.key" -out "$state/tls/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=mc" -keyout "$state/tls/tls.key" -out "$state/tls/tls.csr" 2>/dev/null
openssl x509 -req -in "$state/tls/tls.csr" -CA "$state/tls/ca.crt" -CAkey "$state/tls/ca.key" -CAcreateserial -days 1 \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans") -out "$state/tls/tls.crt" 2>/dev/null
rm -f "$state/tls/ca.key" "$state/tls/tls.csr" "$state/tls/ca.srl"
for i in 0 1 2; do mkdir -p "$state/data-$i"; done
chown -R 26:26 "$state"
chmod 600 "$state/tls/tls.key"

start_instance() {
  local i=$1
  podman run -d --name "mcsmoke-${names[$i]}" --network=host "${hosts[@]}" --stop-timeout 30 \
    -e MEMORYCLUSTER_POD_NAME="${names[$i]}" -e MEMORYCLUSTER_LISTEN_ADDRESS="$net.$((i + 1))" \
    -v "$state/config:/etc/memorycluster/config:ro" -v "$state/secrets:/etc/memorycluster/secrets:ro" \
    -v "$state/tls:/etc/memorycluster/tls:ro" -v "$state/data-$i:/var/lib/memorycluster" \
    "localhost/memorycluster-instance:$version" instance --config /etc/memorycluster/config/instance.conf >/dev/null
}
started=$SECONDS
for i in 0 1 2; do start_instance "$i"; done

# The member whose manager says it is the primary, ready for writes (its index), at an epoch above $1.
primary_above() {
  local i doc
  for i in 0 1 2; do
    doc="$(curl -s --max-time 2 "http://$net.$((i + 1)):8000/status" 2>/dev/null)" || continue
    python3 - "$doc" "$1" <<'PY' && { echo "$i"; return 0; }
import json, sys
d = json.loads(sys.argv[1])
ok = d.get("role") == "primary" and d.get("ready") is True and int(d.get("epoch") or 0) > int(sys.argv[2])
sys.exit(0 if ok else 1)
PY
  done
  return 1
}
# Waits up to $1 seconds for a primary at an epoch above $2 and prints its index (the same answer that ended the
# wait: the role may move between two questions).
wait_primary() {
  local found
  for _ in $(seq 1 $(($1 * 2))); do
    found="$(primary_above "$2")" && { echo "$found"; return 0; }
    sleep 0.5
  done
  return 1
}
select_one() {
  PGPASSWORD="$(cat "$state/secrets/app/password")" PGCONNECT_TIMEOUT=3 psql -Atc "select 1" \
    "host=$net.$(($1 + 1)) port=5432 user=app dbname=app sslmode=verify-ca sslrootcert=$state/tls/ca.crt" 2>/dev/null
}
epoch_of() { curl -s --max-time 2 "http://$net.$(($1 + 1)):8000/status" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("epoch") or 0)'; }

first="$(wait_primary 180 0)" || fail "no primary within 180 s"
echo "images-test: ${names[$first]} is the primary $((SECONDS - started)) s after the containers started"
until_ok 30 select_one "$first" >/dev/null || fail "select 1 over TLS on ${names[$first]} did not answer"
echo "images-test: select 1 over TLS (sslmode=verify-ca) on ${names[$first]}: $(select_one "$first")"

# A failover needs a replica that has the data: wait until both stream from the primary (killed while they still
# cloned, no member could take over, rightly: the only copy was on the killed primary's volume).
all_ready() {
  local i
  for i in 0 1 2; do
    curl -s --max-time 2 "http://$net.$((i + 1)):8000/status" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("ready") is True else 1)' || return 1
  done
}
until_ok 120 all_ready || fail "the replicas did not stream from ${names[$first]} within 120 s"
echo "images-test: both replicas stream from ${names[$first]} $((SECONDS - started)) s after the containers started"
epoch="$(epoch_of "$first")"
killed=$SECONDS
podman kill --signal KILL "mcsmoke-${names[$first]}" >/dev/null
next="$(wait_primary 60 "$epoch")" || fail "no new primary within 60 s of killing ${names[$first]}'s container"
[ "$next" != "$first" ] || fail "the killed ${names[$first]} is still the primary"
until_ok 30 select_one "$next" >/dev/null || fail "select 1 on the new primary ${names[$next]} did not answer"
echo "images-test: ${names[$first]}'s container killed; ${names[$next]} is the primary at epoch $(epoch_of "$next") after $((SECONDS - killed)) s and answers select 1"

podman run -d --name mcsmoke-compute --network=host "${hosts[@]}" \
  -e MEMORYCLUSTER_COMPUTE_PRIMARY_HOST="$net.$((next + 1))" -e MEMORYCLUSTER_COMPUTE_PRIMARY_PORT=5432 \
  -e MEMORYCLUSTER_COMPUTE_DATABASE=app -e MEMORYCLUSTER_COMPUTE_USER=app \
  -e MEMORYCLUSTER_COMPUTE_PASSWORD="$(cat "$state/secrets/app/password")" -e MEMORYCLUSTER_COMPUTE_TOKEN="$(random 32)" \
  -e MEMORYCLUSTER_COMPUTE_HOST="$net.10" -e MEMORYCLUSTER_COMPUTE_PORT=8080 \
  "localhost/memorycluster-compute:$version" compute >/dev/null
until_ok 120 curl -sf --max-time 2 "http://$net.10:8080/healthz" >/dev/null || fail "compute did not serve /healthz within 120 s"
echo "images-test: memorycluster-compute serves /healthz against ${names[$next]}: $(curl -s "http://$net.10:8080/healthz" | head -c 200)"
echo "images-test: passed"
