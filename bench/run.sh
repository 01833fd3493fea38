#!/usr/bin/env bash
# Side-by-side load bench: the same Caddy with bare reverse_proxy, with
# lro_cancel in front of it, and with lro_cancel's durable audit journal, on a
# cancel workload and on other traffic. Everything runs on 127.0.0.1: a fake
# upstream and tokeninfo (bench/fake), one Caddy process per variant, and wrk.
#
#   bash bench/run.sh                    # from the repo root; ~3 minutes on 2 cores
#   BENCH_SECONDS=2 bash bench/run.sh    # smoke run
#
# Knobs: BENCH_SECONDS (length of each measured run, default 8), BENCH_ROUNDS
# (default 3), BENCH_THREADS and BENCH_CONNECTIONS (wrk's -t and -c, default 2
# and 32), BENCH_TOKENS (distinct tokens of the memory phase, default 100000). Binaries, Caddyfiles, logs and wrk's raw reports land in bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS

secs=${BENCH_SECONDS:-8}
rounds=${BENCH_ROUNDS:-3}
tokens=${BENCH_TOKENS:-100000}
threads=${BENCH_THREADS:-2}
conns=${BENCH_CONNECTIONS:-32}
for knob in secs rounds threads conns tokens; do
	if ! [[ ${!knob} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench: $knob must be a positive integer, got '${!knob}'" >&2
		exit 2
	fi
done
warmup=$((secs >= 6 ? 3 : 1))
out=$root/bench/out

# Every process started here is ended on exit, whatever the exit.
pids=()
cleanup() {
	local pid _
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for _ in $(seq 50); do
		local alive=0
		for pid in "${pids[@]}"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		if [ "$alive" -eq 0 ]; then return; fi
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
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

# pick_port sets port to the next port from 18080 on that nothing answers on.
next_port=18080
pick_port() {
	while listening "$next_port"; do next_port=$((next_port + 1)); done
	port=$next_port
	next_port=$((next_port + 1))
}

# cpu_ticks prints the user+system CPU time a process has used, in clock ticks.
cpu_ticks() {
	local f
	read -r -a f <"/proc/$1/stat"
	echo $((f[13] + f[14]))
}

lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

echo "== setup"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_before%% *}" 'BEGIN { exit !(l >= 1) }'; then
	echo "note: load average $load_before before the bench: other work shares these cores, expect noisy numbers"
fi
if ! command -v wrk >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		sudo=()
	elif command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		fail "wrk is not installed and installing it needs root or sudo"
	fi
	echo "installing wrk with apt-get"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

rm -rf "$out"
mkdir -p "$out/xdg"
build_start=$SECONDS
go build -o "$out/caddy" ./cmd/caddy
go build -o "$out/fake" ./bench/fake
build_secs=$((SECONDS - build_start))
echo "built caddy and the fake in ${build_secs}s"

"$out/fake" >"$out/fake.ports" 2>"$out/fake.log" &
pids+=($!)
wait_until test -s "$out/fake.ports" || fail "the fake did not start: $(cat "$out/fake.log")"
read -r up ti < <(sed 's/[a-z]*=//g' "$out/fake.ports")
echo "fake upstream on 127.0.0.1:$up, tokeninfo on 127.0.0.1:$ti"

# caddyfile prints a variant's config. Only the handler differs: the global
# options, the audit log and the absent access log are the same for all.
caddyfile() {
	local variant=$1 port=$2
	cat <<EOF
{
	admin off
	auto_https off
	persist_config off
	default_bind 127.0.0.1
	log default {
		output file $out/caddy-$variant.log {
			roll_disabled
		}
		format json
		exclude http.handlers.lro_cancel.audit
	}
	log audit {
		output file $out/audit-$variant.json {
			roll_disabled
		}
		format json
		include http.handlers.lro_cancel.audit
	}
}

http://:$port {
EOF
	case $variant in
	lro)
		printf '\tlro_cancel {\n\t\ttokeninfo http://127.0.0.1:%s/tokeninfo {\n' "$ti"
		printf '\t\t\tcache_size %s\n\t\t}\n\t}\n' "$tokens"
		;;
	journal)
		printf '\tlro_cancel {\n\t\ttokeninfo http://127.0.0.1:%s/tokeninfo\n' "$ti"
		printf '\t\taudit {\n\t\t\tjournal %s\n\t\t}\n\t}\n' "$out/journal"
		;;
	esac
	printf '\treverse_proxy 127.0.0.1:%s\n}\n' "$up"
}

