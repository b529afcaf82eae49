#!/usr/bin/env bash
# Runs one command inside a throwaway QEMU VM whose kernel has real DRM: a Debian
# trixie kernel (>= 6.6) with virtio_gpu bound to `-device virtio-gpu-pci`
# (/dev/dri/card0 + renderD128: syncobj, timeline syncobj, SYNCOBJ_EVENTFD) and
# vgem (/dev/dri/card1 + renderD129: VGEM_FENCE_ATTACH/SIGNAL give dma-fences
# that stay pending until signalled). See README.md next to this file.
#
# usage: tests/drm-vm/run.sh [--gpu virgl] [--include PATH]... [--env NAME=VALUE]... -- COMMAND [ARGS...]
#
# --gpu virgl replaces the 2D device with `-device virtio-gpu-gl-pci`: virtio_gpu
# with virgl 3D, whose DRM_IOCTL_VIRTGPU_EXECBUFFER runs real GPU work (the host
# executes it with virglrenderer on Mesa's software rasterizer; no host GPU needed)
# and signals the submission's out-syncobjs itself.
#
# Host paths keep their meaning in the guest: the guest's working directory is
# this shell's working directory, and COMMAND, every --include and the shared
# libraries they need are copied to the same absolute paths. COMMAND runs as
# root with COSCHED_DRM_VM=1; its stdout streams to our stdout, its stderr to
# our stderr. Exit status: COMMAND's, or
#   122  the guest kernel logged a BUG/WARNING/Oops (or tainted itself with one)
#   124  COSCHED_DRM_VM_TIMEOUT (default 900 s) ran out; the VM was killed
#   125  the VM died without reporting a status (boot failure, kernel panic)
#   126  usage or setup error (packages, download, modules, devices)
set -euo pipefail

readonly cache_format=1 # bump when the layout of the cached base initramfs changes
readonly suite=trixie
readonly status_prefix=cosched-drm-vm

start_time=$EPOCHREALTIME
umask 022
say() { if [ "${COSCHED_DRM_VM_QUIET:-0}" != 1 ]; then echo "drm-vm: $*" >&2; fi; }
die() { echo "drm-vm: error: $*" >&2; exit 126; }
seconds_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

usage() {
  cat <<'EOF'
usage: tests/drm-vm/run.sh [--gpu virgl] [--include PATH]... [--env NAME=VALUE]... -- COMMAND [ARGS...]

Boots a QEMU VM with a Debian trixie kernel, virtio-gpu (/dev/dri/renderD128) and
vgem (/dev/dri/renderD129), runs COMMAND there as root and exits with its status.

  --gpu virgl        a virtio-gpu with virgl 3D (real GPU work, run by the host's
                     virglrenderer on Mesa's software rasterizer) instead of the 2D one
  --include PATH     copy a file or directory into the guest at the same path
  --env NAME=VALUE   set an environment variable for COMMAND

COMMAND with a slash, or a name busybox does not provide, is a host program and is
copied in with its shared libraries; a bare busybox name (sh, cat, ...) runs the
guest's busybox. Exit codes 122 (kernel warning), 124 (timeout), 125 (VM died),
126 (setup error); otherwise COMMAND's status. Environment: see README.md.
EOF
}

# ------------------------------------------------------------------ arguments
includes=()
envs=()
gpu=2d
while [ $# -gt 0 ]; do
  case $1 in
    --gpu) [ $# -ge 2 ] || die "--gpu needs a value (virgl)"; gpu=$2; shift 2 ;;
    --gpu=*) gpu=${1#--gpu=}; shift ;;
    --include) [ $# -ge 2 ] || die "--include needs a path"; includes+=("$2"); shift 2 ;;
    --include=*) includes+=("${1#--include=}"); shift ;;
    --env) [ $# -ge 2 ] || die "--env needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
    --env=*) envs+=("${1#--env=}"); shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; die "no COMMAND given"; }
