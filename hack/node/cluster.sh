#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the node test tier (make e2e):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (Debian's, with
# runc and the CNI plugins) and a kubelet, all as processes of this machine, no Docker, no
# registry: the images are built from this repository (hack/node/images.sh) and imported.
#
#   hack/node/cluster.sh check          one line: can a node run here (root, apt or the packages)?
#   hack/node/cluster.sh up             bring the node up; print the env file (KUBECONFIG=...)
#   hack/node/cluster.sh down           tear it down and restore the host
#   hack/node/cluster.sh run CMD...     up, CMD with the env file's variables, down (always)
#
# State lives in $KPO_NODE_DIR (default /tmp/kpo-node). `up` records what it changes on the
# host first (sysctls the kubelet and the bridge plugin set, iptables chains, network links,
# mounts, cgroups, directories) and `down` puts it back; `up` that fails and `run` tear down on
# EXIT, INT and TERM. `down` ends by comparing the host with the record and fails, listing the
# differences, when something was left behind.
#
# Facts this relies on (measured on these VMs, root without CAP_SYS_RESOURCE, cgroup v1):
# containerd needs restrict_oom_score_adj; kube-apiserver runs with
# --endpoint-reconciler-type=none; the kubelet needs failCgroupV1: false, the cgroupfs driver
# and the VM's own address as --node-ip. There is no kube-proxy and no DNS: one DNAT rule
# (chain KPO-NODE-SVC) sends the kubernetes Service's address to the API server, so that pods
# using the in-cluster config (the function Job's uploader) reach it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "${HERE}/../.." && pwd)"
D="${KPO_NODE_DIR:-/tmp/kpo-node}"
NODE_NAME="${KPO_NODE_NAME:-kpo-node}"
ETCD_PORT="${KPO_NODE_ETCD_PORT:-23790}"
API_PORT="${KPO_NODE_API_PORT:-6443}"
SERVICE_CIDR=10.0.0.0/24
SERVICE_IP=10.0.0.1
POD_CIDR=10.88.0.0/24
BRIDGE=kpo0
SANDBOX_IMAGE=kpo.local/e2e/pause:v1
CNI_BIN="${KPO_NODE_CNI_BIN:-/usr/lib/cni}"
PACKAGES=(containerd runc containernetworking-plugins iptables openssl curl)

# What the kubelet (kernel tunables) and the bridge plugin (forwarding) change.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
  net.ipv4.conf.all.forwarding net.ipv6.conf.all.forwarding net.ipv4.conf.default.forwarding
  net.ipv6.conf.default.forwarding)
# Directories something here creates outside $D (hardcoded paths of the kubelet, containerd
# and CNI).
HOST_DIRS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/run/netns
  /var/lib/cni /opt/containerd /etc/cni /var/lib/containerd /run/kpo-node)

log() { echo "node: $*" >&2; }
die() { echo "node: $*" >&2; exit 1; }

# --- preflight -------------------------------------------------------------------------------

missing_commands() {
  local m=()
  for c in containerd containerd-shim-runc-v2 runc ctr iptables ip6tables openssl curl findmnt; do
    command -v "$c" >/dev/null 2>&1 || m+=("$c")
  done
  [ -x "${CNI_BIN}/bridge" ] && [ -x "${CNI_BIN}/host-local" ] && [ -x "${CNI_BIN}/loopback" ] || m+=("${CNI_BIN}/bridge")
  echo "${m[*]:-}"
}

# preflight [install]: exits with one line saying why a node cannot run here.
preflight() {
  [ "$(uname -s)" = Linux ] || die "the node tier needs Linux (this is $(uname -s))"
  [ "$(id -u)" = 0 ] || die "the node tier needs root (it runs containerd and a kubelet); run make e2e as root"
  local m
  m="$(missing_commands)"
  if [ -n "$m" ] && [ "${1:-}" = install ]; then
    command -v apt-get >/dev/null 2>&1 || die "the node tier needs ${m} and apt-get is not available to install ${PACKAGES[*]}"
    log "installing ${PACKAGES[*]} with apt-get"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"/tmp/kpo-node-apt.log" 2>&1; then
      die "apt-get could not install ${PACKAGES[*]} (see /tmp/kpo-node-apt.log: $(tail -n1 /tmp/kpo-node-apt.log))"
    fi
    m="$(missing_commands)"
  fi
  [ -z "$m" ] || die "the node tier needs ${m} (apt-get install ${PACKAGES[*]})"
  [ -d /sys/fs/cgroup ] || die "the node tier needs cgroups (/sys/fs/cgroup is missing)"
}