declare -A port_of pid_of
variants=()
journal_note=""
for variant in bare lro journal; do
	pick_port
	cf=$out/Caddyfile.$variant
	caddyfile "$variant" "$port" >"$cf"
	if ! XDG_CONFIG_HOME=$out/xdg XDG_DATA_HOME=$out/xdg \
		"$out/caddy" validate --config "$cf" --adapter caddyfile >"$out/validate-$variant.log" 2>&1; then
		if [ "$variant" = journal ]; then
			# Caddy logs why through the default logger, which the config sends to a file.
			reason=$(cat "$out/validate-journal.log" "$out/caddy-journal.log" 2>/dev/null |
				grep -o 'provision http.handlers.lro_cancel: [^"]*' | head -n1 || true)
			journal_note="skipped: journal not available in this build"
			echo "journal: $journal_note${reason:+ (caddy validate: $reason)}"
			continue
		fi
		fail "caddy validate refused the $variant variant: $(tail -qn2 "$out/validate-$variant.log" "$out/caddy-$variant.log" 2>/dev/null)"
	fi
	XDG_CONFIG_HOME=$out/xdg XDG_DATA_HOME=$out/xdg \
		"$out/caddy" run --config "$cf" --adapter caddyfile >"$out/caddy-$variant.stderr" 2>&1 &
	pids+=($!)
	pid_of[$variant]=$!
	port_of[$variant]=$port
	variants+=("$variant")
	wait_until listening "$port" || fail "caddy ($variant) did not listen on $port: $(tail -n3 "$out/caddy-$variant.stderr")"
	kill -0 "${pid_of[$variant]}" 2>/dev/null || fail "caddy ($variant) exited: $(tail -n3 "$out/caddy-$variant.stderr")"
	echo "$variant: caddy pid ${pid_of[$variant]} on 127.0.0.1:$port"
done

# Nothing started here may listen beyond loopback.
if command -v ss >/dev/null; then
	exposed=$(ss -Hlntup | awk -v pids=" ${pids[*]} " '{
		if (match($0, /pid=[0-9]+/) && index(pids, " " substr($0, RSTART + 4, RLENGTH - 4) " ") && $5 !~ /^127\.0\.0\.1:/) print
	}')
	[ -z "$exposed" ] || fail "listening beyond 127.0.0.1: $exposed"
	echo "listening check: every socket of the bench's processes is on 127.0.0.1"
else
	echo "listening check skipped: ss (iproute2) is not installed"
fi

