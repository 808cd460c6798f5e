#!/usr/bin/env bash
# tests/bench/run.sh: the process-level benchmarks of docs/benchmarks.md, end to end.
#   1. 10,000-node resume + suspend against the fake runtime (fakescale)
#   2. hostlist expand/compress as whole processes beside scontrol (proctime):
#      slurm-elastic-hostlist (the lean binary) and `slurm-elastic hostlist`
#   3. resume wall time on the real elastic cluster, 1/8/32 nodes: ours vs a
#      shell loop vs bare parallel Podman API calls (realbench)
#   5. cold start: a job on powered-down nodes until it runs, with
#      slurm-elastic-prolog and without (coldbench); and the prolog's own cost
#      for a job whose nodes are up (proctime)
#   6. resume of 32 nodes on Kubernetes (tests/kube) vs the Podman runtime vs
#      bare client-go creates and bare Podman API calls, in one run (kubebench)
# `make bench` runs it after the `go test -bench` figures, with SE_BIN_DIR set
# to the static binaries of `make build`. It prints a table per benchmark and
# exits non-zero only when something is broken (a tool fails, a check after a
# run fails), never because a target is missed.
#
# Environment:
#   SE_BIN_DIR        built binaries (default <repo>/bin)
#   SE_BENCH_OUT      where results (JSON, tables, logs) go (default: a new /tmp/se-bench-out.* dir)
#   SE_BENCH_CACHE    cache for the podman-remote build (default /var/cache/slurm-elastic-test)
#   SE_BENCH_ONLY     space-separated subset of "fake hostlist real cold kube" (default all)
#   SE_BENCH_COLD_RUNS rounds per kind, size and mode (default 5); SE_BENCH_COLD_SIZES (default 1,2,8,32)
#   SE_BENCH_RUNS     proctime runs per case (default 30); SE_BENCH_REAL_RUNS (default 3)
#   SE_BENCH_SIZES    real-cluster node counts (default 1,8,32)
#   SE_BENCH_KUBE_RUNS timed runs per method of section 6 (default 4: each method first once); SE_BENCH_KUBE_NODES (default 32);
#   SE_BENCH_KUBE_NAME its clusters' name (default se-bench-k: head se-bench-k, Kubernetes se-bench-kk)
#   SE_BENCH_KUBE_BACKEND the hook's Slurm backend in section 6: rest (default) or scontrol (podman exec into head)
#   SE_BENCH_KUBE_BIN2 a second binaries dir (e.g. built before a change): section 6 adds its resume hook (hook-kube-bin2)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
bin=${SE_BIN_DIR:-$repo/bin}
out=${SE_BENCH_OUT:-$(mktemp -d /tmp/se-bench-out.XXXXXX)}
cache=${SE_BENCH_CACHE:-/var/cache/slurm-elastic-test}
only=${SE_BENCH_ONLY:-fake hostlist real cold kube}
tags=${SE_GO_TAGS:-remote containers_image_openpgp}
tools=$out/tools
mkdir -p "$out" "$tools"
export CGO_ENABLED=0

