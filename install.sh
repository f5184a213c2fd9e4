#!/bin/sh
# Installs k3ha as a systemd service:
#
#   curl -sfL <url of this script> | K3HA_TOKEN=SECRET sh -s - server --cluster-init
#   curl -sfL <url of this script> | K3HA_URL=https://<server>:6443 K3HA_TOKEN=SECRET sh -s -
#
# The words after "sh -s -" are the command (server or agent) and its flags.
# Without a command: agent when K3HA_URL (or K3S_URL) is set, else server.
#
# Environment:
#   INSTALL_K3HA_BIN          a k3ha binary on this machine to install
#   INSTALL_K3HA_BIN_URL      where to download it from instead
#   INSTALL_K3HA_BIN_SHA256   the download's expected SHA-256 (checked when given)
#   INSTALL_K3HA_BIN_DIR      where k3ha and its scripts go (/usr/local/bin)
#   INSTALL_K3HA_SYSTEMD_DIR  where the unit goes (/etc/systemd/system)
#   INSTALL_K3HA_EXEC         command and flags, before the script's arguments
#   INSTALL_K3HA_SKIP_ENABLE  true: write everything, enable and start nothing
#   INSTALL_K3HA_SKIP_START   true: enable, do not start
#   INSTALL_K3HA_SYMLINK      skip: no kubectl/crictl/ctr links; force: replace existing ones
#   K3HA_* and K3S_*          copied into the service's environment file (mode 0600)
set -eu

info() { echo "[INFO]  $*"; }
# escape makes a value safe inside double quotes of a systemd unit or
# environment file, which take C-style backslash escapes.
escape() { printf %s "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }

BIN_DIR=${INSTALL_K3HA_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3HA_SYSTEMD_DIR:-/etc/systemd/system}
SKIP_ENABLE=${INSTALL_K3HA_SKIP_ENABLE:-false}
SKIP_START=${INSTALL_K3HA_SKIP_START:-false}
URL=${K3HA_URL:-${K3S_URL:-}}

[ "$(id -u)" = 0 ] || fatal "run as root (k3ha runs as root): sudo sh install.sh ..."
case "$URL" in ""|https://*) ;; *) fatal "K3HA_URL must be an https:// URL like https://10.0.0.1:6443, not '$URL'" ;; esac

# The command: the first word, unless it is a flag.
eval set -- "${INSTALL_K3HA_EXEC:-}" '"$@"'
case "${1:-}" in
  server|agent) CMD=$1; shift ;;
  ""|-*) if [ -n "$URL" ]; then CMD=agent; else CMD=server; fi ;;
  *) fatal "unknown command '$1': use server or agent" ;;
esac
if [ "$CMD" = agent ] && [ -z "${K3HA_TOKEN:-${K3S_TOKEN:-}}" ] && [ -z "${K3HA_TOKEN_FILE:-${K3S_TOKEN_FILE:-}}" ]; then
  fatal "an agent needs the cluster's token: set K3HA_TOKEN (or K3HA_TOKEN_FILE)"
fi
if [ "$CMD" = server ]; then NAME=k3ha; else NAME=k3ha-agent; fi
UNIT=$SYSTEMD_DIR/$NAME.service
ENV_FILE=$SYSTEMD_DIR/$NAME.service.env

if [ "$SKIP_ENABLE" != true ] && ! command -v systemctl >/dev/null 2>&1; then
  fatal "systemctl not found: this script installs a systemd service (set INSTALL_K3HA_SKIP_ENABLE=true to only write the files)"
fi

# The binary.
mkdir -p "$BIN_DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if [ -n "${INSTALL_K3HA_BIN:-}" ]; then
  [ -f "$INSTALL_K3HA_BIN" ] || fatal "INSTALL_K3HA_BIN=$INSTALL_K3HA_BIN is not a file"
  cp "$INSTALL_K3HA_BIN" "$TMP/k3ha"