command_name=$1
shift
for e in ${envs[@]+"${envs[@]}"}; do
  [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, got: $e"
done
[ "$(uname -m)" = x86_64 ] || die "x86_64 hosts only"
case $gpu in
  2d) gpu_device=(-device virtio-gpu-pci); gpu_display=none ;;
  # No host /dev/dri here: rendernode=/dev/null makes Mesa fall back to its
  # software screen (llvmpipe) through GBM/EGL.
  virgl) gpu_device=(-device virtio-gpu-gl-pci); gpu_display=egl-headless,rendernode=/dev/null ;;
  *) die "--gpu takes virgl (the default is the 2D device), got: $gpu" ;;
esac

timeout_s=${COSCHED_DRM_VM_TIMEOUT:-900}
mem_mib=${COSCHED_DRM_VM_MEM:-1024}
cpus=${COSCHED_DRM_VM_CPUS:-2}
accel=${COSCHED_DRM_VM_ACCEL:-auto}
for n in "$timeout_s" "$mem_mib" "$cpus"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "COSCHED_DRM_VM_TIMEOUT/MEM/CPUS must be positive integers"
done
case $accel in auto | tcg | kvm) ;; *) die "COSCHED_DRM_VM_ACCEL must be auto, tcg or kvm" ;; esac

if [ -n "${COSCHED_DRM_VM_CACHE:-}" ]; then
  cache=$COSCHED_DRM_VM_CACHE
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  cache=$XDG_CACHE_HOME/cosched-drm-vm
else
  cache=/var/cache/cosched-drm-vm
fi

# ----------------------------------------------------------------- host tools
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# apt-get install the packages whose commands are missing ("command:package").
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 ||
    die "apt-get install ${missing[*]} failed"
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || die "${pair%%:*} still missing after installing ${pair#*:}"
  done
}

ensure_commands qemu-system-x86_64:qemu-system-x86 cpio:cpio xz:xz-utils apt-get:apt \
  dpkg:dpkg flock:util-linux realpath:coreutils ldd:libc-bin

# apt-get install the packages that are not installed (no command to look for).
ensure_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { as_root apt-get update -q && as_root apt-get install -y -q --no-install-recommends "${missing[@]}"; } >&2 ||
    die "apt-get install ${missing[*]} failed"
}
# The virgl device needs QEMU's GL display module and a host renderer (Mesa
# through GBM/EGL).
if [ "$gpu" = virgl ]; then
  ensure_packages qemu-system-gui libvirglrenderer1 libegl-mesa0 libgl1-mesa-dri libgbm1
fi

# ------------------------------------------------------- the cached kernel

# The Debian archive apt already uses for the host's own release.
debian_mirror() {
  if [ -n "${COSCHED_DRM_VM_MIRROR:-}" ]; then
    echo "$COSCHED_DRM_VM_MIRROR"
    return
  fi
  local codename uri
  codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
  # shellcheck disable=SC2016 # apt's own $(FIELD) syntax
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null |
    awk -v c="$codename" '$2 == c && $3 == "main" { print $1; exit }') || true
  [ -n "$uri" ] || die "no Debian archive found in the host's apt sources: set COSCHED_DRM_VM_MIRROR to one"
  echo "$uri"
}

# Runs apt-get/apt-cache on a private configuration: its own sources, lists and
# archives under the cache; the host's apt state is only read, never written.
guest_apt() {
  local tool=$1
  shift
  "$tool" -q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/empty" \
    -o "Dir::Etc::Preferences=$apt_dir/empty/none" -o "Dir::Etc::PreferencesParts=$apt_dir/empty" \
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" \
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root -o Acquire::Languages=none -o APT::Default-Release= "$@"
}

# Writes a module's file (any compression) to stdout.
module_contents() {
  case $1 in
    *.ko.xz) xz -dc -- "$1" ;;
    *.ko.zst) zstd -qdc -- "$1" ;;
    *.ko.gz) gzip -dc -- "$1" ;;
    *) cat -- "$1" ;;
  esac
}

