#!/usr/bin/env bash
# Runs the Bulwark demo: the sample orders API (bin/demo-upstream) and the
# gateway in front of it (bin/bulwark serve --config configs/demo.yaml),
# prints curl commands that show allowed and denied requests, and stays in
# the foreground until Ctrl-C, which stops both. Run it through `make demo`,
# which builds the two binaries first.
#
# Every route needs a credential: a JWT from the demo identity provider that
# bin/demo-upstream serves on its own port (/demo-idp/, loopback only, a
# token for anyone who asks), or the consumer acme's API key
# demo-key-acme-0123456789abcdef, which is public: never reuse it. See the
# header of configs/demo.yaml.
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

# The upstream goes first: it also serves the identity provider's key set,
# and the gateway is not ready (/readyz 503, token routes 503) until it has
# fetched those keys once.
"$upstream" -listen "127.0.0.1:$DEMO_UPSTREAM_PORT" &
pids+=($!)
wait_ready demo-upstream "$!" "http://127.0.0.1:$DEMO_UPSTREAM_PORT/healthz"

"$bulwark" serve --config "$config" &
pids+=($!)
wait_ready bulwark "$!" "http://127.0.0.1:$DEMO_ADMIN_PORT/readyz"

gw="http://127.0.0.1:$DEMO_PORT"
idp="http://127.0.0.1:$DEMO_UPSTREAM_PORT/demo-idp"
order='{"customer":"carol","item":"widget","quantity":3}'
cat <<MSG

Bulwark is up: $gw -> demo upstream http://127.0.0.1:$DEMO_UPSTREAM_PORT, admin http://127.0.0.1:$DEMO_ADMIN_PORT
Run these in another terminal. The upstream logs every request that reaches it, with
the caller the gateway vouched for and whether an API key got through (never):
  upstream: GET /orders/1 200 85µs subject="alice" consumer="demo-cli" api_key=absent
The denied ones never appear there.

# Credentials. The demo identity provider runs on the upstream's port (loopback only; the
# gateway has no route to it) and signs a token for anyone who asks. acme's API key is
# public and may only ever be used for this demo.
TOKEN=\$(curl -s '$idp/token?sub=alice&scope=orders:read+orders:write')
KEY=demo-key-acme-0123456789abcdef

# Allowed: read, create and stream with alice's token; read with acme's API key
curl -i -H "Authorization: Bearer \$TOKEN" $gw/orders/1      # 200, "served_to":"alice"
curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '$order' $gw/orders    # 201
curl -N -H "Authorization: Bearer \$TOKEN" $gw/orders/1/events
curl -i -H "X-API-Key: \$KEY" $gw/orders                      # 200 as acme, customers masked ("***"); the key is not forwarded
curl -i -H "X-API-Key: \$KEY" -H 'X-Bulwark-Subject: admin' $gw/orders/1    # 200, "served_to":"acme": the spoofed header is removed

# Denied by authentication (401 with WWW-Authenticate, 403 insufficient_scope)
curl -i $gw/orders                                          # 401: no credentials
curl -i -H "Authorization: Bearer \${TOKEN}x" $gw/orders    # 401: tampered signature
curl -i -H "Authorization: Bearer eyJhbGciOiJub25lIn0.\$(echo "\$TOKEN" | cut -d. -f2)." $gw/orders    # 401: alg none
curl -i -H 'X-API-Key: not-a-key' $gw/orders                # 401: unknown API key
curl -i -H "X-API-Key: \$KEY" -H 'Content-Type: application/json' -d '$order' $gw/orders    # 403: acme lacks orders:write

# Denied by the route table and limits; all answers are application/problem+json and
# none of these requests reaches the upstream
curl -i $gw/admin                                  # 404: no route
curl -i '$gw/demo-idp/token?sub=alice'             # 404: the identity provider is not behind the gateway
curl -i -X DELETE $gw/orders/1                     # 405: wrong method, with Allow
curl -i --path-as-is '$gw/orders/1/../../admin'    # 400: path traversal
curl -i -H "Authorization: Bearer \$TOKEN" $gw/orders/abc    # 400: orderId breaks the spec's pattern
curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"customer":"carol","item":"widget","quantity":0}' $gw/orders    # 400: quantity breaks "minimum"
curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"customer":"carol","item":"widget","quantity":3,"status":"shipped"}' $gw/orders    # 400: status is readOnly (mass assignment)
curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"customer":"carol","customer":"mallory","item":"widget","quantity":3}' $gw/orders    # 400: duplicate key
head -c 20000 /dev/zero | tr '\\0' x | curl -i -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' --data-binary @- $gw/orders    # 413: over create-order's 16KiB (401 without the token: authentication comes first)

# Metrics on the admin port
curl -s http://127.0.0.1:$DEMO_ADMIN_PORT/metrics | grep -E '^bulwark_(requests|auth_attempts|denials)_total'

Press Ctrl-C to stop the gateway and the upstream.

MSG

# Stay in the foreground while both run; if either dies, stop the other.
while kill -0 "${pids[0]}" 2>/dev/null && kill -0 "${pids[1]}" 2>/dev/null; do
	sleep 1
done
die "a process exited unexpectedly (see its log above)"