# bench runs wrk once against a variant, appends a result line when asked to
# record it, and stops the script if any request failed.
results=$out/results.txt
: >"$results"
tick=$(getconf CLK_TCK)
bench() {
	local workload=$1 variant=$2 seconds=$3 round=$4 path
	case $workload in
	cancel) path=/v1/operations/bench-1:cancel ;;
	other) path=/v1/matters ;;
	esac
	local raw=$out/wrk-$workload-$variant-$round.txt audit=$out/audit-$variant.json
	local records_before cpu_before
	records_before=$(lines "$audit")
	cpu_before=$(cpu_ticks "${pid_of[$variant]}")
	timeout $((seconds + 30)) wrk -t"$threads" -c"$conns" -d"${seconds}s" --latency \
		-s bench/wrk.lua "http://127.0.0.1:${port_of[$variant]}$path" -- "$workload" >"$raw" 2>&1 ||
		fail "wrk failed ($workload, $variant): $(tail -n3 "$raw")"
	local cpu_after
	cpu_after=$(cpu_ticks "${pid_of[$variant]}")
	sleep 0.5 # the requests in flight when wrk stopped finish and are recorded
	local records=$(($(lines "$audit") - records_before))
	local line requests duration_us p50_us p99_us non2xx socket_errors
	line=$(grep '^BENCH ' "$raw") || fail "no BENCH line in $raw"
	read -r requests duration_us p50_us p99_us non2xx socket_errors < <(echo "$line" | sed 's/^BENCH //; s/[a-z_0-9]*=//g')
	if [ "$non2xx" -ne 0 ] || [ "$requests" -eq 0 ]; then
		fail "$workload through $variant: $requests requests, $non2xx not 2xx; see $raw, $out/caddy-$variant.log and $audit"
	fi
	if [ "$round" != warmup ]; then
		echo "$workload $variant $round $requests $duration_us $p50_us $p99_us $socket_errors $records $((cpu_after - cpu_before))" >>"$results"
		printf '  %-6s %-7s round %s: %8.0f req/s\n' "$workload" "$variant" "$round" \
			"$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { print r / (d / 1e6) }')"
	fi
}

others=(bare lro)
echo "== warm-up (${warmup}s each; the first cancel fills the token cache)"
for variant in "${variants[@]}"; do bench cancel "$variant" "$warmup" warmup; done
for variant in "${others[@]}"; do bench other "$variant" "$warmup" warmup; done

echo "== $rounds alternating rounds of ${secs}s runs (wrk -t$threads -c$conns)"
for round in $(seq "$rounds"); do
	for variant in "${variants[@]}"; do bench cancel "$variant" "$secs" "$round"; done
	for variant in "${others[@]}"; do bench other "$variant" "$secs" "$round"; done
done

tokeninfo_calls() {
	exec 3<>"/dev/tcp/127.0.0.1/$ti"
	printf 'GET /calls HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	tail -n1 <&3
}
calls=$(tokeninfo_calls)

# Memory: fill lro's token cache (cache_size $tokens) with distinct tokens,
# each verified once, and read Caddy's resident set size before and after.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
echo "== memory: $tokens distinct tokens through lro_cancel (cache_size $tokens)"
rss_before=$(rss_kib "${pid_of[lro]}")
# Runs of 3 s until enough tokens were verified (at most 40 runs): wrk cannot
# stop after a number of requests.
distinct_verified=0
for run in $(seq 40); do
	timeout 30 wrk -t"$threads" -c"$conns" -d3s -s bench/wrk.lua \
		"http://127.0.0.1:${port_of[lro]}/v1/operations/bench-1:cancel" -- distinct "$run" >"$out/wrk-distinct-$run.txt" 2>&1 ||
		fail "wrk failed (distinct tokens): $(tail -n3 "$out/wrk-distinct-$run.txt")"
	distinct_verified=$(($(tokeninfo_calls) - calls))
	[ "$distinct_verified" -ge "$tokens" ] && break
done
cached=$((distinct_verified < tokens ? distinct_verified : tokens))
sleep 0.5
rss_after=$(rss_kib "${pid_of[lro]}")