status=0
broken() {
	echo "run.sh: BROKEN: $*" >&2
	status=1
}
want() { [[ " $only " == *" $1 "* ]]; }
section() { printf '\n== %s ==\n(load average now: %s)\n' "$*" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

t_start=$SECONDS
echo "bench: results in $out; load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for b in slurm-elastic slurm-elastic-resume slurm-elastic-suspend slurm-elastic-resume-fail slurm-elastic-prolog slurm-elastic-hostlist; do
	[[ -x $bin/$b ]] || { echo "run.sh: $bin/$b missing: run \`make build\` (SE_BIN_DIR names the dir)" >&2; exit 1; }
done
if ! go build -tags "$tags" -trimpath -ldflags "-s -w" -o "$tools/" \
	./tests/bench/cmd/fakescale ./tests/bench/cmd/proctime \
	./tests/bench/cmd/timeit ./tests/bench/cmd/bareapi ./tests/bench/cmd/realbench ./tests/bench/cmd/coldbench \
	./tests/bench/cmd/kubebench; then
	echo "run.sh: building the benchmark tools failed" >&2
	exit 1
fi
cp tests/bench/shell-resume.sh "$tools/"

# --- 1. 10,000 nodes against the fake runtime --------------------------------
if want fake; then
	section "1. 10,000-node resume + suspend, fake runtime (200 ms/call, API limit 1,000 calls/s), fake slurmctld (2 ms/call)"
	cmd=("$tools/fakescale" -nodes 10000 -latency 200ms -api-rate 1000 -client-rate 1000 -concurrency 256 -slurm-latency 2ms)
	echo "\$ ${cmd[*]#$tools/}"
	"${cmd[@]}" -json "$out/fakescale.json" || broken "fakescale"
fi

# --- 2. hostlist as whole processes ------------------------------------------
if want hostlist; then
	section "2. hostlist as whole processes (median of ${SE_BENCH_RUNS:-30} interleaved runs)"
	if ! command -v scontrol >/dev/null; then
		broken "scontrol not found (Debian package slurm-client)"
	else
		sconf=$repo/internal/hostlist/testdata/slurm.conf
		hl=$out/hostlist
		mkdir -p "$hl"
		# 15,000 names: cpu00001..cpu10000, gpu0001..gpu5000 (as BenchmarkCompress15k);
		# comma-joined they stay under the kernel's 128 KiB limit for one argument.
		{ seq -f 'cpu%05g' 1 10000; seq -f 'gpu%04g' 1 5000; } >"$hl/names.txt"
		shuf --random-source=<(yes) "$hl/names.txt" >"$hl/shuffled.txt"
		paste -sd, "$hl/names.txt" >"$hl/names.csv"
		paste -sd, "$hl/shuffled.txt" >"$hl/shuffled.csv"
		expr='n[00001-50000],m[00001-50000]'
		# Same output as scontrol, or the timing means nothing.
		for cli in "$bin/slurm-elastic-hostlist" "$bin/slurm-elastic hostlist"; do
			read -ra c <<<"$cli"
			cmp -s <("${c[@]}" expand "$expr") <(SLURM_CONF=$sconf scontrol show hostnames "$expr") ||
				broken "$cli expand output differs from scontrol"
			for f in names shuffled; do
				cmp -s <("${c[@]}" compress <"$hl/$f.txt") <(SLURM_CONF=$sconf scontrol show hostlist "$(cat "$hl/$f.csv")") ||
					broken "$cli compress output ($f) differs from scontrol"
			done
		done
		cat >"$hl/spec.json" <<-JSON
		{"groups":[
		 {"name":"expand $expr (100,000 names)","cases":[
		  {"name":"slurm-elastic-hostlist","argv":["$bin/slurm-elastic-hostlist","expand","$expr"]},
		  {"name":"slurm-elastic hostlist","argv":["$bin/slurm-elastic","hostlist","expand","$expr"]},
		  {"name":"scontrol","argv":["scontrol","show","hostnames","$expr"],"env":["SLURM_CONF=$sconf"]}]},
		 {"name":"compress 15,000 names, in order","cases":[
		  {"name":"slurm-elastic-hostlist","argv":["$bin/slurm-elastic-hostlist","compress"],"stdin":"$hl/names.txt"},
		  {"name":"slurm-elastic hostlist","argv":["$bin/slurm-elastic","hostlist","compress"],"stdin":"$hl/names.txt"},
		  {"name":"scontrol","argv":["scontrol","show","hostlist","@$hl/names.csv"],"env":["SLURM_CONF=$sconf"]}]},
		 {"name":"compress 15,000 names, shuffled","cases":[
		  {"name":"slurm-elastic-hostlist","argv":["$bin/slurm-elastic-hostlist","compress"],"stdin":"$hl/shuffled.txt"},
		  {"name":"slurm-elastic hostlist","argv":["$bin/slurm-elastic","hostlist","compress"],"stdin":"$hl/shuffled.txt"},
		  {"name":"scontrol","argv":["scontrol","show","hostlist","@$hl/shuffled.csv"],"env":["SLURM_CONF=$sconf"]}]},
		 {"name":"start-up only (expand n1)","cases":[
		  {"name":"slurm-elastic-hostlist","argv":["$bin/slurm-elastic-hostlist","expand","n1"]},
		  {"name":"slurm-elastic hostlist","argv":["$bin/slurm-elastic","hostlist","expand","n1"]},
		  {"name":"scontrol","argv":["scontrol","show","hostnames","n1"],"env":["SLURM_CONF=$sconf"]}]}
		]}
		JSON
		"$tools/proctime" -runs "${SE_BENCH_RUNS:-30}" -warmup 3 -json "$hl/results.json" "$hl/spec.json" ||
			broken "proctime"
		echo "target: slurm-elastic-hostlist no slower than scontrol (x1.00 or less)"
		if command -v hyperfine >/dev/null; then
			echo "cross-check with hyperfine (no shell, 20 runs):"
			SLURM_CONF=$sconf hyperfine -N --style basic --warmup 3 --runs 20 --export-json "$hl/hyperfine.json" \
				-n slurm-elastic-hostlist "$bin/slurm-elastic-hostlist expand $expr" \
				-n scontrol "scontrol show hostnames $expr" || broken "hyperfine"
		fi
	fi
fi

# --- 3. resume on the real cluster -------------------------------------------
if want real; then
	section "3. resume on the real cluster (Slurm 24.11 + Podman), median of ${SE_BENCH_REAL_RUNS:-3} runs, timed in head"
	remote=""
	if ! remote=$(tests/bench/podman-remote.sh "$cache" 2>"$out/podman-remote-build.log"); then
		broken "building podman-remote failed (see $out/podman-remote-build.log); the shell baseline is skipped"
		remote=""
	fi
	"$tools/realbench" -bin "$bin" -tools "$tools" -podman-remote "$remote" \
		-sizes "${SE_BENCH_SIZES:-1,8,32}" -runs "${SE_BENCH_REAL_RUNS:-3}" -json "$out/real.json" -logs "$out/real-logs" ||
		broken "realbench"
fi

# --- 5. cold start ------------------------------------------------------------
if want cold; then
	section "5a. the prolog's own cost: a job whose nodes are static, or up a while (no Slurm request)"
	pd=$out/prolog
	mkdir -p "$pd/state/up" "$pd/log"
	printf 'tok\n' >"$pd/jwt" && chmod 600 "$pd/jwt"
	sed -e "s#/var/lib/slurm-elastic#$pd/state#" -e "s#/var/log/slurm-elastic#$pd/log#" \
		-e "s#/etc/slurm-elastic/slurmrestd.jwt#$pd/jwt#" packaging/config.yaml >"$pd/config.yaml"
	touch -d '1 minute ago' "$pd/state/up/cpu001" "$pd/state/up/cpu002"
	cat >"$pd/spec.json" <<-EOF
	{"groups":[{"name":"prolog","cases":[
	 {"name":"static nodes","argv":["$bin/slurm-elastic-prolog"],"env":["SLURM_ELASTIC_CONFIG=$pd/config.yaml","SLURM_JOB_ID=1","SLURM_JOB_NODELIST=static[1-4]"]},
	 {"name":"cloud nodes up","argv":["$bin/slurm-elastic-prolog"],"env":["SLURM_ELASTIC_CONFIG=$pd/config.yaml","SLURM_JOB_ID=2","SLURM_JOB_NODELIST=cpu[001-002]"]},
	 {"name":"/bin/true","argv":["/bin/true"]}
	]}]}
	EOF
	"$tools/proctime" -runs "${SE_BENCH_RUNS:-30}" -json "$out/prolog.json" "$pd/spec.json" || broken "proctime prolog"
	[[ -s $pd/log/slurm-elastic.log ]] && broken "the prolog logged on its fast path: $(head -c 300 "$pd/log/slurm-elastic.log")"

	section "5b. cold start on the real cluster: with slurm-elastic-prolog vs without, interleaved"
	"$tools/coldbench" -sizes "${SE_BENCH_COLD_SIZES:-1,2,8,32}" -isizes 2 -runs "${SE_BENCH_COLD_RUNS:-5}" \
		-json "$out/cold.json" || broken "coldbench"
fi

# --- 6. Kubernetes vs Podman vs bare client-go -------------------------------
if want kube; then
	section "6. resume of ${SE_BENCH_KUBE_NODES:-32} nodes: Kubernetes vs Podman vs bare client-go / Podman API, ${SE_BENCH_KUBE_RUNS:-4} interleaved runs each"
	"$tools/kubebench" -bin "$bin" -bareapi "$tools/bareapi" -name "${SE_BENCH_KUBE_NAME:-se-bench-k}" -backend "${SE_BENCH_KUBE_BACKEND:-rest}" \
		${SE_BENCH_KUBE_BIN2:+-bin2 "$SE_BENCH_KUBE_BIN2"} \
		-nodes "${SE_BENCH_KUBE_NODES:-32}" -runs "${SE_BENCH_KUBE_RUNS:-4}" -json "$out/kube.json" -logs "$out/kube-hook.log" ||
		broken "kubebench"
fi

echo
echo "bench: done in $((SECONDS - t_start)) s; load now: $(cut -d' ' -f1-3 /proc/loadavg); results in $out"
exit $status
