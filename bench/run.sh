#!/usr/bin/env bash
# Side-by-side load bench of lro_cancel against the plain proxy and the usual
# "proxy + auth service" shapes, on REST cancels, other traffic, batches and
# gRPC cancels, then lro_cancel's memory with 100,000 cached tokens and with
# 10 MiB batches. Everything runs on 127.0.0.1:
#   bench/fake      upstream API (HTTP and gRPC) and tokeninfo stand-ins
#   bench/auth      the auth service of forward_auth and nginx's auth_request
#   bench/grpcload  the gRPC load generator; wrk (bench/wrk.lua) for HTTP
#   one Caddy process per contender, and nginx
#
#   bash bench/run.sh          # ~5 minutes on 2 cores; ~7.5 with a cold build and the installs
#   BENCH_SECONDS=2 BENCH_ROUNDS=1 BENCH_PAIR_ROUNDS=1 BENCH_TOKENS=5000 bash bench/run.sh   # smoke run
#
# Contenders, run round-robin (each round runs every contender of every
# workload once, even rounds in reverse order), after a warm-up run of each:
#   cancel  POST {} to /v1/operations/bench-1:cancel with a bearer token:
#           bare (Caddy reverse_proxy), barelog (bare with Caddy's access
#           log to a file: what one log line per request costs Caddy
#           itself), lro (lro_cancel, tokeninfo with the token cached, audit
#           log to a file), devnull (lro with the audit log to /dev/null:
#           every record encoded and written, no file system under it),
#           nolog (lro with the audit log `output discard`, which Caddy
#           turns into a no-op logger: no record encoded or written),
#           journal (lro + audit journal), sealed (lro + a sealed audit
#           journal: a seal key, checkpoints), policy (lro + a 10-rule CEL
#           policy, every rule evaluated, the last allows), limits (lro +
#           a fleet-wide limit on a loopback redis-server, every cancel
#           admitted: one Lua script per cancel; Redis's own CPU is not
#           counted, it is another server in a fleet), fwdauth (Caddy
#           forward_auth to bench/auth), nginx (auth_request to bench/auth)
#   other   GET /v1/matters: bare, lro (lro_cancel only matches)
#   batch   a 100-part batch of GETs to /batch/vault/v1: bare, lro
#   grpc    google.longrunning CancelOperation over h2c: bare (Caddy
#           reverse_proxy h2c://), lro, nolog (lro, audit log discarded)
# Pinning: the gateway side (Caddy, nginx, bench/auth) runs on the second
# CPU the script may use (taskset -c 1 on a 2-core machine), the load
# generators and bench/fake on the first (taskset -c 0); with one CPU
# nothing is pinned. CPU/req is the gateway process's CPU time (user +
# system) over the run divided by the requests, plus bench/auth's for
# fwdauth and nginx (nginx: master and worker).
#
# Paired runs, after the round-robin: two contenders at once, both on the
# gateway CPU, each with its own load generator, so that the machine's
# drift weighs on both sides of a ratio alike. They carry the targets, one
# pair per row of the contract's table: bare with lro on the not-a-cancel
# control; bare with nolog, REST and gRPC (the governance alone); barelog
# with lro (the record against Caddy's own access log); bare with lro on
# the 100-part batch; lro with policy, with sealed and with limits (each
# feature against the same gateway without it); and, for reference, bare
# with lro (REST, gRPC) and lro with the plain journal.
#
# Knobs: BENCH_SECONDS (each measured run, default 3), BENCH_ROUNDS (default
# 2), BENCH_PAIR_ROUNDS (default 3), BENCH_THREADS and BENCH_CONNECTIONS (wrk's -t and -c, default 2 and 32;
# grpcload uses BENCH_THREADS connections and BENCH_CONNECTIONS workers),
# BENCH_TOKENS (distinct tokens of the memory phase, default 100000).
# Installs wrk and nginx with apt-get when they are missing (root or sudo).
# Binaries, configs, logs and raw reports land in bench/out/.
#
# A measurement, not a test: it exits 0 whether or not the targets are met,
# and non-zero only when something broke (a contender did not start, a
# request failed, a process died).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-2}
pair_rounds=${BENCH_PAIR_ROUNDS:-3}
tokens=${BENCH_TOKENS:-100000}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNECTIONS:-32}
for knob in secs:BENCH_SECONDS rounds:BENCH_ROUNDS pair_rounds:BENCH_PAIR_ROUNDS threads:BENCH_THREADS conns:BENCH_CONNECTIONS tokens:BENCH_TOKENS; do
	var=${knob%%:*}
	if ! [[ ${!var} =~ ^[1-9][0-9]{0,8}$ ]]; then
		echo "bench: ${knob#*:} must be a positive integer, got '${!var}'" >&2
		exit 2
	fi
done
limits_ok=1
((secs <= 600 && rounds <= 50 && pair_rounds <= 50 && threads <= 64 && conns <= 4096 && tokens <= 10000000)) || limits_ok=0
if [ "$limits_ok" -eq 0 ] || ((threads > conns)); then
	echo "bench: knobs out of range: BENCH_SECONDS <= 600, BENCH_ROUNDS and BENCH_PAIR_ROUNDS <= 50, BENCH_THREADS <= 64 and <= BENCH_CONNECTIONS <= 4096, BENCH_TOKENS <= 10000000" >&2
	exit 2
fi
warmup=1
out=$root/bench/out

# Every process started here is ended on exit, whatever the exit.
pids=()
policy_rc="" # a policy-rc.d this script put in place, removed on exit
cleanup() {
	local pid _
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for _ in $(seq 50); do
		local alive=0
		for pid in "${pids[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		if [ "$alive" -eq 0 ]; then break; fi
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
	if [ -n "$policy_rc" ]; then "${sudo[@]}" rm -f "$policy_rc" || true; fi
}
sudo=()
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench: $*" >&2
	exit 1
}