# Downloads the trixie kernel and busybox-static, unpacks them with dpkg -x and
# builds $cache/<kernel release>/: vmlinuz, base.cpio (busybox, the DRM modules,
# the usr-merged directory skeleton), applets, config, package.
build_cache() {
  apt_dir=$cache/apt
  rm -rf "$apt_dir"
  mkdir -p "$apt_dir/empty" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=""
  [ -r "$keyring" ] && signed="[signed-by=$keyring] "
  local mirror
  mirror=$(debian_mirror) || exit 126  # debian_mirror said why
  echo "deb $signed$mirror $suite main" >"$apt_dir/sources.list"
  say "fetching the $suite package lists (private apt state in $apt_dir)"
  guest_apt apt-get update >&2 || die "apt-get update for $suite failed"

  local kernel_pkg=${COSCHED_DRM_VM_KERNEL_PACKAGE:-}
  if [ -z "$kernel_pkg" ]; then
    kernel_pkg=$(guest_apt apt-cache show --no-all-versions linux-image-amd64 |
      sed -n 's/^Depends: *\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -n 1)
    [ -n "$kernel_pkg" ] || die "cannot resolve linux-image-amd64 in $suite"
  fi
  local work=$cache/build.$$
  rm -rf "$cache"/build.*
  mkdir -p "$work/debs" "$work/kernel" "$work/busybox" "$work/root"
  say "downloading $kernel_pkg and busybox-static"
  (cd "$work/debs" && guest_apt apt-get download "$kernel_pkg" busybox-static >&2) ||
    die "apt-get download $kernel_pkg busybox-static failed"
  local deb
  for deb in "$work"/debs/*.deb; do
    case ${deb##*/} in
      busybox-static_*) dpkg -x "$deb" "$work/busybox" ;;
      *) dpkg -x "$deb" "$work/kernel" ;;
    esac
  done

  local moddir="" d
  for d in "$work"/kernel/usr/lib/modules/* "$work"/kernel/lib/modules/*; do
    if [ -d "$d/kernel" ]; then moddir=$d; break; fi
  done
  [ -n "$moddir" ] || die "$kernel_pkg has no modules"
  local release=${moddir##*/}
  local config=$work/kernel/boot/config-$release
  if [ ! -f "$work/kernel/boot/vmlinuz-$release" ] || [ ! -f "$config" ]; then
    die "$kernel_pkg has no vmlinuz/config"
  fi
  grep -qE '^CONFIG_DRM_VIRTIO_GPU=[ym]' "$config" || die "$release has no CONFIG_DRM_VIRTIO_GPU"
  grep -qE '^CONFIG_DRM_VGEM=[ym]' "$config" || die "$release has no CONFIG_DRM_VGEM"
  if find "$moddir" -name '*.ko.zst' -print -quit | grep -q .; then ensure_commands zstd:zstd; fi

  # module closure of virtio_gpu, then of vgem: dependencies first (modinfo depends=)
  local root=$work/root
  mkdir -p "$root/drm-vm/modules"
  find "$moddir/kernel" -name '*.ko*' >"$work/modules.txt"
  local -A loaded=()
  local load_list=()
  add_module() {
    local name=${1//-/_} file deps dep
    [ -z "${loaded[$name]:-}" ] || return 0
    loaded[$name]=1
    file=$(grep -m 1 -E "/${name//_/[-_]}\.ko(\.(xz|zst|gz))?$" "$work/modules.txt") || {
      grep -qE "/${name//_/[-_]}\.ko$" "$moddir/modules.builtin" 2>/dev/null && return 0
      die "module $name is neither in $kernel_pkg nor built in"
    }
    module_contents "$file" >"$root/drm-vm/modules/$name.ko"
    deps=$(tr '\0' '\n' <"$root/drm-vm/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)
    for dep in ${deps//,/ }; do add_module "$dep"; done
    load_list+=("insmod $name")
  }
  add_module virtio_pci # built in on trixie kernels, a module on some others
  add_module virtio_gpu
  load_list+=("wait /dev/dri/renderD128") # so that vgem becomes card1/renderD129
  add_module vgem
  load_list+=("wait /dev/dri/renderD129")
  printf '%s\n' "${load_list[@]}" >"$root/drm-vm/modules.load"

  local busybox=""
  for d in "$work/busybox/usr/bin/busybox" "$work/busybox/bin/busybox"; do
    if [ -f "$d" ]; then busybox=$d; break; fi
  done
  [ -n "$busybox" ] || die "busybox-static has no busybox binary"
  # usr-merged skeleton: overlay files are always written below usr/ (see guest_path)
  mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib" "$root/usr/lib64" "$root/etc" \
    "$root/proc" "$root/sys" "$root/dev" "$root/root" "$root/run"
  mkdir -m 1777 "$root/tmp"
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
  install -m 755 "$busybox" "$root/usr/bin/busybox"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"

  local dest=$cache/$release
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  cp "$work/kernel/boot/vmlinuz-$release" "$dest.new/vmlinuz"
  cp "$config" "$dest.new/config"
  "$busybox" --list >"$dest.new/applets"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$dest.new/base.cpio"
  dpkg-deb -f "$(ls "$work"/debs/linux-image-*.deb)" Package Version >"$dest.new/package"
  echo "$cache_format" >"$dest.new/format"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  echo "$release" >"$cache/current"
  rm -rf "$work" "$apt_dir"
  say "cached $release in $dest"
}

if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
  die "cache dir $cache is not writable (set COSCHED_DRM_VM_CACHE)"
fi
exec {lock_fd}>"$cache/lock"
flock "$lock_fd"
release=$(cat "$cache/current" 2>/dev/null || true)
if [ "${COSCHED_DRM_VM_REFRESH:-0}" = 1 ] || [ -z "$release" ] ||
  [ "$(cat "$cache/$release/format" 2>/dev/null)" != "$cache_format" ]; then
  cache_start=$EPOCHREALTIME
  build_cache
  release=$(cat "$cache/current")
  say "kernel cache ready in $(seconds_since "$cache_start") s"
fi
flock -u "$lock_fd"
exec {lock_fd}>&-
kdir=$cache/$release

# ---------------------------------------------------------- this run's files
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cosched-drm-vm.XXXXXX")
qemu_pid=""
tail_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
root=$tmp/root
mkdir -m 755 "$root"

# A host path as the guest sees it: absolute, lexically normalised, with bin, sbin
# and lib* moved below usr/ (the guest is usr-merged: /lib -> usr/lib, ...).
canonical_path() {
  local p
  p=$(realpath -m -s -- "$1")
  case $p in
    /bin | /bin/* | /sbin | /sbin/* | /lib | /lib/* | /lib32 | /lib32/* | /lib64 | /lib64/* | /libx32 | /libx32/*)
      p=/usr$p ;;
  esac
  echo "$p"
}

# Where a copied host path goes in the guest.
guest_path() {
  local p
  p=$(canonical_path "$1")
  case $p in
    / | /init | /usr/bin/busybox | /proc | /proc/* | /sys | /sys/* | /dev | /dev/* | /drm-vm | /drm-vm/*)
      die "cannot copy into the guest at $p (reserved there)" ;;
  esac
  echo "$p"
}

is_elf() { [ -f "$1" ] && [ "$(head -c 4 -- "$1" 2>/dev/null)" = $'\177ELF' ]; }

declare -A staged=()
# Copies a host file or directory to its guest path (following it if it is a symlink).
stage() {
  local dest
  dest=$(guest_path "$1")
  [ -z "${staged[$dest]:-}" ] || return 0
  staged[$dest]=1
  mkdir -p "$root$(dirname -- "$dest")"
  cp -a -H -T -- "$1" "$root$dest" || die "cannot copy $1"
}

# Copies the dynamic loader and the shared libraries `ldd` resolves for an ELF file.
stage_libraries() {
  local file=$1 strict=$2 out lib
  is_elf "$file" || return 0
  out=$(ldd -- "$file" 2>/dev/null) || return 0 # static, or not for this machine
  if grep -q 'not found' <<<"$out"; then
    [ "$strict" = 1 ] && die "$file: ldd cannot resolve: $(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
    say "warning: $file: ldd cannot resolve:$(grep 'not found' <<<"$out" | tr -s ' \t\n' ' ')"
  fi
  while read -r lib; do
    stage "$lib"
  done < <(sed -n 's/.*=> \(\/[^ ]*\) (0x.*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p' <<<"$out")
}

# The host program behind a name: busybox applets stay the guest's ("").
host_program() {
  case $1 in
    */*) echo "$1" ;;
    *)
      if grep -qxF -- "$1" "$kdir/applets"; then echo ""; return; fi
      command -v -- "$1" 2>/dev/null | grep / || die "no such command on the host or in busybox: $1"
      ;;
  esac
}

