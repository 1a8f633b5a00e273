#!/usr/bin/env bash
# Runs the sandbox containment tests again on a cgroup v2 kernel, in a VM guest: this machine
# (like most CI hosts) may mount the cgroup v1 hierarchies, while every current distribution
# boots with the unified v2 hierarchy only. The guest is Debian's kernel under KVM with this
# machine's own root file system shared read-only over 9p, so it runs the very test binaries
# and tools just built here; its /tmp, /run and /var/tmp are its own tmpfs, and it mounts
# cgroup2 at /sys/fs/cgroup (cgroup_no_v1=all).
#
#   scripts/vm-test.sh            build the test binaries and run them in the guest
#
# Needs /dev/kvm; without it this says so and exits 0. scripts/setup.sh installs qemu and
# busybox where /dev/kvm exists; the kernel comes from Debian's archive (apt-get download),
# unpacked into the build cache.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

if [[ ! -e /dev/kvm ]]; then
  say "no /dev/kvm here: the cgroup v2 VM tests do not run on this machine (skipped)"
  exit 0
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (scripts/setup.sh installs it)"
[[ -x /bin/busybox ]] || die "busybox is missing (scripts/setup.sh installs busybox-static)"
[[ $(id -u) -eq 0 ]] || die "the VM tests run as root (they start sandboxes as root inside the guest)"

vm_dir="$CARGO_TARGET_DIR/vm"
mkdir -p "$vm_dir"

# --- the kernel: Debian's, unpacked once -------------------------------------------------
kernel_stamp="$vm_dir/kernel.stamp"
if [[ ! -f "$kernel_stamp" ]]; then
  say "fetching Debian's kernel for the VM guest"
  download=$(mktemp -d)
  (cd "$download" && apt-get download linux-image-amd64 >/dev/null 2>&1) ||
    { apt-get update -qq && (cd "$download" && apt-get download linux-image-amd64 >/dev/null 2>&1); }
  image=$(dpkg-deb -f "$download"/linux-image-amd64_*.deb Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -1)
  [[ -n "$image" ]] || die "cannot tell which kernel linux-image-amd64 depends on"
  (cd "$download" && apt-get download "$image" >/dev/null 2>&1)
  rm -rf "$vm_dir/kernel"
  dpkg -x "$download/${image}"_*.deb "$vm_dir/kernel"
  rm -rf "$download"
  echo "$image" >"$kernel_stamp"
fi
vmlinuz=$(ls "$vm_dir"/kernel/boot/vmlinuz-* | head -1)
modules=$(ls -d "$vm_dir"/kernel/lib/modules/* | head -1)

# --- the test binaries -----------------------------------------------------------------
say "building the sandbox tests and the agent for the VM guest"
cd "$ROOT"
cargo build -p agent --bin codepod-agent --locked --quiet
tests=$(cargo test -p sandbox --test local --test hostile_agent --no-run --locked --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
[[ -n "$tests" ]] || die "no sandbox test binaries were built"

# --- the initramfs: busybox, the 9p and virtio modules, and an init ----------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,modules,proc,sys,dev,root}
cp /bin/busybox "$stage/bin/busybox"
loaded=()
# Modules in dependency order (each module's .modinfo names what it depends on).
add_module() {
  local name="$1" file dep
  for dep in "${loaded[@]}"; do [[ "$dep" == "$name" ]] && return 0; done
  file=$(find "$modules" -name "$name.ko" | head -1)
  [[ -n "$file" ]] || return 0 # built into the kernel
  for dep in $(grep -a -o 'depends=[a-z0-9_,-]*' "$file" | head -1 | cut -d= -f2 | tr ',' ' '); do
    add_module "$dep"
  done
  cp "$file" "$stage/modules/$name.ko"
  loaded+=("$name")
}
for module in virtio_pci 9pnet_virtio 9p overlay; do add_module "$module"; done
printf '%s\n' "${loaded[@]}" >"$stage/modules/order"

# KVM boots a stock kernel only with hardware virtualization (vmx/svm); a host that offers
# /dev/kvm without it (a PVM hypervisor, in nested clouds) runs only guests built for it,
# so the guest then runs under software emulation: slower, the same kernel and tests.
if grep -qwE 'vmx|svm' /proc/cpuinfo; then
  accel=(-enable-kvm -cpu host)
  how="KVM"
  emulated=false
else
  accel=(-accel tcg,thread=multi -cpu max)
  how="software emulation (this CPU offers no vmx/svm to KVM)"
  emulated=true
fi
# Not in the guest: `pip install`, which needs the internet; and under emulation the CPU
# weight, which needs the machine short of CPU — the emulated vCPUs are host threads beside
# qemu's own, and the guest is not reliably short of anything (the weight's value is checked
# by the CPU cap test, which runs).
skip=(--skip network::with_egress_pip_install_user_works_through_the_proxy)
if $emulated; then
  skip+=(--skip limits::busy_sandboxes_get_the_cpu_after_the_server)
fi
{
  echo '#!/bin/sh'
  echo 'set -u'
  for test in $tests; do
    printf '%q --test-threads=2 --color never %s || status=$?\n' "$test" "${skip[*]}"
  done
} >"$stage/run-tests"
cat >"$stage/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in $(cat /modules/order); do insmod /modules/$module.ko; done
# The host's root, read-only, under a tmpfs overlay: the guest writes where it likes (/tmp,
# /run, /var/tmp) and nothing reaches the host.
mkdir -p /lower /upper
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose host /lower
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /root
mount -t proc proc /root/proc
mount -t sysfs sys /root/sys
mount -t cgroup2 cgroup2 /root/sys/fs/cgroup
mount -t devtmpfs dev /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /root/dev/pts
for dir in /root/tmp /root/dev/shm; do mount -t tmpfs -o mode=1777 tmpfs $dir; done
ip link set lo up
cp /run-tests /root/tmp/run-tests
echo "CODEPOD_VM_KERNEL=$(uname -r) CGROUP=$(awk '$2 == "/root/sys/fs/cgroup" { print $3 }' /proc/mounts)"
# switch_root, not chroot: a process in a chroot may not make a user namespace (bwrap must).
exec switch_root /root /bin/sh -c 'export HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8; cd /tmp; status=0; . /tmp/run-tests; echo CODEPOD_VM_EXIT=$status; sync; /bin/busybox poweroff -f'
EOF
chmod +x "$stage/init" "$stage/run-tests"
(cd "$stage" && find . | busybox cpio -o -H newc --quiet) >"$vm_dir/initramfs.cpio"

# --- run --------------------------------------------------------------------------------
say "running the sandbox tests in a cgroup v2 VM guest ($(cat "$kernel_stamp"), $how)"
log="$vm_dir/guest.log"
timeout 2400 qemu-system-x86_64 \
  "${accel[@]}" -smp 2 -m 4096 \
  -kernel "$vmlinuz" -initrd "$vm_dir/initramfs.cpio" \
  -append "console=ttyS0 quiet cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 panic=-1" \
  -virtfs local,path=/,mount_tag=host,security_model=passthrough,readonly=on,multidevs=remap \
  -nic none -display none -serial stdio -monitor none -no-reboot </dev/null | tr -d '\r' | tee "$log"
grep -q "CGROUP=cgroup2$" "$log" || die "the guest did not boot with cgroup v2 (see $log)"
grep -q "^CODEPOD_VM_EXIT=0" "$log" || die "the sandbox tests failed in the cgroup v2 guest (see $log)"
passed=$(awk '/^test result: ok\./ { sum += $4 } END { print sum + 0 }' "$log")
say "cgroup v2 guest: $passed tests passed"