# wait_until tries a command every 0.1 s for at most 10 s.
wait_until() {
	local _
	for _ in $(seq 100); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port sets port to the next port that nothing answers on, from a
# random start below the ephemeral range, so that two benches started at
# once rarely reach for the same ports.
next_port=$((18000 + RANDOM % 10000))
pick_port() {
	local _
	for _ in $(seq 1000); do
		next_port=$((next_port + 1))
		listening "$next_port" || break
	done
	port=$next_port
}

# ticks prints the user+system CPU time the given processes have used, in
# clock ticks (all threads of each).
ticks() {
	local pid f sum=0
	for pid in "$@"; do
		read -r -a f <"/proc/$pid/stat" || fail "process $pid is gone"
		# Fields 14 and 15; the name (field 2) has no spaces for these.
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# field prints key's value in a BENCH line, 0 when the line has none.
field() { awk -v k="$2" '{ for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2) } END { print v + 0 }' <<<"$1"; }

echo "== setup"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_before%% *}" 'BEGIN { exit !(l >= 1) }'; then
	echo "note: load average $load_before before the bench: other work shares these cores, expect noisy numbers"
fi

# The CPUs this script may use (a container may have fewer than nproc says).
read -r -a cpus < <(awk '/^Cpus_allowed_list:/ {
	n = split($2, r, ",")
	for (i = 1; i <= n; i++) { m = split(r[i], ab, "-"); for (c = ab[1]; c <= ab[m]; c++) printf "%d ", c }
	print ""
}' /proc/self/status)
pin_gw=()
pin_load=()
if [ "${#cpus[@]}" -ge 2 ] && command -v taskset >/dev/null; then
	pin_gw=(taskset -c "${cpus[1]}")
	pin_load=(taskset -c "${cpus[0]}")
	pinning="gateway side (Caddy, nginx, bench/auth) on CPU ${cpus[1]} (taskset -c ${cpus[1]}), load generators and bench/fake on CPU ${cpus[0]} (taskset -c ${cpus[0]})"
elif [ "${#cpus[@]}" -ge 2 ]; then
	pinning="not pinned: taskset (util-linux) is not installed"
else
	pinning="not pinned: only one CPU (${cpus[*]}) is available, everything shares it"
fi
echo "pinning: $pinning"

# Missing tools come from Debian's packages.
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
nginx_bin=$(command -v nginx || true)
if [ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ]; then nginx_bin=/usr/sbin/nginx; fi
[ -n "$nginx_bin" ] || need+=(nginx)
nginx_note=""
if [ "${#need[@]}" -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		sudo=()
	elif command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		sudo=(false)
	fi
	if [ "${sudo[*]}" = false ]; then
		[[ " ${need[*]} " != *" wrk "* ]] || fail "wrk is not installed and installing it needs root or sudo"
		nginx_note="skipped: nginx is not installed and installing it needs root or sudo"
	else
		echo "installing ${need[*]} with apt-get"
		apt_start=$SECONDS
		# Debian's nginx package would start a system nginx on port 80:
		# policy-rc.d forbids starting services while the packages install.
		if [[ " ${need[*]} " == *" nginx "* ]] && [ ! -e /usr/sbin/policy-rc.d ]; then
			policy_rc=/usr/sbin/policy-rc.d
			printf '#!/bin/sh\n# bench/run.sh: no service starts while it installs packages\nexit 101\n' |
				"${sudo[@]}" tee "$policy_rc" >/dev/null
			"${sudo[@]}" chmod 755 "$policy_rc"
		fi
		"${sudo[@]}" apt-get update -qq || fail "apt-get update failed"
		"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
			fail "apt-get install ${need[*]} failed"
		if [ -n "$policy_rc" ]; then
			"${sudo[@]}" rm -f "$policy_rc"
			policy_rc=""
			# Nor at the next boot.
			if [ -d /run/systemd/system ]; then "${sudo[@]}" systemctl disable --quiet nginx 2>/dev/null || true; fi
		fi
		# Whatever policy-rc.d said, no system nginx stays up because of this run.
		if [[ " ${need[*]} " == *" nginx "* ]] && [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
			echo "stopping the system nginx the package started"
			"${sudo[@]}" /usr/sbin/nginx -s quit || true
		fi
		echo "installed in $((SECONDS - apt_start))s"
		nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
	fi
fi
if [ -z "$nginx_note" ] && ! "$nginx_bin" -V 2>&1 | grep -q -- --with-http_auth_request_module; then
	nginx_note="skipped: $nginx_bin has no auth_request module"
fi

rm -rf "$out"
mkdir -p "$out/xdg"
build_start=$SECONDS
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/" ./bench/fake ./bench/auth ./bench/grpcload
build_secs=$((SECONDS - build_start))
echo "built caddy, fake, auth and grpcload in ${build_secs}s"

# server names the processes of the gateway side (a name stands for the
# pids of one contender), for CPU accounting and the liveness checks.
declare -A procs_of port_of admin_of
servers=()

"${pin_load[@]}" "$out/fake" >"$out/fake.ports" 2>"$out/fake.log" &
pids+=($!)
fake_pid=$!
wait_until test -s "$out/fake.ports" || fail "the fake did not start: $(cat "$out/fake.log")"
read -r up ti grpc_up < <(sed 's/[a-z]*=//g' "$out/fake.ports")
echo "fake upstream on 127.0.0.1:$up, gRPC upstream on 127.0.0.1:$grpc_up, tokeninfo on 127.0.0.1:$ti"

"${pin_gw[@]}" "$out/auth" >"$out/auth.port" 2>"$out/auth.log" &
pids+=($!)
auth_pid=$!
wait_until test -s "$out/auth.port" || fail "bench/auth did not start: $(cat "$out/auth.log")"
auth_port=$(sed 's/[a-z]*=//' "$out/auth.port")
echo "auth service on 127.0.0.1:$auth_port"

# The limits contender's store: a redis-server of its own on loopback,
# without persistence, with the load side (it is another server in a
# fleet, not the gateway's CPU).
pick_port
redis_port=$port
"${pin_load[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$out" --logfile "$out/redis.log" &
pids+=($!)
wait_until listening "$redis_port" || fail "redis-server did not listen on $redis_port: $(tail -n3 "$out/redis.log")"
echo "redis-server on 127.0.0.1:$redis_port"
# A limit every cancel of the bench passes (the count is never reached in
# a second), so that the runs measure the check, not refusals.
limits_block=$(
	cat <<EOF
		limits {
			store redis 127.0.0.1:$redis_port
			rule per-principal 100000000 1s
		}
EOF
)

# The policy contender's rules: realistic refusals, none of which holds for
# the bench's caller (bench-runner@ops.example.com, from the fake
# tokeninfo), so all ten are evaluated and the last one allows.
policy_block=$(
	cat <<'EOF'
		policy {
			deny contractors `request.auth.principal.endsWith('@contractors.example.com')`
			deny unverified-email `request.auth.claims['email_verified'] != 'true'`
			deny foreign-client `!(request.auth.claims['azp'] in ['bench', 'ops-console'])`
			deny other-services `!(resource.service in ['vault.googleapis.com', 'aiplatform.googleapis.com', 'container.googleapis.com'])`
			deny unlisted-methods `resource.method in ['unlisted', 'custom']`
			deny prod-needs-ticket `resource.name.startsWith('operations/prod-') && !('x-change-ticket' in request.headers)`
			deny legal-hold `resource.name.startsWith('operations/hold-') || resource.name.contains('/legal-hold/')`
			deny change-freeze `request.time >= timestamp('2030-12-20T00:00:00Z') && request.time < timestamp('2031-01-05T00:00:00Z')`
			allow sre `request.auth.principal.endsWith('@sre.example.com')`
			allow ops-vault `resource.service == 'vault.googleapis.com' && request.auth.principal.endsWith('@ops.example.com') && 'https://www.googleapis.com/auth/ediscovery' in request.auth.scopes`
		}
EOF
)

# caddyfile prints a Caddy contender's config. Only the handlers differ:
# the global options, the admin endpoint (for the memory readings), the
# audit log and the absent access log (but for barelog) are the same for
# all.
# audit_output is where a contender's audit log goes: a file, except for
# devnull (/dev/null: encoded and written, no file system) and nolog
# (discarded: Caddy gives a log whose only output is discard a no-op
# core, so nothing is encoded). The three tell the module's own work from
# encoding each record and from appending it to a file.
audit_output() {
	case $1 in
	nolog | grpc-nolog) echo "output discard" ;;
	devnull) printf 'output file /dev/null {\n\t\t\troll_disabled\n\t\t}' ;;
	*) printf 'output file %s {\n\t\t\troll_disabled\n\t\t}' "$out/audit-$1.json" ;;
	esac
}