# A program given to the guest: copied with its libraries. For a script, its
# interpreter too, unless busybox provides it (#!/bin/sh, #!/usr/bin/env awk).
stage_program() {
  local file=$1 line interp program
  if [ ! -f "$file" ] || [ ! -x "$file" ]; then die "not an executable file: $file"; fi
  stage "$file"
  stage_libraries "$file" 1
  [ "$(head -c 2 -- "$file")" = '#!' ] || return 0
  read -r line <"$file" || true
  read -r -a interp <<<"${line#\#!}"
  if [ "${interp[0]:-}" = /usr/bin/env ] || [ "${interp[0]:-}" = /bin/env ]; then
    interp=("${interp[@]:1}")
  fi
  [ -n "${interp[0]:-}" ] || return 0
  grep -qxF -- "${interp[0]##*/}" "$kdir/applets" && return 0
  program=$(host_program "${interp[0]}")
  stage_program "$program"
}

for inc in ${includes[@]+"${includes[@]}"}; do
  [ -e "$inc" ] || die "--include: no such file or directory: $inc"
  stage "$inc"
  while IFS= read -r -d '' f; do
    if [ -x "$f" ] || [[ $f == *.so || $f == *.so.* ]]; then stage_libraries "$f" 0; fi
  done < <(find -H "$inc" -type f -print0)