node_ip() {
  if [ -n "${KPO_NODE_IP:-}" ]; then echo "${KPO_NODE_IP}"; return; fi
  # The address of the default route's interface: the kubelet refuses a loopback --node-ip.
  ip -4 -o route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1
}

# --- host record -----------------------------------------------------------------------------

cgroup_roots() { findmnt -rn -t cgroup,cgroup2 -o TARGET; }

# fingerprint: what `down` must give back, one fact per line.
fingerprint() {
  local s
  for s in "${SYSCTLS[@]}"; do echo "sysctl ${s}=$(sysctl -n "$s" 2>/dev/null || echo absent)"; done
  for d in "${HOST_DIRS[@]}"; do [ -e "$d" ] && echo "dir ${d}"; done
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//'
  findmnt -rn -o TARGET | sort | sed 's/^/mount /'
  local r
  for r in $(cgroup_roots); do
    find "$r" -mindepth 1 -maxdepth 1 -type d -printf "cgroup %p\n" 2>/dev/null
  done | sort
  for t in iptables ip6tables; do
    for table in filter nat mangle; do
      "$t" -w -t "$table" -S 2>/dev/null | sed "s/^/$t $table /"
    done
  done
}

record_host() {
  mkdir -p "${D}/host"
  local s
  : >"${D}/host/sysctl"
  for s in "${SYSCTLS[@]}"; do
    if v="$(sysctl -n "$s" 2>/dev/null)"; then echo "${s}=${v}" >>"${D}/host/sysctl"; fi
  done
  fingerprint >"${D}/host/fingerprint"
}

# --- PKI -------------------------------------------------------------------------------------