caddyfile() {
	local name=$1 port=$2 admin=$3
	cat <<EOF
{
	admin 127.0.0.1:$admin
	auto_https off
	persist_config off
	default_bind 127.0.0.1
EOF
	case $name in grpc-*) printf '\tservers {\n\t\tprotocols h1 h2c\n\t}\n' ;; esac
	cat <<EOF
	log default {
		output file $out/caddy-$name.log {
			roll_disabled
		}
		format json
		exclude http.handlers.lro_cancel.audit
	}
	log audit {
		$(audit_output "$name")
		format json
		include http.handlers.lro_cancel.audit
	}
}

http://:$port {
EOF
	case $name in
	barelog)
		printf '\tlog {\n\t\toutput file %s {\n\t\t\troll_disabled\n\t\t}\n\t\tformat json\n\t}\n' "$out/access-barelog.json"
		;;
	lro | devnull | nolog | journal | sealed | policy | limits | grpc-lro | grpc-nolog)
		printf '\tlro_cancel {\n\t\ttokeninfo http://127.0.0.1:%s/tokeninfo {\n\t\t\tcache_size %s\n\t\t}\n' "$ti" "$tokens"
		[ "$name" != journal ] || printf '\t\taudit {\n\t\t\tjournal %s\n\t\t}\n' "$out/journal"
		[ "$name" != sealed ] || printf '\t\taudit {\n\t\t\tjournal %s {\n\t\t\t\tseal %s\n\t\t\t}\n\t\t}\n' "$out/sealed.journal" "$out/seal.key"
		[ "$name" != policy ] || printf '%s\n' "$policy_block"
		[ "$name" != limits ] || printf '%s\n' "$limits_block"
		printf '\t}\n'
		;;
	fwdauth)
		printf '\tforward_auth 127.0.0.1:%s {\n\t\turi /check\n\t\tcopy_headers X-Auth-User\n\t}\n' "$auth_port"
		;;
	esac
	case $name in
	grpc-*) printf '\treverse_proxy h2c://127.0.0.1:%s\n}\n' "$grpc_up" ;;
	*) printf '\treverse_proxy 127.0.0.1:%s\n}\n' "$up" ;;
	esac
}

# The sealed contender's signer key.
rm -f "$out/seal.key" "$out/seal.pub" "$out/sealed.journal"
"$out/caddy" lro-cancel journal keygen --name bench.example/journal --key "$out/seal.key" --pub "$out/seal.pub" >/dev/null ||
	fail "caddy lro-cancel journal keygen failed"

journal_note=""
for name in bare barelog lro devnull nolog journal sealed policy limits fwdauth grpc-bare grpc-lro grpc-nolog; do
	pick_port
	port_of[$name]=$port
	pick_port
	admin_of[$name]=$port
	cf=$out/Caddyfile.$name
	caddyfile "$name" "${port_of[$name]}" "${admin_of[$name]}" >"$cf"
	if ! XDG_CONFIG_HOME=$out/xdg XDG_DATA_HOME=$out/xdg \
		"$out/caddy" validate --config "$cf" --adapter caddyfile >"$out/validate-$name.log" 2>&1; then
		if [ "$name" = journal ]; then
			# Caddy logs why through the default logger, which the config sends to a file.
			reason=$(cat "$out/validate-journal.log" "$out/caddy-journal.log" 2>/dev/null |
				grep -o 'provision http.handlers.lro_cancel: [^"]*' | head -n1 || true)
			journal_note="skipped: journal not available in this build"
			echo "journal: $journal_note${reason:+ (caddy validate: $reason)}"
			continue
		fi
		fail "caddy validate refused the $name contender: $(tail -qn2 "$out/validate-$name.log" "$out/caddy-$name.log" 2>/dev/null)"
	fi
	XDG_CONFIG_HOME=$out/xdg XDG_DATA_HOME=$out/xdg \
		"${pin_gw[@]}" "$out/caddy" run --config "$cf" --adapter caddyfile >"$out/caddy-$name.stderr" 2>&1 &
	pids+=($!)
	procs_of[$name]=$!
	servers+=("$name")
	wait_until listening "${port_of[$name]}" ||
		fail "caddy ($name) did not listen on ${port_of[$name]}: $(tail -n3 "$out/caddy-$name.stderr")"
	echo "$name: caddy pid ${procs_of[$name]} on 127.0.0.1:${port_of[$name]} (admin ${admin_of[$name]})"
done

# nginx: auth_request to bench/auth, keepalive to it and to the upstream,
# one worker, no access log, its own prefix, pid and temp files in
# bench/out, in the foreground (daemon off) so that it ends with the bench.
if [ -z "$nginx_note" ]; then
	pick_port
	port_of[nginx]=$port
	nx=$out/nginx
	mkdir -p "$nx/tmp"
	cat >"$nx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $nx/nginx.pid;