elif [ -n "${INSTALL_K3HA_BIN_URL:-}" ]; then
  info "downloading $INSTALL_K3HA_BIN_URL"
  if command -v curl >/dev/null 2>&1; then
    curl -sfL -o "$TMP/k3ha" "$INSTALL_K3HA_BIN_URL" || fatal "download of $INSTALL_K3HA_BIN_URL failed"
  elif command -v wget >/dev/null 2>&1; then
    wget -qO "$TMP/k3ha" "$INSTALL_K3HA_BIN_URL" || fatal "download of $INSTALL_K3HA_BIN_URL failed"
  else
    fatal "neither curl nor wget found to download $INSTALL_K3HA_BIN_URL"
  fi
elif [ -x "$BIN_DIR/k3ha" ]; then
  cp "$BIN_DIR/k3ha" "$TMP/k3ha"
else
  fatal "no k3ha binary: set INSTALL_K3HA_BIN to a file or INSTALL_K3HA_BIN_URL to a download"
fi
if [ -n "${INSTALL_K3HA_BIN_SHA256:-}" ]; then
  got=$(sha256sum "$TMP/k3ha" | cut -d' ' -f1)
  [ "$got" = "$INSTALL_K3HA_BIN_SHA256" ] || fatal "k3ha's SHA-256 is $got, expected $INSTALL_K3HA_BIN_SHA256: not installing it"
fi
chmod 755 "$TMP/k3ha"
"$TMP/k3ha" --version >/dev/null 2>&1 || fatal "the k3ha binary does not run on this machine"
mv -f "$TMP/k3ha" "$BIN_DIR/k3ha"
info "installed $BIN_DIR/k3ha"

# kubectl, crictl and ctr are k3ha itself under another name.
for cmd in kubectl crictl ctr; do
  if [ "${INSTALL_K3HA_SYMLINK:-}" = skip ]; then break; fi
  if [ "${INSTALL_K3HA_SYMLINK:-}" = force ] || { [ ! -e "$BIN_DIR/$cmd" ] && ! command -v "$cmd" >/dev/null 2>&1; }; then
    ln -sf k3ha "$BIN_DIR/$cmd"
    info "linked $BIN_DIR/$cmd to k3ha"
  else
    info "not linking $cmd: one is installed already"
  fi
done

