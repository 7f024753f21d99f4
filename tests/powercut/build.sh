#!/usr/bin/env bash
# Builds what the power-cut VM boots, all under OUT (target/powercut):
#   OUT/vmlinuz        Debian's cloud kernel, unpacked from its package (not installed)
#   OUT/initramfs.gz   BusyBox (static, from busybox-static, unpacked), the static
#                      minftpd given as $1, the modules for virtio-blk/-net and vfat,
#                      tests/powercut/init as /init
# Packages are fetched with `apt-get download` once and kept in OUT/debs.
set -euo pipefail
bin=${1:?usage: build.sh STATIC-MINFTPD [OUT]}
out=${2:-target/powercut}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)

# One package by name into OUT/debs (apt-get download writes to the cwd).
fetch() {
  local pkg=$1
  ls "$out/debs/${pkg}"_*.deb >/dev/null 2>&1 && return 0
  # A machine that never ran apt-get update has no package lists: update once.
  (cd "$out/debs" && { apt-get download "$pkg" || { apt-get update -qq && apt-get download "$pkg"; }; } 2>&1 |
    grep -v -e '^Get:' -e '^Fetched' -e 'unsandboxed' >&2 || true)
  ls "$out/debs/${pkg}"_*.deb >/dev/null 2>&1 || { echo "build.sh: apt-get download $pkg failed" >&2; exit 1; }
}

# The cloud kernel: the meta package names the versioned image package.
fetch linux-image-cloud-amd64
image_pkg=$(dpkg-deb -f "$out"/debs/linux-image-cloud-amd64_*.deb Depends | grep -o 'linux-image-[0-9][^ ,]*' | head -n1)
[ -n "$image_pkg" ] || { echo "build.sh: linux-image-cloud-amd64 names no kernel image" >&2; exit 1; }
fetch "$image_pkg"
fetch busybox-static

kdir=$out/kernel
if [ ! -d "$kdir/boot" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir"
  dpkg -x "$out/debs/${image_pkg}"_*.deb "$kdir"
fi
kver=$(ls "$kdir/lib/modules" | head -n1)
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"
# The package has no modules.dep (its postinst runs depmod): make one.
[ -s "$kdir/lib/modules/$kver/modules.dep" ] || depmod -b "$kdir" "$kver"

bbdir=$out/busybox
if [ ! -x "$bbdir/bin/busybox" ]; then
  rm -rf "$bbdir" && mkdir -p "$bbdir"
  dpkg -x "$out"/debs/busybox-static_*.deb "$bbdir"
fi

# Load order: modules.dep lists each module's dependencies, all of them, the
# one needed last first (as modprobe reads it), so load them in reverse.
# ext4 is built in on this kernel; were it a module, it would be listed here.
wanted="virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii nls_utf8"
dep=$kdir/lib/modules/$kver/modules.dep
order=()
add_module() {
  local path=$1 m
  for m in "${order[@]:-}"; do [ "$m" = "$path" ] && return 0; done
  order+=("$path")
}
for name in $wanted; do
  if grep -qE "/$name\.ko$" "$kdir/lib/modules/$kver/modules.builtin"; then continue; fi
  line=$(grep -E "(^|/)$name\.ko:" "$dep" || true)
  [ -n "$line" ] || { echo "build.sh: module $name is neither built in nor in modules.dep" >&2; exit 1; }
  read -r -a deps <<<"${line#*:}"
  for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_module "${deps[i]}"; done
  add_module "${line%%:*}"
done

root=$out/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,srv,tmp,lib/modules}
cp "$bbdir/bin/busybox" "$root/bin/busybox"
cp "$bin" "$root/sbin/minftpd"
: >"$root/lib/modules/order"
for path in "${order[@]}"; do
  cp "$kdir/lib/modules/$kver/$path" "$root/lib/modules/"
  basename "$path" >>"$root/lib/modules/order"
done
cp "$here/init" "$root/init"
chmod 755 "$root/init"
printf '%s\n' 'root:x:0:0:root:/:/bin/sh' 'ftp:x:100:100:ftp:/srv:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'ftp:x:100:' >"$root/etc/group"
# The client's account: password "powercut", its home the whole disk.
printf 'pc:%s:/:rw\n' "$(openssl passwd -6 -salt powercut powercut)" >"$root/etc/minftpd.users"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out/initramfs.gz"
echo "build.sh: kernel $kver, modules: $(tr '\n' ' ' <"$root/lib/modules/order")"
