#!/usr/bin/env bash
# make test-powercut: the power-cut test of every configuration, one line each.
#   run.sh STATIC-MINFTPD CUTS [OUT]
# With fsync_uploads = yes it fails on any lost upload (and on ext4 any partial one); with no it
# only shows them (losses are expected there: that is what `no` means).
set -euo pipefail
bin=${1:?usage: run.sh STATIC-MINFTPD CUTS [OUT]}
cuts=${2:-20}
out=${3:-target/powercut}
here=$(dirname "$0")
started=$(date +%s)
"$here/build.sh" "$bin" "$out"
rm -f "$out/accel" # KVM or TCG: found out again each run
status=0
for fs in ext4 vfat; do
  for fsync in no yes; do
    # vfat renames in steps (a new entry, then the file attached to it): the
    # upload in flight at a cut may leave its name empty or broken, so there
    # only "0 lost" is asserted; ext4 must show 0 lost and 0 partial.
    strict=()
    [ "$fsync" = yes ] && strict=(--strict)
    [ "$fsync" = yes ] && [ "$fs" = vfat ] && strict=(--strict-lost)
    python3 "$here/powercut.py" --dir "$out" --fs "$fs" --fsync "$fsync" --cuts "$cuts" \
      ${POWERCUT_ARGS:-} "${strict[@]}" || status=1
  done
done
echo "powercut: $((4 * cuts)) cuts in $(($(date +%s) - started)) s"
exit $status