error_log $nx/error.log warn;
events {
	worker_connections 4096;
}
http {
	access_log off;
	client_body_temp_path $nx/tmp/body;
	proxy_temp_path $nx/tmp/proxy;
	fastcgi_temp_path $nx/tmp/fastcgi;
	uwsgi_temp_path $nx/tmp/uwsgi;
	scgi_temp_path $nx/tmp/scgi;
	# Caddy never closes a client connection after N requests: neither does this.
	keepalive_requests 1000000;
	upstream api {
		server 127.0.0.1:$up;
		keepalive 64;
		keepalive_requests 1000000;
	}
	upstream auth {
		server 127.0.0.1:$auth_port;
		keepalive 64;
		keepalive_requests 1000000;
	}
	server {
		listen 127.0.0.1:${port_of[nginx]};
		location / {
			auth_request /check;
			proxy_pass http://api;
			proxy_http_version 1.1;
			proxy_set_header Host \$http_host;
			proxy_set_header Connection "";
		}
		location = /check {
			internal;
			proxy_pass http://auth/check;
			proxy_http_version 1.1;
			proxy_set_header Host \$http_host;
			proxy_set_header Connection "";
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
		}
	}
}
EOF
	nginx_cmd=("$nginx_bin" -p "$nx/" -c "$nx/nginx.conf" -e "$nx/error.log")
	"${nginx_cmd[@]}" -t >"$nx/test.log" 2>&1 || fail "nginx -t refused the config: $(tail -n3 "$nx/test.log")"
	"${pin_gw[@]}" "${nginx_cmd[@]}" >"$nx/stderr" 2>&1 &
	pids+=($!)
	master=$!
	wait_until listening "${port_of[nginx]}" || fail "nginx did not listen on ${port_of[nginx]}: $(tail -n3 "$nx/error.log" "$nx/stderr")"
	# The master and its workers.
	workers=$(awk -v m="$master" '$4 == m { printf "%s%s", sep, $1; sep = " " }' /proc/[0-9]*/stat 2>/dev/null || true)
	[ -n "$workers" ] || fail "nginx (pid $master) has no worker"
	read -r -a worker_pids <<<"$workers"
	pids+=("${worker_pids[@]}")
	procs_of[nginx]="$master $workers"
	servers+=(nginx)
	echo "nginx: $("$nginx_bin" -v 2>&1 | cut -d' ' -f3), master pid $master, workers $workers on 127.0.0.1:${port_of[nginx]}"
else
	echo "nginx: $nginx_note"
fi

# alive fails unless every process the bench started is still running.
alive() {
	local name pid
	for pid in "$fake_pid" "$auth_pid"; do kill -0 "$pid" 2>/dev/null || fail "a helper (pid $pid) died: $(tail -n3 "$out/fake.log" "$out/auth.log")"; done
	for name in "${servers[@]}"; do
		for pid in ${procs_of[$name]}; do
			kill -0 "$pid" 2>/dev/null && continue
			if grep -qs '"signal":"SIGTERM"' "$out/caddy-$name.log"; then
				fail "$name (pid $pid) was ended by a SIGTERM from outside the bench (a pkill of someone else's?); see $out/caddy-$name.log"
			fi
			fail "$name (pid $pid) died: see $out/caddy-$name.stderr, $out/caddy-$name.log or $out/nginx/error.log"
		done
	done
}

# Nothing started here may listen beyond loopback.
if command -v ss >/dev/null; then
	all_pids=" ${pids[*]} "
	exposed=$(ss -Hlntup | awk -v pids="$all_pids" '{
		if (match($0, /pid=[0-9]+/) && index(pids, " " substr($0, RSTART + 4, RLENGTH - 4) " ") && $5 !~ /^127\.0\.0\.1:/) print
	}')
	[ -z "$exposed" ] || fail "listening beyond 127.0.0.1: $exposed"
	echo "listening check: every socket of the bench's processes is on 127.0.0.1"
else
	echo "listening check skipped: ss (iproute2) is not installed"
fi

# The batches: Python-shaped (googleapiclient's BatchHttpRequest: LF line
# endings, Content-ID <uuid + n>), only non-cancel parts. batch_body N FILL
# writes N parts; FILL 0 makes them GETs of matters, FILL > 0 POSTs that
# create matters with a description of FILL bytes.
boundary='===============7330845974216740156=='
batch_type="multipart/mixed; boundary=\"$boundary\""
batch_body() {
	awk -v n="$1" -v fill="$2" -v b="$boundary" 'BEGIN {
		# mawk limits sprintf to 8 KiB: long strings are concatenated and printed.
		pad = "a"
		while (length(pad) < fill) pad = pad pad
		pad = substr(pad, 1, fill)
		for (i = 1; i <= n; i++) {
			printf "--%s\nContent-Type: application/http\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n", b
			printf "Content-ID: <4a7cd0b1-4a8c-4d2f-9b1e-1c2d3e4f5a6b + %d>\n\n", i
			if (fill == 0) printf "GET /v1/matters/m-%d?alt=json HTTP/1.1\n", i
			else printf "POST /v1/matters?alt=json HTTP/1.1\n"
			printf "Content-Type: application/json\nMIME-Version: 1.0\naccept: application/json\naccept-encoding: gzip, deflate\n"
			printf "user-agent: (gzip)\nx-goog-api-client: gdcl/2.149.0 gl-python/3.12.3\n"
			printf "authorization: Bearer ya29.bench\nHost: vault.googleapis.com\n"
			if (fill == 0) { printf "\n\n"; continue }
			body = "{\"name\": \"m-" i "\", \"description\": \"" pad "\"}"
			printf "content-length: %d\n\n", length(body)
			print body
		}
		printf "--%s--\n", b
	}'
}
batch_body 100 0 >"$out/batch-100.txt"
# Just under 10 MiB (the most the gateway reads): parts of ~10 KB, trimmed
# by what 10 KB descriptions make too much.
batch_body 1000 10000 >"$out/batch-10mib.txt"
big_size=$(stat -c %s "$out/batch-10mib.txt")
over=$((big_size - (10485760 - 4096)))
if ((over > 0)); then
	batch_body 1000 $((10000 - (over + 999) / 1000)) >"$out/batch-10mib.txt"
	big_size=$(stat -c %s "$out/batch-10mib.txt")
fi
((big_size <= 10485760)) || fail "the 10 MiB batch is $big_size bytes, over the gateway's 10 MiB"

# Each contender answers a cancel, and the auth-service ones refuse a bad token.
status_of() {
	curl -s -o /dev/null -w '%{http_code}' -m 10 -X POST -H 'Host: vault.googleapis.com' \
		-H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d '{}' \
		"http://127.0.0.1:$1/v1/operations/bench-1:cancel" || true
}
for name in "${servers[@]}"; do
	case $name in grpc-*) continue ;; esac
	code=$(status_of "${port_of[$name]}" ya29.bench)
	[ "$code" = 200 ] || fail "$name answered a cancel with $code, not 200; see $out/caddy-$name.log $out/audit-$name.json"
	case $name in
	fwdauth | nginx)
		code=$(status_of "${port_of[$name]}" ya29.not-known)
		[ "$code" = 401 ] || fail "$name answered a cancel with an unknown token $code, not 401: the auth service is not consulted"
		;;
	esac
