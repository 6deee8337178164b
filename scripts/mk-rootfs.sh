#!/usr/bin/env bash
# mk-rootfs.sh DEST: a minimal busybox root filesystem for tests and the demo.
#
# Uses Debian's statically linked busybox (package busybox-static), so the rootfs needs no
# libraries. Idempotent: running it again over an existing DEST repairs it in place.
# Set BUSYBOX=/path/to/static/busybox to use another binary (no package check then).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi
dest=$1

if [ -n "${BUSYBOX:-}" ]; then
    busybox=$BUSYBOX
else
    busybox=/bin/busybox
    status=$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)
    if [ "$status" != "install ok installed" ] || [ ! -x "$busybox" ]; then
        echo "mk-rootfs: busybox-static is not installed;" \
            "install busybox-static: apt-get install -y busybox-static" >&2
        exit 1
    fi
fi
if [ ! -x "$busybox" ]; then
    echo "mk-rootfs: $busybox is not an executable file" >&2
    exit 1
fi

mkdir -p "$dest"
cd "$dest"
mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev tmp root run var home/zone
chmod 1777 tmp
chmod 0700 root

# Copy to a temporary name then rename: works even while a container runs the old binary.
cp "$busybox" bin/.busybox.new
chmod 0755 bin/.busybox.new
mv -f bin/.busybox.new bin/busybox

# One applet per line, e.g. "usr/bin/awk". Every link points at the absolute /bin/busybox, which
# resolves inside the container. One python3 process makes all ~270 links (no fork per link).
applets=$("$busybox" --list-full)
if command -v python3 >/dev/null; then
    python3 - "$applets" <<'PY'
import os, sys
for a in sys.argv[1].split():
    if a == "bin/busybox":
        continue
    try:
        if os.readlink(a) == "/bin/busybox":
            continue
        os.unlink(a)
    except FileNotFoundError:
        pass
    except OSError:  # a regular file or directory in the way
        os.unlink(a)
    os.symlink("/bin/busybox", a)
PY
else
    for a in $applets; do
        [ "$a" = bin/busybox ] || ln -sfn /bin/busybox "$a"
    done
fi

cat >etc/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
zone:x:1000:1000:zone:/home/zone:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >etc/group <<'G'
root:x:0:
zone:x:1000:
nogroup:x:65534:
G
echo runz >etc/hostname
if [ "$(id -u)" -eq 0 ]; then
    chown 1000:1000 home/zone
fi