done
program=$(host_program "$command_name")
if [ -n "$program" ]; then
  stage_program "$program"
  [[ $command_name == */* ]] || command_name=$(guest_path "$program")
fi
if [ -r /etc/ld.so.cache ]; then # the loader then finds libraries where the host does
  mkdir -p "$root/etc"
  cp /etc/ld.so.cache "$root/etc/ld.so.cache"
fi
cwd=$(canonical_path "$PWD")
mkdir -p "$root$cwd"
# the kernel applies an archive's directory modes to existing directories too
if [ -d "$root/tmp" ]; then chmod 1777 "$root/tmp"; fi

# /init (part of every run's overlay, so editing it needs no cache rebuild)
mkdir -p "$root/drm-vm"
quote() { local q="'"; printf "'%s'" "${1//$q/$q\\$q$q}"; }
{
  printf 'cwd=%s\n' "$(quote "$cwd")"
  for e in ${envs[@]+"${envs[@]}"}; do printf 'export %s=%s\n' "${e%%=*}" "$(quote "${e#*=}")"; done
  printf 'set --'
  for a in "$command_name" "$@"; do printf ' %s' "$(quote "$a")"; done
  printf '\n'
} >"$root/drm-vm/job"
cat >"$root/init" <<EOF
#!/bin/busybox sh
# Guest /init, written by tests/drm-vm/run.sh. Ports: ttyS0 kernel console,
# ttyS1 COMMAND's stdout, ttyS2 status lines for run.sh, ttyS3 COMMAND's stderr.
bb=/bin/busybox
status() { echo "$status_prefix: \$*" >/dev/ttyS2; }
fail() {
  echo "drm-vm(guest): \$*" >/dev/ttyS3
  status setup-failed
  \$bb sync
  \$bb poweroff -f
}
\$bb mount -t devtmpfs devtmpfs /dev
exec </dev/null >/dev/ttyS0 2>&1
\$bb mount -t proc proc /proc
\$bb mount -t sysfs sysfs /sys
\$bb mkdir -p /dev/pts /dev/shm
\$bb mount -t devpts devpts /dev/pts
\$bb mount -t tmpfs -o mode=1777 tmpfs /dev/shm
[ -n "\$(\$bb ls -A /tmp)" ] || \$bb mount -t tmpfs -o mode=1777 tmpfs /tmp
\$bb mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
for port in 1 2 3; do \$bb stty -F /dev/ttyS\$port raw -echo; done
status booted
\$bb --install -s
# No fbdev emulation: its fbcon damage worker races the virtio-gpu shutdown at
# poweroff (WARNING in virtio_gpu_queue_fenced_ctrl_buffer) and costs TCG time.
params() {
  case \$1 in
    drm_kms_helper) echo fbdev_emulation=0 ;;
  esac
}
while read -r verb arg; do
  case \$verb in
    insmod)
      [ -d "/sys/module/\$arg" ] || \$bb insmod "/drm-vm/modules/\$arg.ko" \$(params "\$arg") ||
        fail "insmod \$arg failed"
      ;;
    wait)
      i=0
      while [ ! -e "\$arg" ] && [ \$i -lt 200 ]; do \$bb sleep 0.05; i=\$((i + 1)); done
      [ -e "\$arg" ] || fail "\$arg did not appear"
      ;;
  esac
done </drm-vm/modules.load
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root COSCHED_DRM_VM=1
. /drm-vm/job
cd "\$cwd" || fail "cannot cd to \$cwd"
# COMMAND writes to pipes, as under ctest, not to ttys (isatty() stays false);
# cat relays them to the ports. Their EOF means COMMAND's output is complete.
\$bb mkfifo /drm-vm/stdout /drm-vm/stderr
\$bb cat /drm-vm/stdout >/dev/ttyS1 &
out=\$!
\$bb cat /drm-vm/stderr >/dev/ttyS3 &
err=\$!
"\$@" </dev/null >/drm-vm/stdout 2>/drm-vm/stderr
rc=\$?
# a background process may keep the pipes open: give it 5 s, then cut it off
(\$bb sleep 5; kill \$out \$err 2>/dev/null) &
watchdog=\$!
wait \$out \$err
kill \$watchdog 2>/dev/null
status "exit \$rc tainted \$(\$bb cat /proc/sys/kernel/tainted)"
\$bb sync
\$bb poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/run.cpio"
cat "$kdir/base.cpio" "$tmp/run.cpio" >"$tmp/initrd"

# --------------------------------------------------------------------- boot
if [ "$accel" = auto ]; then
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
  may_fall_back=1
else
  may_fall_back=0
fi
loglevel=5 # warnings and worse reach the console
if [ "${COSCHED_DRM_VM_VERBOSE:-0}" = 1 ]; then loglevel=7; fi

# Boots the VM; sets outcome: finished (a status line came), timeout, no-boot or died.
run_vm() {
  local cpu boot_limit deadline
  if [ "$1" = kvm ]; then cpu=(-accel kvm -cpu host); boot_limit=60; else cpu=(-accel tcg -cpu max); boot_limit=300; fi
  [ "$boot_limit" -le "$timeout_s" ] || boot_limit=$timeout_s
  : >"$tmp/console"; : >"$tmp/status"; : >"$tmp/stderr"
  vm_start=$EPOCHREALTIME
  say "booting $release ($1, $cpus vCPU, $mem_mib MiB, ${gpu_device[1]})"
  qemu-system-x86_64 "${cpu[@]}" -M pc -m "$mem_mib" -smp "$cpus" \
    -nodefaults -no-user-config -display "$gpu_display" -no-reboot \
    -kernel "$kdir/vmlinuz" -initrd "$tmp/initrd" \
    -append "console=ttyS0 loglevel=$loglevel panic=-1 nowatchdog rcupdate.rcu_cpu_stall_suppress=1 mitigations=off" \
    -chardev "file,id=console,path=$tmp/console" \
    -chardev stdio,id=stdout,signal=off \
    -chardev "file,id=status,path=$tmp/status" \
    -chardev "file,id=stderr,path=$tmp/stderr,append=on" \
    -serial chardev:console -serial chardev:stdout -serial chardev:status -serial chardev:stderr \
    "${gpu_device[@]}" \
    </dev/null 2>"$tmp/qemu.err" &
  qemu_pid=$!
  tail -f -s 0.2 --pid="$qemu_pid" -c +1 "$tmp/stderr" >&2 &
  tail_pid=$!
  SECONDS=0
  deadline=$timeout_s
  outcome=died
  while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      outcome=timeout
      break
    fi
    if [ "$SECONDS" -ge "$boot_limit" ] && ! grep -q "^$status_prefix: booted" "$tmp/status"; then
      outcome=no-boot
      break
    fi
    sleep 0.1
  done
  if [ "$outcome" != died ]; then
    kill "$qemu_pid" 2>/dev/null || true
  fi
  wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=""
  wait "$tail_pid" 2>/dev/null || true
  tail_pid=""
  if [ "$outcome" = died ] && grep -q "^$status_prefix: \(exit\|setup-failed\)" "$tmp/status"; then
    outcome=finished
  fi
  vm_seconds=$(seconds_since "$vm_start")
}

run_vm "$accel"
if [ "$accel" = kvm ] && [ "$may_fall_back" = 1 ] && [ "$outcome" != finished ] &&
  ! grep -q "^$status_prefix: booted" "$tmp/status"; then
  say "KVM did not boot the guest ($(head -n 1 "$tmp/qemu.err")); retrying with TCG"
  accel=tcg
  run_vm tcg
fi

# ------------------------------------------------------------------- verdict
if [ -n "${COSCHED_DRM_VM_CONSOLE:-}" ]; then cp "$tmp/console" "$COSCHED_DRM_VM_CONSOLE"; fi
if [ "${COSCHED_DRM_VM_VERBOSE:-0}" = 1 ]; then
  echo "----- guest kernel console -----" >&2
  cat "$tmp/console" >&2
  echo "----- end of guest kernel console -----" >&2
fi

problems=0
problem_re='(^|[] ])(BUG: |WARNING: |Oops|kernel BUG at|general protection fault|Kernel panic|UBSAN: |KASAN: |KFENCE: |refcount_t: |INFO: task .* blocked for more than)'
if grep -qE "$problem_re" "$tmp/console"; then
  problems=1
  say "the guest kernel reported problems:"
  grep -E -A 12 "$problem_re" "$tmp/console" | head -n 60 | sed 's/^/  /' >&2
fi
status_line=$(grep "^$status_prefix: " "$tmp/status" | tail -n 1 || true)
if [[ $status_line =~ tainted\ ([0-9]+) ]]; then
  # W (warning), D (oops), B (bad page), L (soft lockup), M (machine check)
  taint=$((BASH_REMATCH[1] & (512 | 128 | 32 | 16384 | 16)))
  if [ "$taint" != 0 ]; then
    problems=1
    say "the guest kernel is tainted: /proc/sys/kernel/tainted = ${BASH_REMATCH[1]}"
  fi
fi

report_dead_vm() {
  if [ -s "$tmp/qemu.err" ]; then
    say "qemu said:"
    sed 's/^/  /' "$tmp/qemu.err" | head -n 20 >&2
  fi
  say "last lines of the guest kernel console:"
  tail -n 25 "$tmp/console" | sed 's/^/  /' >&2
}

case $outcome in
  timeout)
    say "timeout: the VM ran for $timeout_s s (COSCHED_DRM_VM_TIMEOUT) and was killed"
    exit 124
    ;;
  no-boot)
    say "the guest did not reach /init within the boot limit ($accel)"
    report_dead_vm
    exit 125
    ;;
  died)
    say "the VM stopped without reporting an exit status"
    report_dead_vm
    exit 125
    ;;
esac
if [ "$status_line" = "$status_prefix: setup-failed" ]; then
  say "guest setup failed (see the drm-vm(guest) line above)"
  exit 126
fi
rc=${status_line#"$status_prefix: exit "}
rc=${rc%% *}
if [ "$problems" = 1 ]; then
  say "failing the run (exit 122); the command itself exited $rc"
  exit 122
fi
say "exit $rc; VM ${vm_seconds} s ($accel), total $(seconds_since "$start_time") s"
exit "$rc"
