#!/usr/bin/env bash
# A three-node kvd cluster on one machine, for trying automatic failover
# (README "Run a three-node cluster", docs/cluster.md): a three-member etcd
# and kvd nodes a, b and c on loopback, each with its own data directory.
#
#   scripts/cluster.sh start  [DIR]       start etcd and the three nodes, wait for a primary
#   scripts/cluster.sh status [DIR]       kvctl cluster status
#   scripts/cluster.sh kill NODE [DIR]    kill -9 one kvd node (a, b or c)
#   scripts/cluster.sh revive NODE [DIR]  start that node again (it rejoins as a replica)
#   scripts/cluster.sh stop   [DIR]       stop everything started here (by the pids it wrote)
#
# DIR defaults to ./data/cluster. Everything listens on 127.0.0.1 only, on
# nine ports from KVD_CLUSTER_PORT (default 23790): etcd clients +0..2, etcd
# peers +10..12, kvd replication +20..22. KVD_BUILD (default build/rel) holds
# the kvd and kvctl to run. Node N's client socket is DIR/N/kvd.sock, its log
# DIR/N/kvd.log.
set -euo pipefail

cmd=${1:-}
node=""
if [[ "$cmd" == kill || "$cmd" == revive ]]; then
  node=${2:-}
  shift
  [[ "$node" =~ ^[abc]$ ]] || { echo "cluster.sh: $cmd needs a node: a, b or c" >&2; exit 2; }
fi
dir=${2:-data/cluster}
base=${KVD_CLUSTER_PORT:-23790}
build=${KVD_BUILD:-build/rel}
kvd=$build/daemon/kvd
kvctl=$build/ctl/kvctl
etcd=${ETCD_BIN:-/usr/bin/etcd}
nodes=(a b c)
prefix=/kvd/demo

endpoints() {
  local i out=""
  for i in 0 1 2; do out+="${out:+,}http://127.0.0.1:$((base + i))"; done
  echo "$out"
}

start_etcd() {
  local i cluster=""
  for i in 0 1 2; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((base + 10 + i))"; done
  for i in 0 1 2; do
    mkdir -p "$dir/etcd"
    "$etcd" --name "e$i" --data-dir "$dir/etcd/e$i" \
      --listen-client-urls "http://127.0.0.1:$((base + i))" \
      --advertise-client-urls "http://127.0.0.1:$((base + i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + i))" \
      --initial-cluster "$cluster" --initial-cluster-token kvd-demo --initial-cluster-state new \
      --logger zap --log-outputs "$dir/etcd/e$i.log" </dev/null >/dev/null 2>&1 &
    echo $! >"$dir/etcd/e$i.pid"
  done
}

start_node() {  # name
  "$kvd" --config "$dir/$1/kvd.toml" >>"$dir/$1/kvd.log" 2>&1 &
  echo $! >"$dir/$1/kvd.pid"
}

# Stops the process whose pid is in file $2 with signal $1 (and waits for it).
stop_pid_file() {
  local pid
  [[ -s "$2" ]] || return 0
  pid=$(cat "$2")
  rm -f "$2"
  kill "-$1" "$pid" 2>/dev/null || return 0
  wait_for 20 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
}

write_config() {  # name index
  local n=$1 i=$2
  mkdir -p "$dir/$n"
  cat >"$dir/$n/kvd.toml" <<EOT
# Node $n of the trial cluster made by scripts/cluster.sh.
[server]
socket = "$dir/$n/kvd.sock"
[storage]
wal_path = "$dir/$n/wal"
snapshot_path = "$dir/$n/snapshots"
[replication]
name = "$n"
listen = "127.0.0.1:$((base + 20 + i))"
sync_replicas = 1
[cluster]
etcd_endpoints = "$(endpoints)"
prefix = "$prefix"
EOT
}

# Waits up to $1 seconds for "$2 ..." to succeed.
wait_for() {
  local limit=$1 t=0
  shift
  until "$@" >/dev/null 2>&1; do
    t=$((t + 1))
    if ((t > limit * 10)); then return 1; fi
    sleep 0.1
  done
}

# Ready for writes: the leader key names a node whose member key routes
# kvctl --cluster to it, and the primary published its synchronous replica.
has_primary() {
  "$kvctl" --cluster "$(endpoints)" --cluster-prefix "$prefix" status --json | grep -q '"role": *"primary"' &&
    "$kvctl" cluster status --cluster "$(endpoints)" --prefix "$prefix" --json | grep -q '"sync": *{"epoch"'
}

case "$cmd" in
  start)
    for f in "$kvd" "$kvctl" "$etcd"; do
      [[ -x "$f" ]] || { echo "cluster.sh: $f not found (scripts/build.sh; scripts/install-deps.sh for etcd)" >&2; exit 1; }
    done
    if compgen -G "$dir/*/*.pid" >/dev/null || compgen -G "$dir/etcd/*.pid" >/dev/null; then
      echo "cluster.sh: pid files under $dir: already started? (scripts/cluster.sh stop $dir)" >&2
      exit 1
    fi
    mkdir -p "$dir"
    start_etcd
    for i in 0 1 2; do
      write_config "${nodes[$i]}" "$i"
      start_node "${nodes[$i]}"
    done
    wait_for 60 has_primary ||
      { echo "cluster.sh: no primary after 60 s (see $dir/*/kvd.log and $dir/etcd/*.log)" >&2; exit 1; }
    "$kvctl" cluster status --cluster "$(endpoints)" --prefix "$prefix"
    echo
    echo "kvctl:  $kvctl --cluster $(endpoints) --cluster-prefix $prefix put k v"
    ;;
  status)
    "$kvctl" cluster status --cluster "$(endpoints)" --prefix "$prefix"
    ;;
  kill)
    [[ -s "$dir/$node/kvd.pid" ]] || { echo "cluster.sh: node $node is not running (no $dir/$node/kvd.pid)" >&2; exit 1; }
    stop_pid_file KILL "$dir/$node/kvd.pid"
    ;;
  revive)
    [[ -s "$dir/$node/kvd.pid" ]] && { echo "cluster.sh: node $node is running already" >&2; exit 1; }
    start_node "$node"
    ;;
  stop)
    # kvd first (a clean stop hands the primary role over), then etcd.
    for n in "${nodes[@]}"; do stop_pid_file TERM "$dir/$n/kvd.pid"; done
    for i in 0 1 2; do stop_pid_file TERM "$dir/etcd/e$i.pid"; done
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
