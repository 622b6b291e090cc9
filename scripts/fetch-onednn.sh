#!/usr/bin/env bash
# Puts oneDNN 3.2 (Intel's official GNU-OpenMP build, Apache-2.0) under .deps/onednn so the
# engine builds against it instead of Debian's oneDNN 2.6: 3.x has brgemm convolution kernels
# for AVX2 that 2.6 lacks (1.4-2x faster convolutions measured on an AVX2-only EPYC). Intel ships
# this build only as Python wheels; they are plain zip archives holding include/ and lib/, and
# nothing of Python is used. The files are pinned by SHA-256.
#
# Why still 3.2: it is the newest GNU-OpenMP build Intel publishes (onednn-cpu-gomp ends at
# 2023.2.0). The newer `onednn` wheels (2024.2.1, 2025.3.0 and 2026.1.0 = oneDNN 3.13.2 checked)
# are SYCL builds: they link libtbb, libsycl and Intel's compiler runtime (~220 MB more), and the
# CPU engine of 2026.1.0 is SYCL's: dnnl_engine_create(cpu) fails ("SYCL cpu devices queried but
# not found") without Intel's OpenCL CPU runtime, and even then oneDNN would run on TBB beside this shim's
# OpenMP pool (two pools on two cores). A newer oneDNN means building it from source with
# -DONEDNN_CPU_RUNTIME=OMP (about 1,300 C++ files; too slow to fit in setup on a 2-core machine).
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
# The two wheels, by PyPI name, and their pinned SHA-256. pip fetches them from whatever index the
# machine is configured for (the script names no host).
wheels=(
    "onednn-cpu-gomp==2023.2.0 2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb"
    "onednn-devel-cpu-gomp==2023.2.0 9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fallback() {
    echo "oneDNN: $1; building against the system oneDNN (slower convolutions)" >&2
    exit 0
}
pip=""
for py in python3 python; do
    if command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1; then pip="$py -m pip"; break; fi
done
[ -n "$pip" ] || fallback "pip missing"
command -v unzip >/dev/null || fallback "unzip missing"
for w in "${wheels[@]}"; do
    set -- $w
    echo "oneDNN: downloading $1" >&2
    rm -rf "$tmp/dl"
    $pip download --quiet --no-deps --only-binary=:all: --platform manylinux1_x86_64 -d "$tmp/dl" "$1" >&2 \
        || fallback "pip download of $1 failed"
    file=$(ls "$tmp"/dl/*.whl 2>/dev/null | head -n 1)
    [ -n "$file" ] || fallback "pip download of $1 gave no wheel"
    echo "$2  $file" | sha256sum -c --status || fallback "checksum mismatch for $(basename "$file")"
    unzip -q -o "$file" -d "$tmp/x" || fallback "cannot unpack $(basename "$file")"
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