# k3ha-killall.sh: stops k3ha, its containers and mounts, and removes its
# network interfaces and packet filter rules.
{
printf '#!/bin/sh\nBIN_DIR="%s"\n' "$BIN_DIR"
cat <<'EOF'
# Stops every k3ha process, container and mount on this machine and removes
# k3ha's network interfaces and iptables rules. Data stays.
set -u
[ "$(id -u)" = 0 ] || exec sudo --preserve-env=K3HA_DATA_DIR "$0" "$@"
DATA_DIR=${K3HA_DATA_DIR:-/var/lib/k3ha}
if command -v systemctl >/dev/null 2>&1; then
  for unit in /etc/systemd/system/k3ha*.service; do
    [ -s "$unit" ] && systemctl stop "$(basename "$unit")" 2>/dev/null
  done
fi
# k3ha itself and the programs it runs from its data dir.
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$exe" in
    "$BIN_DIR"/k3ha|"$DATA_DIR"/data/*) kill -9 "${p#/proc/}" 2>/dev/null ;;
  esac
done
# Every container: the processes in k3ha's cgroups (/k3ha/<node>).
for i in 1 2 3; do
  for procs in $(find /sys/fs/cgroup -path '*/k3ha/*' -name cgroup.procs 2>/dev/null); do
    for pid in $(cat "$procs" 2>/dev/null); do [ "$pid" -gt 1 ] && kill -9 "$pid" 2>/dev/null; done
  done
  sleep 1
done
# Mounts under the data dir (container roots, volumes, pod network namespaces), deepest first.
awk -v d="$DATA_DIR/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
for d in $(find /sys/fs/cgroup -depth -type d -path '*/k3ha*' 2>/dev/null); do rmdir "$d" 2>/dev/null; done
# Network: the pod bridge and its ports, overlay links, the rules of kube-proxy and k3ha.
if command -v ip >/dev/null 2>&1; then
  for link in $(ip -o link show master cni0 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link delete "$link" 2>/dev/null
  done
  for link in cni0 flannel.1 flannel-v6.1 flannel-wg flannel-wg-v6 kube-ipvs0; do
    ip link delete "$link" 2>/dev/null
  done
fi
for tool in iptables ip6tables; do
  if command -v "$tool-save" >/dev/null 2>&1; then
    "$tool-save" | grep -iv -e 'KUBE-' -e 'CNI-' -e 'K3HA-' -e 'flannel' | "$tool-restore"
  fi
done
# The network policy table: without k3ha it would drop the new connections it diverts.
if command -v nft >/dev/null 2>&1; then
  nft delete table ip k3ha-network-policy 2>/dev/null
fi
rm -rf /var/lib/cni
exit 0
EOF
} >"$BIN_DIR/k3ha-killall.sh"
chmod 755 "$BIN_DIR/k3ha-killall.sh"

# k3ha-uninstall.sh: killall, then removes what this script installed,
# k3ha's configuration and its data.
cat >"$BIN_DIR/$NAME-uninstall.sh" <<EOF
#!/bin/sh
# Removes k3ha from this machine: stops everything, then deletes the
# service, the binary, /etc/k3ha and the data dir.
set -u
[ "\$(id -u)" = 0 ] || exec sudo --preserve-env=K3HA_DATA_DIR "\$0" "\$@"
DATA_DIR=\${K3HA_DATA_DIR:-/var/lib/k3ha}
"$BIN_DIR/k3ha-killall.sh"
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable "$NAME" 2>/dev/null
  systemctl reset-failed "$NAME" 2>/dev/null
fi
rm -f "$UNIT" "$ENV_FILE"
if command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload 2>/dev/null; fi
for other in "$SYSTEMD_DIR"/k3ha*.service; do
  if [ -e "\$other" ]; then
    echo "another k3ha service is installed (\$other): only $NAME was removed"
    rm -f "\$0"
    exit 0
  fi
done
for cmd in kubectl crictl ctr; do
  if [ -L "$BIN_DIR/\$cmd" ]; then rm -f "$BIN_DIR/\$cmd"; fi
done
rm -rf /etc/k3ha "\$DATA_DIR"
rm -f "$BIN_DIR/k3ha" "$BIN_DIR/k3ha-killall.sh" "\$0"
EOF
chmod 755 "$BIN_DIR/$NAME-uninstall.sh"

# The environment file: the token and the other K3HA_/K3S_ settings, readable by root only.
mkdir -p "$SYSTEMD_DIR"
umask 077
: >"$ENV_FILE"
chmod 600 "$ENV_FILE"
env | grep -E '^(K3HA|K3S)_[A-Z0-9_]*=' | while IFS= read -r line; do
  key=${line%%=*}
  printf '%s="%s"\n' "$key" "$(escape "${line#*=}")" >>"$ENV_FILE"
done
umask 022

# The unit: Type=notify, so systemd waits for k3ha to say it is ready.
{
  cat <<EOF
[Unit]
Description=k3ha: lightweight highly available Kubernetes
Documentation=https://github.com/k3ha/k3ha
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-$ENV_FILE
# Stopping k3ha leaves its pods running; k3ha-killall.sh stops them too.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
EOF
  printf 'ExecStart=%s \\\n    %s' "$BIN_DIR/k3ha" "$CMD"
  for arg in "$@"; do
    printf " \\\\\n\t\"%s\"" "$(escape "$arg")"
  done
  printf '\n'
} >"$UNIT"
info "wrote $UNIT and $ENV_FILE"

if [ "$SKIP_ENABLE" = true ]; then
  info "INSTALL_K3HA_SKIP_ENABLE: not enabling or starting $NAME"
  exit 0
fi
systemctl daemon-reload
systemctl enable "$NAME"
if [ "$SKIP_START" = true ]; then
  info "INSTALL_K3HA_SKIP_START: $NAME enabled, not started"
  exit 0
fi
info "starting $NAME (waits until k3ha is ready)"
systemctl restart "$NAME"