done
echo "check: every REST contender forwards the bench's cancel (200); fwdauth and nginx refuse an unknown token (401)"
# devnull and nolog keep no record to count: their answer's Audit-Id shows
# that they govern. barelog's access log has a line per request.
for name in devnull nolog; do
	tr -d '\r' < <(curl -s -o /dev/null -D - -m 10 -X POST -H 'Host: vault.googleapis.com' \
		-H 'Authorization: Bearer ya29.bench' -H 'Content-Type: application/json' -d '{}' \
		"http://127.0.0.1:${port_of[$name]}/v1/operations/bench-1:cancel" || true) |
		grep -qiE '^audit-id: .+' || fail "$name forwarded the bench's cancel without an Audit-Id: lro_cancel is not governing it"
done
[ "$(lines "$out/access-barelog.json")" -gt 0 ] || fail "barelog wrote no access log line to $out/access-barelog.json"
echo "check: devnull and nolog govern the cancel (Audit-Id); barelog logs each request ($out/access-barelog.json)"

# The policy as caddy lro-cancel explain sees it for the bench's caller.
if "$out/caddy" lro-cancel explain --config "$out/Caddyfile.policy" --adapter caddyfile \
	--principal bench-runner@ops.example.com --scope https://www.googleapis.com/auth/ediscovery \
	--claim 'email_verified="true"' --claim azp=bench \
	POST https://vault.googleapis.com/v1/operations/bench-1:cancel >"$out/explain-policy.txt" 2>&1; then
	echo "policy (caddy lro-cancel explain, in $out/explain-policy.txt):" \
		"$(grep -cE '^  (allow|deny) ' "$out/explain-policy.txt") rules evaluated, $(grep -E '^policy ' "$out/explain-policy.txt" | tr -s ' ')"
else
	fail "caddy lro-cancel explain refuses the bench's cancel under the policy: $(tail -n3 "$out/explain-policy.txt")"
fi

# The runs: workload, contender, the process that serves it.
runs=()
for c in bare barelog lro devnull nolog journal policy limits fwdauth nginx; do
	if [ -n "${procs_of[$c]:-}" ]; then runs+=("cancel $c $c"); fi
done
runs+=("other bare bare" "other lro lro" "batch bare bare" "batch lro lro" "grpc bare grpc-bare" "grpc lro grpc-lro" "grpc nolog grpc-nolog")

# load runs the load generator of a workload against the contender on a
# port for some seconds; its report goes to standard output.
load() {
	local workload=$1 port=$2 seconds=$3
	local wrk=("${pin_load[@]}" timeout $((seconds + 30)) wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency -s bench/wrk.lua)
	case $workload in
	cancel) "${wrk[@]}" "http://127.0.0.1:$port/v1/operations/bench-1:cancel" -- cancel ;;
	other) "${wrk[@]}" "http://127.0.0.1:$port/v1/matters" -- other ;;
	batch) "${wrk[@]}" "http://127.0.0.1:$port/batch/vault/v1" -- batch "$out/batch-100.txt" "$batch_type" ;;
	grpc)
		"${pin_load[@]}" timeout $((seconds + 30)) "$out/grpcload" -addr "127.0.0.1:$port" \
			-c "$conns" -conns "$threads" -d "${seconds}s"
		;;
	esac
}

# report prints "requests duration_us p50_us p99_us timeouts" from a load
# generator's report, and stops the script if any request failed.
report() {
	local raw=$1 what=$2 server=$3
	local line requests failed
	line=$(grep '^BENCH ' "$raw") || fail "no BENCH line in $raw"
	requests=$(field "$line" requests)
	failed=$(($(field "$line" non2xx) + $(field "$line" socket_errors) + $(field "$line" errors)))
	if [ "$failed" -ne 0 ] || [ "$requests" -eq 0 ]; then
		fail "$what: $requests requests, $failed failed; see $raw, $out/caddy-$server.log and $out/audit-$server.json"
	fi
	echo "$requests $(field "$line" duration_us) $(field "$line" p50_us) $(field "$line" p99_us) $(field "$line" timeouts)"
}

# gateway names the processes whose CPU a contender's requests cost.
gateway() {
	local contender=$1 server=$2
	echo "${procs_of[$server]}"
	case $contender in fwdauth | nginx) echo "$auth_pid" ;; esac
}

# measure runs one load generator against one contender, appends a result
# line unless it is a warm-up, and stops the script if any request failed.
results=$out/results.txt
: >"$results"
tick=$(getconf CLK_TCK)
measure() {
	local workload=$1 contender=$2 server=$3 seconds=$4 round=$5
	local raw=$out/run-$workload-$contender-$round.txt audit=$out/audit-$server.json
	local gw
	read -r -d '' -a gw < <(gateway "$contender" "$server") || true
	local records_before cpu_before cpu_after
	records_before=$(lines "$audit")
	cpu_before=$(ticks "${gw[@]}")
	load "$workload" "${port_of[$server]}" "$seconds" >"$raw" 2>&1 || {
		alive
		fail "the load generator failed ($workload, $contender): $(tail -n3 "$raw")"
	}
	cpu_after=$(ticks "${gw[@]}")
	sleep 0.3 # the requests in flight when the run stopped finish and are recorded
	alive
	local records=$(($(lines "$audit") - records_before))
	local requests duration_us p50_us p99_us timeouts
	read -r requests duration_us p50_us p99_us timeouts < <(report "$raw" "$workload through $contender" "$server") || exit 1
	if [ "$round" != warmup ]; then
		echo "$workload $contender $round $requests $duration_us $p50_us $p99_us ${timeouts:-0} $records $((cpu_after - cpu_before))" >>"$results"
		awk -v w="$workload" -v c="$contender" -v r="$round" -v n="$requests" -v d="$duration_us" -v t="$((cpu_after - cpu_before))" -v tick="$tick" \
			'BEGIN { printf "  round %s  %-6s %-8s %8.0f req/s %7.1f us CPU/req\n", r, w, c, n / (d / 1e6), t / tick * 1e6 / n }'
	fi
}