pki() {
  local p="${D}/pki" ip="$1"
  mkdir -p "$p"
  (
    cd "$p"
    openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
    openssl req -x509 -new -key ca.key -subj "/CN=kpo-node-ca" -days 2 -out ca.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cert() { # NAME SUBJECT EXT
      openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
      openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    cert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:${ip},IP:${SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
    cert admin "/O=system:masters/CN=kpo-node-admin" "extendedKeyUsage=clientAuth"
    cert node "/O=system:nodes/CN=system:node:${NODE_NAME}" "extendedKeyUsage=clientAuth"
  )
  kubeconfig "${D}/admin.kubeconfig" admin
  kubeconfig "${D}/node.kubeconfig" node
}

kubeconfig() { # FILE CERT
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kpo-node
  cluster: {server: "https://127.0.0.1:${API_PORT}", certificate-authority: "${D}/pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "${D}/pki/$2.crt", client-key: "${D}/pki/$2.key"}
contexts:
- name: kpo-node
  context: {cluster: kpo-node, user: $2}
current-context: kpo-node
EOF
}

# --- processes -------------------------------------------------------------------------------

start() { # NAME CMD...: a daemon of this node, its own session, logging to $D/logs/NAME.log
  local name="$1"
  shift
  mkdir -p "${D}/logs" "${D}/pids"
  setsid "$@" >"${D}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >"${D}/pids/${name}.pid"
}

wait_for() { # WHAT SECONDS CMD...
  local what="$1" secs="$2" i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "${what} not ready after ${secs}s (logs in ${D}/logs)"
}

alive() { [ -f "${D}/pids/$1.pid" ] && kill -0 "$(cat "${D}/pids/$1.pid")" 2>/dev/null; }

stop() { # NAME: TERM, then KILL after 10s
  local f="${D}/pids/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

kc() { "${ASSETS}/kubectl" --kubeconfig "${D}/admin.kubeconfig" "$@"; }
api() { curl -sf --cacert "${D}/pki/ca.crt" --cert "${D}/pki/admin.crt" --key "${D}/pki/admin.key" "https://127.0.0.1:${API_PORT}$1"; }
ctr_() { ctr --address "${D}/containerd/containerd.sock" -n k8s.io "$@"; }

# --- up --------------------------------------------------------------------------------------

up() {
  preflight install
  if [ -e "${D}/host/fingerprint" ]; then
    die "a node is already up or was not torn down (${D}); run: hack/node/cluster.sh down"
  fi
  local ip
  ip="$(node_ip)"
  [ -n "$ip" ] || die "no non-loopback IPv4 address for the kubelet's --node-ip (set KPO_NODE_IP)"
  ip link show "${BRIDGE}" >/dev/null 2>&1 && die "a link named ${BRIDGE} already exists; is another node up?"
  local started
  started=$(date +%s)
  ASSETS="$("${HERE}/assets.sh")"
  # Flux's controllers (built on first use, then cached): images.sh makes images of them and
  # the tests install their CRDs.
  FLUX_ASSETS="$("${ROOT}/hack/flux-assets.sh")"
  export FLUX_ASSETS
  mkdir -p "${D}"
  # From here on, a failure tears down what exists and restores the host.
  trap 'rc=$?; trap - EXIT INT TERM; log "up failed; tearing down"; down || true; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  record_host
  echo "${ASSETS}" >"${D}/assets"
  log "building images"
  "${HERE}/images.sh" "${D}/images" >/dev/null
  pki "$ip"

  log "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
  start etcd "${ASSETS}/etcd" --data-dir "${D}/etcd" --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" --unsafe-no-fsync
  local p="${D}/pki"
  start kube-apiserver "${ASSETS}/kube-apiserver" --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 0.0.0.0 --secure-port "${API_PORT}" --advertise-address "$ip" \
    --endpoint-reconciler-type none --service-cluster-ip-range "${SERVICE_CIDR}" \
    --authorization-mode Node,RBAC --client-ca-file "$p/ca.crt" \
    --tls-cert-file "$p/apiserver.crt" --tls-private-key-file "$p/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$p/sa.pub" \
    --service-account-signing-key-file "$p/sa.key" \
    --kubelet-client-certificate "$p/admin.crt" --kubelet-client-key "$p/admin.key" \
    --kubelet-preferred-address-types InternalIP --cert-dir "${D}/apiserver"
  wait_for kube-apiserver 60 api /readyz
  start kube-controller-manager "${ASSETS}/kube-controller-manager" --kubeconfig "${D}/admin.kubeconfig" \
    --service-account-private-key-file "$p/sa.key" --root-ca-file "$p/ca.crt" --leader-elect=false \
    --secure-port 0
  start kube-scheduler "${ASSETS}/kube-scheduler" --kubeconfig "${D}/admin.kubeconfig" --leader-elect=false \
    --secure-port 0

  log "starting containerd and the kubelet (node ${NODE_NAME}, ${ip})"
  mkdir -p "${D}/containerd" "${D}/cni/net.d" "${D}/cni/ipam" "${D}/cni/cache"
  cat >"${D}/containerd/config.toml" <<EOF
version = 2
root = "${D}/containerd/root"
state = "${D}/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.grpc.v1.introspection.tracing"]
[grpc]
  address = "${D}/containerd/containerd.sock"
[ttrpc]
  address = "${D}/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${SANDBOX_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${D}/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${D}/cni/net.d"
EOF
  cat >"${D}/cni/net.d/10-kpo.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "kpo-node", "plugins": [
  {"type": "bridge", "bridge": "${BRIDGE}", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "${D}/cni/ipam", "ranges": [[{"subnet": "${POD_CIDR}"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
  start containerd containerd --config "${D}/containerd/config.toml"
  wait_for containerd 30 ctr_ version
  local t
  for t in "${D}"/images/*.tar; do
    ctr_ images import --no-unpack=false "$t" >/dev/null 2>>"${D}/logs/ctr-import.log" \
      || die "importing $(basename "$t") failed: $(tail -n1 "${D}/logs/ctr-import.log")"
  done

  # No kube-proxy: pods reach the API server at the kubernetes Service's address.
  iptables -w -t nat -N KPO-NODE-SVC
  iptables -w -t nat -A KPO-NODE-SVC -d "${SERVICE_IP}/32" -p tcp --dport 443 -j DNAT --to-destination "${ip}:${API_PORT}"
  iptables -w -t nat -I PREROUTING -j KPO-NODE-SVC
  iptables -w -t nat -I OUTPUT -j KPO-NODE-SVC

  mkdir -p "${D}/kubelet" "${D}/pod-logs"
  cat >"${D}/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${D}/containerd/containerd.sock
podLogsDir: ${D}/pod-logs
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${p}/ca.crt}
authorization: {mode: Webhook}
readOnlyPort: 0
healthzPort: 0
failSwapOn: false
serializeImagePulls: false
registerWithTaints: []
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
EOF
  start kubelet "${ASSETS}/kubelet" --config "${D}/kubelet.yaml" --kubeconfig "${D}/node.kubeconfig" \
    --node-ip "$ip" --hostname-override "${NODE_NAME}" --root-dir "${D}/kubelet" --cert-dir "${D}/kubelet/pki" --v 2
  wait_for "node ${NODE_NAME}" 90 kc wait --for=condition=Ready "node/${NODE_NAME}" --timeout 1s
  wait_for "the default ServiceAccount" 30 kc get serviceaccount default -n default
  wait_for "kube-root-ca.crt" 30 kc get configmap kube-root-ca.crt -n default

  cat >"${D}/env" <<EOF
KUBECONFIG=${D}/admin.kubeconfig
KPO_NODE_DIR=${D}
KPO_NODE_NAME=${NODE_NAME}
KPO_NODE_IP=${ip}
KPO_NODE_ASSETS=${ASSETS}
KPO_NODE_FLUX_ASSETS=${FLUX_ASSETS}
EOF
  trap - EXIT INT TERM
  log "node ${NODE_NAME} Ready in $(($(date +%s) - started))s; KUBECONFIG=${D}/admin.kubeconfig (kubectl: ${ASSETS}/kubectl)"
  echo "${D}/env"
}

# --- down ------------------------------------------------------------------------------------

down() {
  set +e
  if [ ! -d "${D}" ]; then
    log "nothing to tear down (${D} does not exist)"
    return 0
  fi
  [ -f "${D}/assets" ] && ASSETS="$(cat "${D}/assets")"
  log "tearing down ${D}"
  stop kube-controller-manager
  stop kube-scheduler
  # Pods go through the kubelet, which stops their sandboxes (and so tears down their network).
  if alive kubelet && alive kube-apiserver && [ -n "${ASSETS:-}" ]; then
    kc delete pods --all --all-namespaces --grace-period 1 --wait=false >/dev/null 2>&1
    local i
    for ((i = 0; i < 150; i++)); do
      [ -z "$(kc get pods -A -o name 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop kubelet
  if alive containerd; then
    local c
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1; done
    sleep 0.5
    for c in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1; done
    for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
  fi
  stop containerd
  # Shims outlive containerd; ours name our socket (exactly) on their command line.
  local pid
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address ${D}/containerd/containerd.sock( |$)" 2>/dev/null); do
    kill -KILL "$pid" 2>/dev/null
  done
  for pid in $(pgrep -f "^runc .*--root ${D}/containerd/runc" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  stop kube-apiserver
  stop etcd

  # Mounts: everything under $D and under the hardcoded directories that did not exist before.
  local prefixes=("${D}/") m d
  for d in "${HOST_DIRS[@]}"; do
    grep -qxF "dir ${d}" "${D}/host/fingerprint" 2>/dev/null || prefixes+=("${d}/")
  done
  for ((i = 0; i < 3; i++)); do
    findmnt -rn -o TARGET | awk '{print length, $0}' | sort -rn | cut -d' ' -f2- | while read -r m; do
      for d in "${prefixes[@]}"; do
        case "$m/" in "$d"*) umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ;; esac
      done
    done
  done

  # cgroups created since up (the kubelet's kubepods hierarchy), deepest first.
  local r
  for r in $(cgroup_roots); do
    find "$r" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | while read -r d; do
      grep -qxF "cgroup ${d}" "${D}/host/fingerprint" 2>/dev/null && continue
      [ -f "${D}/host/fingerprint" ] || case "$(basename "$d")" in kubepods*) ;; *) continue ;; esac
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
  done

  # Network: the bridge, and iptables chains (and the rules jumping to them) created since up.
  ip link show "${BRIDGE}" >/dev/null 2>&1 && ip link delete "${BRIDGE}"
  local t table chain
  for t in iptables ip6tables; do
    for table in filter nat mangle; do
      for chain in $("$t" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" {print $2}'); do
        grep -qxF -- "$t $table -N $chain" "${D}/host/fingerprint" 2>/dev/null && continue
        case "$chain" in KUBE-* | KPO-* | CNI-*) ;; *) continue ;; esac
        "$t" -w -t "$table" -S 2>/dev/null | grep -E -- "-j ${chain}( |$)" | sed 's/^-A /-D /' | while read -r rule; do
          eval "$t -w -t $table $rule" 2>/dev/null
        done
        "$t" -w -t "$table" -F "$chain" 2>/dev/null
      done
      for chain in $("$t" -w -t "$table" -S 2>/dev/null | awk '$1 == "-N" {print $2}'); do
        grep -qxF -- "$t $table -N $chain" "${D}/host/fingerprint" 2>/dev/null && continue
        case "$chain" in KUBE-* | KPO-* | CNI-*) "$t" -w -t "$table" -X "$chain" 2>/dev/null ;; esac
      done
    done
  done

  # sysctls, back to what they were.
  if [ -f "${D}/host/sysctl" ]; then
    local kv
    while read -r kv; do sysctl -q -w "$kv" >/dev/null 2>&1 || log "could not restore sysctl $kv"; done <"${D}/host/sysctl"
  fi

  # Directories the node created outside $D.
  for d in "${HOST_DIRS[@]}"; do
    if [ -e "$d" ] && [ -f "${D}/host/fingerprint" ] && ! grep -qxF "dir ${d}" "${D}/host/fingerprint"; then
      rm -rf --one-file-system "$d"
    fi
  done

  # Compare with the record: anything different was left behind.
  local rc=0
  if [ -f "${D}/host/fingerprint" ]; then
    fingerprint >"${D}/host/after"
    if ! diff "${D}/host/fingerprint" "${D}/host/after" >"${D}/host/diff"; then
      log "the host differs from before up:"
      sed 's/^/node:   /' "${D}/host/diff" >&2
      rc=1
    fi
  fi
  if [ $rc = 0 ]; then
    # The logs outlive the node, for a look after a failure.
    rm -rf "${D}-logs" && mv "${D}/logs" "${D}-logs" 2>/dev/null
    rm -rf --one-file-system "${D}"
    log "torn down; host restored (logs kept in ${D}-logs)"
  else
    log "kept ${D} for inspection; run down again after fixing"
  fi
  set -e
  return $rc
}

run() {
  [ $# -gt 0 ] || die "usage: hack/node/cluster.sh run CMD..."
  local env
  env="$(up)"
  CHILD=
  # CMD runs in its own session, so that a signal to this script alone (not only Ctrl-C to the
  # whole terminal group) still ends it, and all its processes, before the teardown.
  trap 'rc=$?; trap - EXIT INT TERM; end_child; down || rc=1; exit $rc' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  set -a
  # shellcheck disable=SC1090
  . "$env"
  set +a
  setsid "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  return $rc
}

end_child() {
  [ -n "${CHILD:-}" ] || return 0
  kill -TERM -- "-${CHILD}" 2>/dev/null || return 0
  local i
  for ((i = 0; i < 50; i++)); do kill -0 -- "-${CHILD}" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-${CHILD}" 2>/dev/null
  return 0
}

case "${1:-}" in
check) preflight && echo "node: this machine can run the node tier" ;;
up) up ;;
down) down ;;
run) shift; run "$@" ;;
*) die "usage: hack/node/cluster.sh check|up|down|run CMD..." ;;
esac
