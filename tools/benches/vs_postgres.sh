#!/usr/bin/env bash
# A peer on the same machine: Jol's single-event publish against PostgreSQL inserting the same
# event JSON as one durable row per transaction, with the same number of clients, in one run.
#
#   tools/benches/vs_postgres.sh [CLIENTS] [SECONDS] [STORE]     (defaults: 32, 20, the default engine)
#
# Starts a throwaway PostgreSQL cluster (Debian's `postgresql`: initdb in a temporary folder,
# a unix socket there, default `synchronous_commit = on`, `fsync = on`), inserts the event JSON
# of `tests/examples/employment-status/valid/employment-started.json` with `pgbench` (one
# INSERT per transaction into a table with a primary key, as Jol indexes each event by id), then
# runs `jol bench publish --batch 1` with the same client count, and prints both rates and their
# ratio. Needs target/release/jol (cargo build --release; JOL=path runs another build). As root,
# PostgreSQL runs as `postgres`.
set -euo pipefail
clients=${1:-32}
seconds=${2:-20}
store=${3:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
jol="${JOL:-$root/target/release/jol}"
[ -x "$jol" ] || { echo "build first: cargo build --release" >&2; exit 2; }
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }

work=$(mktemp -d)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; fi
cleanup() { as_pg "$bin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

as_pg "$bin/initdb" -D "$work/data" -A trust -U bench >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$bin/pg_ctl" -D "$work/data" -l "$work/pg.log" -w \
  -o "-k $work -p $port -c listen_addresses='' -c max_connections=100" start >/dev/null
psql=("$bin/psql" -h "$work" -p "$port" -U bench -d postgres -q -v ON_ERROR_STOP=1)
as_pg "${psql[@]}" -c "CREATE TABLE events (id uuid PRIMARY KEY, body json NOT NULL)"
sync_commit=$(as_pg "${psql[@]}" -At -c "SHOW synchronous_commit")

body=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))).replace("'"'"'", "'"''"'"))' \
  "$root/tests/examples/employment-status/valid/employment-started.json")
cat >"$work/insert.sql" <<SQL
INSERT INTO events (id, body) VALUES (gen_random_uuid(), '$body');
SQL
if [ "$(id -u)" = 0 ]; then chown postgres "$work/insert.sql"; fi
pg_tps=$(as_pg "$bin/pgbench" -h "$work" -p "$port" -U bench -n -c "$clients" -j 2 -T "$seconds" \
  -f "$work/insert.sql" postgres 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')

events=$(python3 -c "print(max(10000, int(float('$pg_tps') * $seconds)))")
store_arg=()
[ -n "$store" ] && store_arg=(--store "$store")
jol_rate=$("$jol" bench publish --batch 1 --clients "$clients" --events "$events" "${store_arg[@]}" --json 2>/dev/null \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(next(f["value"] for f in d["figures"] if f["name"].startswith("single-event")))')

python3 - "$jol_rate" "$pg_tps" "$clients" "$sync_commit" <<'PY'
import sys
jol, pg, clients, sync = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
print(f"{clients} clients, one durable event per request / transaction")
print(f"  jol publish (signed, validated, Merkle-logged, flushed) {jol:10.1f} events/s")
print(f"  PostgreSQL INSERT of the same JSON (synchronous_commit={sync}) {pg:10.1f} rows/s")
print(f"  ratio jol / PostgreSQL {jol / pg:.2f}")
PY