# measure_pair runs a workload against two Caddy contenders at the same
# time, each with its own load generator, both gateways sharing the
# gateway CPU: a drift of the machine's speed then weighs on both alike,
# which round-robin runs seconds apart cannot promise. It appends
# "workload A B round requestsA ticksA requestsB ticksB" to $pairs.
pairs=$out/pairs.txt
: >"$pairs"
measure_pair() {
	local workload=$1 a=$2 b=$3 seconds=$4 round=$5
	local rawa=$out/pair-$workload-$a-$round.txt rawb=$out/pair-$workload-$b-$round.txt
	local a0 b0 a1 b1 pa pb ra rb
	a0=$(ticks ${procs_of[$a]})
	b0=$(ticks ${procs_of[$b]})
	load "$workload" "${port_of[$a]}" "$seconds" >"$rawa" 2>&1 &
	pa=$!
	load "$workload" "${port_of[$b]}" "$seconds" >"$rawb" 2>&1 &
	pb=$!
	wait "$pa" || { alive; fail "the load generator failed ($workload, $a paired with $b): $(tail -n3 "$rawa")"; }
	wait "$pb" || { alive; fail "the load generator failed ($workload, $b paired with $a): $(tail -n3 "$rawb")"; }
	a1=$(ticks ${procs_of[$a]})
	b1=$(ticks ${procs_of[$b]})
	sleep 0.3
	alive
	read -r ra _ < <(report "$rawa" "$workload through $a (paired)" "$a") || exit 1
	read -r rb _ < <(report "$rawb" "$workload through $b (paired)" "$b") || exit 1
	if [ "$round" != warmup ]; then
		echo "$workload $a $b $round $ra $((a1 - a0)) $rb $((b1 - b0))" >>"$pairs"
		awk -v w="$workload" -v a="$a" -v b="$b" -v r="$round" -v ra="$ra" -v ta="$((a1 - a0))" -v rb="$rb" -v tb="$((b1 - b0))" -v tick="$tick" \
			'BEGIN { ca = ta / tick * 1e6 / ra; cb = tb / tick * 1e6 / rb
				printf "  round %s  %-6s %-9s %7.1f us CPU/req  with %-9s %7.1f us CPU/req  ratio %.3f\n", r, w, a, ca, b, cb, ca / cb }'
	fi
}

echo "== warm-up (${warmup}s each; the first cancel fills each token cache)"
for run in "${runs[@]}"; do
	read -r w c s <<<"$run"
	measure "$w" "$c" "$s" "$warmup" warmup
done

