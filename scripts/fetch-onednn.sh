#!/usr/bin/env bash
# Puts oneDNN 3.2 (Intel's official GNU-OpenMP build, Apache-2.0) under .deps/onednn so the
# engine builds against it instead of Debian's oneDNN 2.6: 3.x has brgemm convolution kernels
# for AVX2 that 2.6 lacks (1.4-2x faster convolutions measured on an AVX2-only EPYC). Intel ships
# this build only as Python wheels; they are plain zip archives holding include/ and lib/, and
# nothing of Python is used. The files are pinned by SHA-256.
#
# x86-64 Linux only; elsewhere (or offline) the build falls back to the system's oneDNN, which
# the shim supports too (2.x or 3.x). Exits 0 either way; prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.deps/onednn
version=3.2.0
stamp="$dest/VERSION"
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "oneDNN: not x86-64 Linux; using the system oneDNN" >&2
    exit 0
fi
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$version" ] && [ -f "$dest/lib/libdnnl.so.3" ]; then
    exit 0
fi
base=https://files.pythonhosted.org/packages
wheels=(
    "$base/65/b4/792e6d3ef02a0e14fdc0392bd378dc78f3c8356e6a40fda8c0b9366628a1/onednn_cpu_gomp-2023.2.0-py2.py3-none-manylinux1_x86_64.whl 2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb"
    "$base/d4/26/e1f06fc4810583d892831817e3217d32be475dd740c86c0b4058cec9d172/onednn_devel_cpu_gomp-2023.2.0-py2.py3-none-manylinux1_x86_64.whl 9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fallback() {
    echo "oneDNN: $1; building against the system oneDNN (slower convolutions)" >&2
    exit 0
}
command -v curl >/dev/null && command -v unzip >/dev/null || fallback "curl or unzip missing"
for w in "${wheels[@]}"; do
    set -- $w
    file="$tmp/$(basename "$1")"
    echo "oneDNN: downloading $(basename "$1")" >&2
    curl -fsSL --retry 3 -o "$file" "$1" || fallback "download of $(basename "$1") failed"
    echo "$2  $file" | sha256sum -c --status || fallback "checksum mismatch for $(basename "$1")"
    unzip -q -o "$file" -d "$tmp/x" || fallback "cannot unpack $(basename "$1")"
done
stage="$tmp/onednn"
mkdir -p "$stage/lib"
cp -r "$tmp"/x/onednn_devel_cpu_gomp-*.data/data/include "$stage/include"
# The wheel stores libdnnl.so, .so.3 and .so.3.2 as three copies; keep one and link the others.
cp "$tmp"/x/onednn_cpu_gomp-*.data/data/lib/libdnnl.so.3.2 "$stage/lib/"
ln -s libdnnl.so.3.2 "$stage/lib/libdnnl.so.3"
ln -s libdnnl.so.3 "$stage/lib/libdnnl.so"
cp "$tmp"/x/onednn_cpu_gomp-*.data/data/share/doc/*/LICENSE "$stage/" 2>/dev/null || true
echo "$version" > "$stage/VERSION"
mkdir -p .deps
rm -rf "$dest"
mv "$stage" "$dest"
# Objects compiled against another oneDNN's headers must be rebuilt.
touch Sources/CDeciKernels/*.c
echo "oneDNN: $version installed in $dest" >&2