echo
echo "== results: medians over $rounds rounds"
awk -v tick="$tick" -v journal_note="$journal_note" '
function median(list,    v, n, i, j, t) {
	n = split(list, v, " ")
	for (i = 2; i <= n; i++) {
		t = v[i] + 0
		for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
		v[j + 1] = t
	}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{
	k = $1 " " $2
	if (!(k in rps)) order[++nk] = k
	rps[k] = rps[k] " " $4 / ($5 / 1e6)
	p50[k] = p50[k] " " $6
	p99[k] = p99[k] " " $7
	errs[k] += $8
	cpu[k] = cpu[k] " " ($10 / tick * 1e6) / $4
}
END {
	printf "%-8s %-8s %10s %9s %9s %8s %14s %9s\n", "workload", "variant", "req/s", "p50 ms", "p99 ms", "vs bare", "caddy CPU/req", "sock errs"
	for (i = 1; i <= nk; i++) {
		k = order[i]
		split(k, kv, " ")
		r = median(rps[k])
		if (kv[2] == "bare") bare[kv[1]] = r
		printf "%-8s %-8s %10.0f %9.3f %9.3f %8.3f %12.1fus %9d\n", kv[1], kv[2], r,
			median(p50[k]) / 1000, median(p99[k]) / 1000, r / bare[kv[1]], median(cpu[k]), errs[k]
		if (kv[1] == "cancel" && kv[2] == "lro" && journal_note != "")
			printf "%-8s %-8s %s\n", "cancel", "journal", journal_note
	}
}' "$results"

echo
echo "== per-round req/s"
awk '{ k = $1 " " $2; if (!(k in v)) o[++n] = k; v[k] = v[k] sprintf(" %8.0f", $4 / ($5 / 1e6)) }
	END { for (i = 1; i <= n; i++) printf "%-16s%s\n", o[i], v[o[i]] }' "$results"

echo
echo "== audit records (measured runs; records also count the <= $conns requests in flight when each run stopped)"
for variant in "${variants[@]}"; do
	[ "$variant" = bare ] && continue
	awk -v v="$variant" '$2 == v && $1 == "cancel" { req += $4; rec += $9 } $2 == v && $1 == "other" { oreq += $4; orec += $9 }
		END {
			printf "%-8s cancel: wrk completed %d requests, audit log has %d records (difference %d)\n", v, req, rec, rec - req
			if (oreq) printf "%-8s other:  wrk completed %d requests, audit log has %d records (expected 0)\n", v, oreq, orec
		}' "$results"
done
forwarded=$(grep -c '"decision":"forwarded"' "$out/audit-lro.json" || true)
echo "lro      every record of the run: $(lines "$out/audit-lro.json"), of which \"forwarded\": $forwarded"
if [ -f "$out/journal" ]; then
	echo "journal  file $out/journal: $(lines "$out/journal") lines, $(stat -c %s "$out/journal") bytes"
elif [ -e "$out/journal" ]; then
	echo "journal  $out/journal: $(du -sh "$out/journal" | cut -f1)"
fi
echo "tokeninfo calls over the throughput runs (one per lro_cancel process when the cache works): $calls"

echo
echo "== memory"
echo "lro: $distinct_verified distinct tokens verified, $cached cached (cache_size $tokens, the bound);" \
	"caddy RSS $((rss_before / 1024)) MiB before, $((rss_after / 1024)) MiB after" \
	"($(((rss_after - rss_before) * 1024 / (cached > 0 ? cached : 1))) bytes per cached token)"

echo
echo "== how these numbers were produced"
echo "command: BENCH_SECONDS=$secs BENCH_ROUNDS=$rounds BENCH_THREADS=$threads BENCH_CONNECTIONS=$conns BENCH_TOKENS=$tokens bash bench/run.sh"
echo "each run: wrk -t$threads -c$conns -d${secs}s --latency -s bench/wrk.lua http://127.0.0.1:PORT/v1/operations/bench-1:cancel -- cancel"
echo "          (other: ... http://127.0.0.1:PORT/v1/matters -- other); Caddyfiles, logs and wrk reports in bench/out/"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -sr)"
echo "software: $(go version | cut -d' ' -f3-), caddy $("$out/caddy" version | cut -d' ' -f1), $(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
echo "wrk, the fake and every Caddy share the same cores: req/s is what the whole box sustains; caddy CPU/req is the gateway's own cost"
echo "load average: $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
echo "wall time: $((SECONDS - start))s (build ${build_secs}s)"