echo "== $rounds round-robin rounds of ${secs}s runs (wrk -t$threads -c$conns; grpcload -conns $threads -c $conns)"
for round in $(seq "$rounds"); do
	# Even rounds run the contenders in reverse order: a drift of the
	# shared machine's speed over a round then weighs on bare and on each
	# contender alike.
	order=("${runs[@]}")
	if ((round % 2 == 0)); then
		order=()
		for ((i = ${#runs[@]} - 1; i >= 0; i--)); do order+=("${runs[i]}"); done
	fi
	for run in "${order[@]}"; do
		read -r w c s <<<"$run"
		measure "$w" "$c" "$s" "$secs" "$round"
	done
done

# The paired runs: the targets' comparisons, the module without its audit
# log, and a control whose two sides differ by a match of a path (not a
# cancel through lro), which should read about 1.
pair_runs=("other bare lro" "cancel bare nolog" "grpc grpc-bare grpc-nolog" "cancel barelog lro" "batch bare lro"
	"cancel lro policy" "cancel lro sealed" "cancel lro limits" "cancel bare lro" "grpc grpc-bare grpc-lro" "cancel lro journal")
echo "== $pair_rounds paired rounds of ${secs}s runs (two contenders at once on the gateway CPU, a load generator each)"
for round in $(seq "$pair_rounds"); do
	for run in "${pair_runs[@]}"; do
		read -r w a b <<<"$run"
		measure_pair "$w" "$a" "$b" "$secs" "$round"
	done
done

tokeninfo_calls() { curl -s -m 5 "http://127.0.0.1:$ti/calls" || echo 0; }
tokeninfo_conns() { curl -s -m 5 "http://127.0.0.1:$ti/conns" || echo 0; }
calls=$(tokeninfo_calls)
conns_before=$(tokeninfo_conns)

# Memory of the lro contender: Caddy's resident set (VmRSS; VmHWM is its
# peak since the start) and Go heap (HeapAlloc, HeapInuse from the admin
# endpoint's /debug/vars), as a snapshot and after a forced GC
# (/debug/pprof/heap?gc=1 runs one).
lro_pid=${procs_of[lro]}
lro_admin=${admin_of[lro]}
heap() {
	curl -s -m 10 "http://127.0.0.1:$lro_admin/debug/vars" |
		awk '{ for (k in want) if (match($0, "\"" k "\": *[0-9]+")) { v = substr($0, RSTART, RLENGTH); sub(/.*: */, "", v); got[k] = v } }
			BEGIN { want["HeapAlloc"]; want["HeapInuse"] }
			END { printf "%d %d\n", got["HeapAlloc"], got["HeapInuse"] }'
}
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# mem_line LABEL prints the memory of lro now, and after a GC.
mem_line() {
	local rss hwm alloc inuse galloc ginuse
	rss=$(status_kib "$lro_pid" VmRSS)
	hwm=$(status_kib "$lro_pid" VmHWM)
	read -r alloc inuse < <(heap)
	curl -s -m 30 -o /dev/null "http://127.0.0.1:$lro_admin/debug/pprof/heap?gc=1" ||
		fail "lro's admin endpoint 127.0.0.1:$lro_admin did not answer /debug/pprof/heap"
	read -r galloc ginuse < <(heap)
	printf '%-34s %9s %9s %10s %10s %12s %12s\n' "$1" "$(mib $((rss * 1024)))" "$(mib $((hwm * 1024)))" \
		"$(mib "$alloc")" "$(mib "$inuse")" "$(mib "$galloc")" "$(mib "$ginuse")"
	last_gc_alloc=$galloc
}
mem_report=$out/memory.txt
printf '%-34s %9s %9s %10s %10s %12s %12s\n' "lro_cancel process (MiB)" VmRSS VmHWM HeapAlloc HeapInuse "Alloc aft GC" "Inuse aft GC" >"$mem_report"
echo "== memory: $tokens distinct tokens through lro_cancel (cache_size $tokens)"
mem_line "before" >>"$mem_report"
gc_before=$last_gc_alloc
# Runs of wrk until enough tokens were verified (wrk cannot stop after a
# number of requests): the first of 2 s gives the rate, each next one is
# sized by it, at most 12 runs and 150 s in all.
# 16 connections: lro_cancel keeps as many idle connections to tokeninfo
# as verifications may run at once (max_in_flight, 64), so they are
# reused; above 64 new tokens in flight the token cache would shed them
# (503).
distinct_conns=16
distinct_verified=0
distinct_start=$SECONDS
len=2
for run in $(seq 12); do
	timeout $((len + 30)) "${pin_load[@]}" wrk -t"$distinct_conns" -c"$distinct_conns" -d"${len}s" -s bench/wrk.lua \
		"http://127.0.0.1:${port_of[lro]}/v1/operations/bench-1:cancel" -- distinct "$run" >"$out/wrk-distinct-$run.txt" 2>&1 || {
		alive
		fail "wrk failed (distinct tokens): $(tail -n3 "$out/wrk-distinct-$run.txt")"
	}
	line=$(grep '^BENCH ' "$out/wrk-distinct-$run.txt") || fail "no BENCH line in $out/wrk-distinct-$run.txt"
	[ "$(field "$line" non2xx)" -eq 0 ] || fail "distinct tokens: $(field "$line" non2xx) requests not 2xx; see $out/audit-lro.json"
	distinct_verified=$(($(tokeninfo_calls) - calls))
	elapsed=$((SECONDS - distinct_start))
	if [ "$distinct_verified" -ge "$tokens" ] || [ "$elapsed" -ge 150 ]; then break; fi
	# The rate of this run, from wrk's own count and clock; the next run
	# verifies about 90% of the rest, so that the last ones overshoot little.
	rate=$(($(field "$line" requests) * 1000000 / ($(field "$line" duration_us) + 1) + 1))
	len=$(((tokens - distinct_verified) * 9 / 10 / rate))
	len=$((len > 30 ? 30 : len < 1 ? 1 : len))
done
distinct_secs=$((SECONDS - distinct_start))
distinct_dials=$(($(tokeninfo_conns) - conns_before))
alive
cached=$((distinct_verified < tokens ? distinct_verified : tokens))
sleep 0.5
mem_line "after $distinct_verified distinct tokens" >>"$mem_report"
gc_tokens=$last_gc_alloc

# 10 MiB batches: 2 waves of 4 at once, while a poller samples the heap
# every 20 ms or so for its peak (at most 1,200 samples).
echo "== memory: 8 batches of $big_size bytes (1,000 parts), 4 at a time"
: >"$out/heap-samples.txt"
(
	for _ in $(seq 1200); do
		[ -e "$out/heap-stop" ] && break
		heap >>"$out/heap-samples.txt"
		sleep 0.02
	done
) &
poller=$!
pids+=("$poller")
big_ok=0
for wave in 1 2; do
	curls=()
	for i in 1 2 3 4; do
		timeout 90 "${pin_load[@]}" curl -s -m 60 -o /dev/null -D "$out/batch-big-$wave-$i.headers" -w '%{http_code}\n' \
			-X POST -H 'Host: vault.googleapis.com' -H 'Authorization: Bearer ya29.bench' -H "Content-Type: $batch_type" \
			-H 'Expect:' --data-binary @"$out/batch-10mib.txt" "http://127.0.0.1:${port_of[lro]}/batch/vault/v1" \
			>"$out/batch-big-$wave-$i.code" 2>&1 &
		curls+=($!)
	done
	for i in 1 2 3 4; do
		wait "${curls[$((i - 1))]}" || true
		code=$(cat "$out/batch-big-$wave-$i.code")
		got=$(tr -d '\r' <"$out/batch-big-$wave-$i.headers" | awk -F': ' 'tolower($1) == "fake-body-bytes" { print $2 }')
		if [ "$code" != 200 ] || [ "$got" != "$big_size" ]; then
			fail "a 10 MiB batch through lro answered $code, the upstream read ${got:-nothing} of $big_size bytes; see $out/batch-big-$wave-$i.headers, $out/caddy-lro.log"
		fi
		big_ok=$((big_ok + 1))
	done
done
touch "$out/heap-stop"
wait "$poller" || true
alive
peak=$(awk '$1 > a { a = $1 } $2 > b { b = $2 } END { printf "%d %d %d", a, b, NR }' "$out/heap-samples.txt")
read -r peak_alloc peak_inuse samples <<<"$peak"
mem_line "after the batches" >>"$mem_report"

echo
echo "== results: medians over $rounds rounds; ratios per round (bare / contender for CPU, contender / bare for req/s), median (min-max)"
# stats is the awk both reports share: a median and a spread.
stats='
function sort(v, n,    i, j, t) {
	for (i = 2; i <= n; i++) {
		t = v[i]
		for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
}
# stat sets med, lo and hi of the space-separated numbers in list.
function stat(list,    v, n, i) {
	n = split(list, v, " ")
	for (i = 1; i <= n; i++) v[i] += 0
	sort(v, n)
	med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	lo = v[1]; hi = v[n]
}
'
awk -v tick="$tick" -v journal_note="$journal_note" -v nginx_note="$nginx_note" -v rounds="$rounds" "$stats"'
{
	k = $1 " " $2
	if (!(k in rps)) order[++nk] = k
	r = $4 / ($5 / 1e6); c = ($10 / tick * 1e6) / $4
	rps[k] = rps[k] " " r; p50[k] = p50[k] " " $6; p99[k] = p99[k] " " $7; cpu[k] = cpu[k] " " c
	touts[k] += $8
	R[k, $3] = r; C[k, $3] = c; rnd[k] = rnd[k] " " $3
}
END {
	printf "%-8s %-8s %9s %8s %8s %10s %18s %18s %8s\n", "workload", "contender", "req/s", "p50 ms", "p99 ms", "CPU/req", "CPU ratio", "req/s ratio", "timeouts"
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, kv, " "); w = kv[1]
		cr = ""; rr = ""
		n = split(rnd[k], rs, " ")
		for (j = 1; j <= n; j++) {
			b = w " bare"
			cr = cr " " C[b, rs[j]] / C[k, rs[j]]
			rr = rr " " R[k, rs[j]] / R[b, rs[j]]
		}
		stat(rps[k]); r = med
		stat(p50[k]); a = med
		stat(p99[k]); b99 = med
		stat(cpu[k]); c = med
		stat(cr); crs = sprintf("%.3f (%.2f-%.2f)", med, lo, hi); CR[k] = med; CRlo[k] = lo; CRhi[k] = hi
		stat(rr); rrs = sprintf("%.3f (%.2f-%.2f)", med, lo, hi); RR[k] = med; RRlo[k] = lo; RRhi[k] = hi
		printf "%-8s %-8s %9.0f %8.3f %8.3f %8.1fus %18s %18s %8d\n", w, kv[2], r, a / 1000, b99 / 1000, c, crs, rrs, touts[k]
		if (k == "cancel lro" && journal_note != "") printf "%-8s %-8s %s\n", "cancel", "journal", journal_note
		if (k == "cancel fwdauth" && nginx_note != "") printf "%-8s %-8s %s\n", "cancel", "nginx", nginx_note
	}
	print ""
	target("REST cancel, cached token: CPU/req >= 0.95 of bare reverse_proxy", "cancel lro", "cpu", 0.95)
	target("gRPC cancel: CPU/req >= 0.90 of bare Caddy gRPC proxy", "grpc lro", "cpu", 0.90)
	target("REST cancel throughput >= 0.90 of bare", "cancel lro", "rps", 0.90)
	target("gRPC cancel throughput >= 0.90 of bare", "grpc lro", "rps", 0.90)
	target("not-a-cancel: throughput >= 0.99 of bare (match only)", "other lro", "rps", 0.99)
	printf "where the REST gap goes (CPU ratio to bare): lro_cancel with no audit log %.2f (nolog), its records encoded and written to /dev/null %.2f (devnull), appended to a file %.2f (lro); bare with Caddy'"'"'s access log appended to a file %.2f (barelog)\n", CR["cancel nolog"], CR["cancel devnull"], CR["cancel lro"], CR["cancel barelog"]
}
function target(what, k, kind, want,    m, l, h) {
	if (kind == "cpu") { m = CR[k]; l = CRlo[k]; h = CRhi[k] } else { m = RR[k]; l = RRlo[k]; h = RRhi[k] }
	printf "target  %-66s measured %.2f (%.2f-%.2f)  %s\n", what, m, l, h, (m >= want ? "MET" : "NOT MET")
}' "$results"

echo
echo "== paired runs: medians over $pair_rounds rounds; CPU ratio = the first's CPU/req over the second's, per round, median (min-max)"
awk -v tick="$tick" "$stats"'
{
	k = $1 " " $2 " " $3
	if (!(k in list)) order[++nk] = k
	ca = $6 / tick * 1e6 / $5; cb = $8 / tick * 1e6 / $7
	list[k] = list[k] " " ca / cb; A[k] = A[k] " " ca; B[k] = B[k] " " cb
}
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, kv, " ")
		stat(A[k]); a = med
		stat(B[k]); b = med
		stat(list[k]); m = med
		note = kv[1] == "other" ? "  (the control: not a cancel, lro only matches)" : ""
		printf "%-8s %-9s %7.1fus  %-9s %7.1fus  CPU ratio %.3f (%.2f-%.2f)%s\n", kv[1], kv[2], a, kv[3], b, m, lo, hi, note
		P[k] = m; Plo[k] = lo; Phi[k] = hi
	}
	print ""
	t("governed REST cancel, records discarded: >= 0.95 of bare", "cancel bare nolog", 0.95)
	t("governed gRPC cancel, records discarded: >= 0.92 of bare", "grpc grpc-bare grpc-nolog", 0.92)
	t("governed cancel, record to a file: >= 1.0 of bare + access log", "cancel barelog lro", 1.0)
	t("100-part batch, no cancel: >= 0.90 of bare", "batch bare lro", 0.90)
	t("10 policy rules: >= 0.90 of the gateway without policy", "cancel lro policy", 0.90)
	t("sealed journal: >= 0.75 of the gateway without a journal", "cancel lro sealed", 0.75)
	t("limits on loopback Redis: >= 0.85 of the gateway without", "cancel lro limits", 0.85)
}
function t(what, k, want) {
	printf "target  %-66s paired   %.2f (%.2f-%.2f)  %s\n", what, P[k], Plo[k], Phi[k], (P[k] >= want ? "MET" : "NOT MET")
}' "$pairs"

