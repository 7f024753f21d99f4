#!/usr/bin/env bash
# `make test-cross`: runs a cross-built minftpd under qemu-user and checks that
# it serves a session: --help, an anonymous LIST and a binary upload (the
# splice(2) path, compared with what was sent) with curl on 127.0.0.1, and
# with `tls` also an FTPS LIST (AUTH TLS, PROT P) under a fresh self-signed
# certificate, which runs ring's aarch64 assembly end to end.
#
# usage: tests/qemu-smoke.sh QEMU BINARY [tls]
set -euo pipefail
qemu=$1 bin=$2 tls=${3:-}

for tool in "$qemu" curl; do
  command -v "$tool" >/dev/null || { echo "qemu-smoke: $tool is missing" >&2; exit 1; }
done
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$qemu" "$bin" --help | grep -q '^Usage: minftpd' || { echo "qemu-smoke: --help failed" >&2; exit 1; }

mkdir "$dir/root"
echo hello > "$dir/root/hello.txt"
mkdir -m 0777 "$dir/root/up"
head -c 3000001 /dev/urandom > "$dir/upload.bin"
opts=(-c /dev/null -A -w -o anon_upload_dir=/up -l 127.0.0.1:0 -r "$dir/root")
if [ -n "$tls" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
  opts+=(-o tls=yes -o "tls_cert_file=$dir/cert.pem" -o "tls_key_file=$dir/key.pem")
fi
"$qemu" "$bin" "${opts[@]}" 2> "$dir/log" &
pid=$!

# The server logs its address ("listening on 127.0.0.1:PORT"); wait up to 20 s.
addr=
for _ in $(seq 200); do
  addr=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$dir/log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$addr" ] || { echo "qemu-smoke: no listening line" >&2; cat "$dir/log" >&2; exit 1; }

list=$(curl -sS --max-time 30 "ftp://$addr/")
grep -q 'hello.txt' <<<"$list" || { echo "qemu-smoke: LIST lacks hello.txt: $list" >&2; exit 1; }
curl -sS --max-time 60 -T "$dir/upload.bin" "ftp://$addr/up/upload.bin"
cmp -s "$dir/upload.bin" "$dir/root/up/upload.bin" || { echo "qemu-smoke: the upload differs" >&2; exit 1; }
echo "qemu-smoke: $bin under $qemu: --help, an anonymous LIST and an upload on $addr"
if [ -n "$tls" ]; then
  list=$(curl -sS --max-time 30 --ssl-reqd -k -v "ftp://$addr/" 2>"$dir/curl")
  grep -q "PROT P" "$dir/curl" || { echo "qemu-smoke: curl sent no PROT P" >&2; exit 1; }
  grep -q 'hello.txt' <<<"$list" || { echo "qemu-smoke: FTPS LIST lacks hello.txt: $list" >&2; exit 1; }
  echo "qemu-smoke: and an FTPS LIST (AUTH TLS, PROT P)"
fi
