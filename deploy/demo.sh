#!/usr/bin/env bash
# Runs the Bulwark demo: the sample orders API (bin/demo-upstream) and the
# gateway in front of it (bin/bulwark serve --config configs/demo.yaml),
# prints curl commands that show allowed and denied requests, and stays in
# the foreground until Ctrl-C, which stops both. Run it through `make demo`,
# which builds the two binaries first.
#
# Environment (defaults in brackets):
#   DEMO_PORT [8080]           gateway listener on 127.0.0.1
#   DEMO_ADMIN_PORT [9901]     admin listener (/readyz, /metrics) on 127.0.0.1
#   DEMO_UPSTREAM_PORT [9000]  demo upstream on 127.0.0.1
#   BULWARK_BIN [bin/bulwark], UPSTREAM_BIN [bin/demo-upstream],
#   DEMO_CONFIG [configs/demo.yaml]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export DEMO_PORT="${DEMO_PORT:-8080}"
export DEMO_ADMIN_PORT="${DEMO_ADMIN_PORT:-9901}"
export DEMO_UPSTREAM_PORT="${DEMO_UPSTREAM_PORT:-9000}"
bulwark="${BULWARK_BIN:-bin/bulwark}"
upstream="${UPSTREAM_BIN:-bin/demo-upstream}"
config="${DEMO_CONFIG:-configs/demo.yaml}"

die() {
	echo "demo: $*" >&2
	exit 1
}

for bin in "$bulwark" "$upstream"; do
	[[ -x $bin ]] || die "$bin not found: run make demo (it builds bin/bulwark and bin/demo-upstream)"
done
for port in "$DEMO_PORT" "$DEMO_ADMIN_PORT" "$DEMO_UPSTREAM_PORT"; do
	[[ $port =~ ^[0-9]+$ ]] || die "port \"$port\" is not a number"
	# A successful connect means something else already listens there.
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		die "127.0.0.1:$port is already in use; choose other ports, e.g. DEMO_PORT=18080 DEMO_ADMIN_PORT=19901 DEMO_UPSTREAM_PORT=19000 make demo"
	fi
done

pids=()
stop_all() {
	trap - EXIT INT TERM
	if ((${#pids[@]} > 0)); then
		echo "demo: stopping" >&2
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
}
trap stop_all EXIT
trap 'exit 0' INT TERM

# wait_ready NAME PID URL: wait until URL answers 200 (checked with bulwark's
# own healthcheck, so the demo needs no curl), or fail when PID exits.
wait_ready() {
	local name=$1 pid=$2 url=$3
	for _ in $(seq 1 150); do
		if "$bulwark" healthcheck --url "$url" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || die "$name exited before it was ready (see its log above)"
		sleep 0.2
	done
	die "$name did not become ready at $url within 30s"
}

"$upstream" -listen "127.0.0.1:$DEMO_UPSTREAM_PORT" &
pids+=($!)
wait_ready demo-upstream "$!" "http://127.0.0.1:$DEMO_UPSTREAM_PORT/healthz"

"$bulwark" serve --config "$config" &
pids+=($!)
wait_ready bulwark "$!" "http://127.0.0.1:$DEMO_ADMIN_PORT/readyz"

gw="http://127.0.0.1:$DEMO_PORT"
cat <<MSG

Bulwark is up: $gw -> demo upstream http://127.0.0.1:$DEMO_UPSTREAM_PORT, admin http://127.0.0.1:$DEMO_ADMIN_PORT
Run these in another terminal. The upstream logs every request that reaches it
("upstream: GET /orders 200"); the denied ones never appear there.

# Allowed: list orders, read one, create one, stream an order's events
curl -i $gw/orders
curl -i $gw/orders/1
curl -i -H 'Content-Type: application/json' -d '{"customer":"carol","item":"widget","quantity":3}' $gw/orders
curl -N $gw/orders/1/events

# Denied by the gateway with application/problem+json; none reaches the upstream
curl -i $gw/admin                                  # 404: no route
curl -i -X DELETE $gw/orders/1                     # 405: wrong method, with Allow
curl -i --path-as-is '$gw/orders/1/../../admin'    # 400: path traversal
head -c 20000 /dev/zero | tr '\\0' x | curl -i -H 'Content-Type: application/json' --data-binary @- $gw/orders    # 413: over create-order's 16KiB

# Metrics on the admin port
curl -s http://127.0.0.1:$DEMO_ADMIN_PORT/metrics | grep '^bulwark_requests_total'

Press Ctrl-C to stop the gateway and the upstream.

MSG

# Stay in the foreground while both run; if either dies, stop the other.
while kill -0 "${pids[0]}" 2>/dev/null && kill -0 "${pids[1]}" 2>/dev/null; do
	sleep 1
done
die "a process exited unexpectedly (see its log above)"