echo
echo "== audit records (measured runs; records also count the <= $conns requests in flight when each run stopped)"
awk '$2 != "bare" && $2 != "barelog" && $2 != "devnull" && $2 != "nolog" && $2 != "fwdauth" && $2 != "nginx" { k = $1 " " $2; if (!(k in req)) o[++n] = k; req[k] += $4; rec[k] += $9 }
	END {
		for (i = 1; i <= n; i++) {
			split(o[i], kv, " ")
			want = kv[1] == "cancel" || kv[1] == "grpc" ? "one per request" : "expected 0: nothing to govern"
			printf "%-8s %-8s %9d requests, %9d audit records (%s)\n", kv[1], kv[2], req[o[i]], rec[o[i]], want
		}
	}' "$results"
for name in lro journal sealed policy limits grpc-lro; do
	audit_file=$out/audit-$name.json
	[ -f "$audit_file" ] || continue
	printf '%-17s every record of the run: %d, of which "forwarded": %d\n' "$name" "$(lines "$audit_file")" \
		"$(grep -c '"decision":"forwarded"' "$audit_file" || true)"
done
if [ -f "$out/audit-policy.json" ]; then
	echo "policy            deciding rule of the records: $(grep -o '"policy_rule":"[^"]*"' "$out/audit-policy.json" | sort | uniq -c | tr -s ' ' | sed 's/^ //' | paste -sd, -)"
fi
if [ -f "$out/journal" ]; then
	echo "journal           file $out/journal: $(lines "$out/journal") lines, $(stat -c %s "$out/journal") bytes"
elif [ -e "$out/journal" ]; then
	echo "journal           $out/journal: $(du -sh "$out/journal" | cut -f1)"
fi
lro_procs=0
for name in lro devnull nolog journal sealed policy limits grpc-lro grpc-nolog; do [ -z "${procs_of[$name]:-}" ] || lro_procs=$((lro_procs + 1)); done
echo "tokeninfo calls over the throughput runs: $calls (the token cache works when it is $lro_procs, one per lro_cancel process)"

echo
echo "== memory (lro contender, pid $lro_pid)"
cat "$mem_report"
echo "heap peak while the batches ran ($samples samples of /debug/vars): HeapAlloc $(mib "$peak_alloc") MiB, HeapInuse $(mib "$peak_inuse") MiB"
echo "tokens: $distinct_verified distinct tokens verified in ${distinct_secs}s ($((distinct_verified / (distinct_secs > 0 ? distinct_secs : 1)))/s, wrk -c$distinct_conns)," \
	"$distinct_dials connections to tokeninfo; $cached cached (cache_size $tokens, the bound):" \
	"$(((gc_tokens - gc_before) / (cached > 0 ? cached : 1))) heap bytes per cached token after GC"
echo "batches: $big_ok of 8 batches of $big_size bytes (1,000 POST parts of ~10 KB) answered 200, each read whole by the upstream"

echo
echo "== how these numbers were produced"
echo "command: BENCH_SECONDS=$secs BENCH_ROUNDS=$rounds BENCH_PAIR_ROUNDS=$pair_rounds BENCH_THREADS=$threads BENCH_CONNECTIONS=$conns BENCH_TOKENS=$tokens bash bench/run.sh"
echo "each run: wrk -t$threads -c$conns -d${secs}s --latency -s bench/wrk.lua URL -- WORKLOAD (cancel, other, batch)"
echo "          bench/out/grpcload -addr 127.0.0.1:PORT -c $conns -conns $threads -d ${secs}s (grpc)"
echo "          paired: two of these at once, one per contender of the pair"
echo "          configs: bench/out/Caddyfile.*, bench/out/nginx/nginx.conf; raw reports bench/out/run-*.txt"
echo "pinning: $pinning"
echo "CPU/req: user+system CPU of the gateway side over a run / its requests; fwdauth and nginx include bench/auth's CPU, nginx its master and worker"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
nginx_version=none
[ -n "$nginx_note" ] || nginx_version=$("$nginx_bin" -v 2>&1 | cut -d' ' -f3)
echo "software: $(go version | cut -d' ' -f3-), caddy $("$out/caddy" version | cut -d' ' -f1), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2), $nginx_version"
echo "load average: $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "wall time: $((SECONDS - start))s (build ${build_secs}s)"
