#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CI of the ways users install and consume mixcomm (no GPU needed; called by .ci/run after
# scripts/test.sh, whose build folder it reuses):
#   0. ctest runs the suite of that build;
#   1. tools refuse absurd sizes and stop at the first failed write, within a time limit;
#   2. `cmake --install` into a temporary prefix, moved elsewhere afterwards (relocatable): no
#      path of the build or source tree in a RUNPATH or a CMake/pkg-config file; an out-of-tree
#      project builds against it through find_package (shared and static) and pkg-config, and
#      the example builds out of tree;
#   3. the repository consumed through add_subdirectory and FetchContent;
#   4. the Python package: sdist, then a wheel built from it by pip (isolated build), installed
#      into a fresh venv outside the repository and imported; both libraries and both GPU
#      architectures (plus PTX) inside; RUNPATHs relative to the package; the NVSHMEM plugin
#      loads against the nvidia-nvshmem-cu13 wheel.
# Prints the time of every step.
#   bash scripts/ci-packaging.sh            (MIXCOMM_BUILD_DIR: the build to install; default build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${MIXCOMM_BUILD_DIR:-$here/build}
work=$(mktemp -d /tmp/mixcomm-packaging-XXXXXX)
trap 'rm -rf "$work"' EXIT
export PATH=/usr/local/cuda/bin:$PATH
jobs=$(nproc)

step_start=0
passed=0
step() { step_start=$(date +%s); echo "== packaging: $*"; }
done_step() { passed=$((passed + 1)); echo "   ($(( $(date +%s) - step_start )) s)"; }
fail() { echo "ci-packaging: FAIL: $*" >&2; exit 1; }

command -v pkg-config >/dev/null || { apt-get update -qq && apt-get install -y -qq pkg-config >/dev/null; }
command -v readelf >/dev/null || fail "readelf (binutils) is needed"
[ -x "$build/mixcomm-info" ] || cmake -S "$here" -B "$build" >/dev/null
cmake --build "$build" -j"$jobs" >/dev/null

# RUNPATH/RPATH entries of an ELF file, one per line.
runpaths() { readelf -d "$1" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p' | tr ':' '\n'; }

# --------------------------------------------------------------------------------------------
step "ctest runs the suite"
ctest --test-dir "$build" -j"$jobs" --output-on-failure >"$work/ctest.log" 2>&1 ||
  { tail -40 "$work/ctest.log"; fail "ctest"; }
tail -3 "$work/ctest.log" | grep "tests passed"
done_step

# --------------------------------------------------------------------------------------------
step "tools: absurd sizes, full disk"
info=$build/mixcomm-info
set +e
timeout 10 "$info" --world-size 2147483647 --local-size 1 >"$work/out" 2>"$work/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "mixcomm-info --world-size 2147483647: exit $rc, expected 2"
[ ! -s "$work/out" ] && grep -q "at most" "$work/err" || fail "mixcomm-info did not refuse the size"
set +e
timeout 10 "$info" --world-size 16384 --local-size 16 --json >/dev/full 2>"$work/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "writing the output failed" "$work/err" ||
  fail "mixcomm-info > /dev/full: exit $rc, $(cat "$work/err")"
set +e
timeout 10 "$build/mixcomm-perf" --dry-run -n 2 -m FUSED_OPT_BYTES2_UC >/dev/null 2>"$work/err"; rc=$?
set -e
[ $rc -eq 2 ] || fail "mixcomm-perf --dry-run accepted FUSED_OPT_BYTES2_UC on one node"
done_step

# --------------------------------------------------------------------------------------------
step "cmake --install, moved prefix, find_package and pkg-config consumers"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
mv "$work/prefix" "$work/moved"   # nothing may depend on where it was installed
prefix=$work/moved
for f in include/mixcomm.h lib/libmixcomm.so lib/libmixcomm.a lib/cmake/mixcomm/mixcommConfig.cmake \
         lib/pkgconfig/mixcomm.pc lib/pkgconfig/mixcomm-static.pc bin/mixcomm-info bin/mixcomm-perf \
         share/doc/mixcomm/LICENSE; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done
plugin=0
[ -e "$prefix/lib/libmixcomm_nvshmem.so" ] && plugin=1
for f in "$prefix"/lib/*.so* "$prefix"/bin/*; do
  [ -L "$f" ] && continue
  while read -r p; do
    [ -z "$p" ] && continue
    case "$p" in
      '$ORIGIN'*) ;;
      *) fail "$f has RUNPATH entry '$p' (only \$ORIGIN-relative entries may be installed)" ;;
    esac
  done < <(runpaths "$f")
done
if grep -rl -e "$here" -e "$build" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then
  fail "installed CMake/pkg-config files name the source or build tree"
fi
cmake -S "$here/tests/packaging" -B "$work/fp" -DCMAKE_PREFIX_PATH="$prefix" >"$work/fp.log" 2>&1 ||
  { cat "$work/fp.log"; fail "find_package consumer: configure"; }
grep -q "NVSHMEM plugin: $([ $plugin = 1 ] && echo TRUE || echo FALSE)" "$work/fp.log" ||
  fail "find_package: mixcomm_NVSHMEM_PLUGIN does not match the installed tree"
cmake --build "$work/fp" -j"$jobs" >/dev/null
"$work/fp/consumer_shared"
"$work/fp/consumer_static"
for static in OFF ON; do
  cmake -S "$here/examples/c" -B "$work/ex-$static" -DCMAKE_PREFIX_PATH="$prefix" \
    -DMIXCOMM_EXAMPLE_STATIC=$static >/dev/null
  cmake --build "$work/ex-$static" -j"$jobs" >/dev/null
done
# Without a GPU the example must fail cleanly, saying why.
set +e
RANK=0 WORLD_SIZE=1 MASTER_PORT=29517 timeout 60 "$work/ex-ON/mixcomm-example" 2>"$work/err"; rc=$?
set -e
if [ $rc -ne 0 ]; then
  [ $rc -eq 1 ] && grep -q "GPU" "$work/err" || fail "example without a GPU: exit $rc: $(cat "$work/err")"
fi
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cflags="-std=c11 -Wall -Wextra -Werror"
# shellcheck disable=SC2046
cc $cflags -o "$work/pc-shared" "$here/tests/packaging/consumer.c" $(pkg-config --cflags --libs mixcomm) \
  -Wl,-rpath,"$(pkg-config --variable=libdir mixcomm)"
# shellcheck disable=SC2046
cc $cflags -o "$work/pc-static" "$here/tests/packaging/consumer.c" $(pkg-config --cflags --libs mixcomm-static)
# shellcheck disable=SC2046
cc $cflags -o "$work/pc-example" "$here/examples/c/fused_allreduce.c" $(pkg-config --cflags --libs mixcomm-static)
"$work/pc-shared"
"$work/pc-static"
needed=$(readelf -d "$work/pc-static")
if grep -q "libmixcomm" <<<"$needed"; then fail "mixcomm-static linked libmixcomm.so"; fi
unset PKG_CONFIG_PATH
done_step

# --------------------------------------------------------------------------------------------
for how in add_subdirectory FetchContent; do
  step "the repository through $how"
  # add_subdirectory: the parent chooses the CUDA architectures (and the build is shorter);
  # FetchContent: mixcomm's default.
  archs=()
  [ $how = add_subdirectory ] && archs=(-DCMAKE_CUDA_ARCHITECTURES=90-real)
  cmake -S "$here/tests/packaging" -B "$work/$how" -DMIXCOMM_CONSUME=$how "${archs[@]}" \
    -DMIXCOMM_SOURCE_DIR="$here" >"$work/$how.log" 2>&1 || { cat "$work/$how.log"; fail "$how: configure"; }
  cmake --build "$work/$how" -j"$jobs" >>"$work/$how.log" 2>&1 || { tail -30 "$work/$how.log"; fail "$how: build"; }
  "$work/$how/consumer_shared"
  "$work/$how/consumer_static"
  want="90-real;100-real;100-virtual"
  [ $how = add_subdirectory ] && want="90-real"
  grep -Eq "^CMAKE_CUDA_ARCHITECTURES:[A-Z]*=$want$" "$work/$how/CMakeCache.txt" ||
    fail "$how: CUDA architectures are not $want"
  # Not the top-level project: no tests, tools or examples of mixcomm's own.
  [ ! -e "$work/$how/mixcomm/mixcomm-tests" ] && [ ! -e "$work/$how/_deps/mixcomm-build/mixcomm-tests" ] ||
    fail "$how built mixcomm's tests"
  done_step
done

# --------------------------------------------------------------------------------------------
step "Python: tools venv (build, cuobjdump)"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q --disable-pip-version-check "build>=1" "nvidia-cuda-cuobjdump==13.5.37"
cuobjdump=$(find "$work/tools" -name cuobjdump -type f | head -1)
[ -x "$cuobjdump" ] || fail "no cuobjdump in nvidia-cuda-cuobjdump"
done_step

step "Python: sdist, then a wheel built from it (isolated)"
t0=$(date +%s)
"$work/tools/bin/python" -m build --sdist --outdir "$work/dist" "$here" >"$work/sdist.log" 2>&1 ||
  { tail -30 "$work/sdist.log"; fail "sdist"; }
sdist=$(ls "$work"/dist/mixcomm-*.tar.gz)
tar -tzf "$sdist" >"$work/sdist.list"
for f in CMakeLists.txt include/mixcomm.h src/core/status.c src/nvshmem_plugin/internode.cu cmake/wheel.cmake \
         python/mixcomm/__init__.py LICENSE; do
  grep -q "^mixcomm-[0-9.]*/$f$" "$work/sdist.list" || fail "the sdist lacks $f"
done
t1=$(date +%s)
(cd "$work" && python3 -m pip wheel -q --disable-pip-version-check --no-deps -w "$work/dist" "$sdist") \
  >"$work/wheel.log" 2>&1 || { tail -40 "$work/wheel.log"; fail "wheel from the sdist"; }
t2=$(date +%s)
wheel=$(ls "$work"/dist/mixcomm-*.whl)
echo "   sdist $(( t1 - t0 )) s, $(du -k "$sdist" | cut -f1) KiB; wheel $(( t2 - t1 )) s, $(du -k "$wheel" | cut -f1) KiB: $(basename "$wheel")"
done_step

step "Python: the wheel's contents"
mkdir "$work/whl"
python3 -m zipfile -e "$wheel" "$work/whl"
lib=$work/whl/mixcomm/lib
[ -f "$lib/libmixcomm.so" ] || fail "the wheel lacks mixcomm/lib/libmixcomm.so"
[ -f "$lib/libmixcomm_nvshmem.so" ] || fail "the wheel lacks the NVSHMEM plugin"
for so in "$lib/libmixcomm.so" "$lib/libmixcomm_nvshmem.so"; do
  elfs=$("$cuobjdump" --list-elf "$so")
  for arch in sm_90 sm_100; do
    grep -q "\.$arch\.cubin" <<<"$elfs" || fail "$(basename "$so") has no $arch kernels: $elfs"
  done
  while read -r p; do
    [ -z "$p" ] && continue
    case "$p" in
      '$ORIGIN'*) ;;
      *) fail "$(basename "$so") has RUNPATH entry '$p' (a build path)" ;;
    esac
  done < <(runpaths "$so")
done
# (Outputs are captured first: grep -q closing a pipe early would fail the pipeline.)
ptx=$("$cuobjdump" --list-ptx "$lib/libmixcomm.so")
grep -q "sm_100\.ptx" <<<"$ptx" || fail "libmixcomm.so has no compute_100 PTX for newer GPUs: $ptx"
plugin_paths=$(runpaths "$lib/libmixcomm_nvshmem.so")
grep -qx '$ORIGIN/../../nvidia/nvshmem/lib' <<<"$plugin_paths" ||
  fail "the plugin does not look for NVSHMEM in the nvidia-nvshmem-cu13 wheel: $plugin_paths"
done_step

step "Python: fresh venv outside the repository, import"
python3 -m venv "$work/venv"
(cd "$work" && "$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel[nvshmem]")
(cd "$work" && env -u PYTHONPATH -u MIXCOMM_LIBRARY -u LD_LIBRARY_PATH "$work/venv/bin/python" - <<'EOF'
import ctypes, os, sys
import mixcomm
from mixcomm import _lib
path = _lib.library_path()
pkg = os.path.dirname(mixcomm.__file__)
assert path == os.path.join(pkg, "lib", "libmixcomm.so"), path
from importlib.metadata import version
assert ".".join(map(str, _lib.version_tuple())) == version("mixcomm"), version("mixcomm")
t = _lib.resolve_topology(0, 8, 0, 8, 0, 1, local_tp_size=4)
assert (t.tp_size, t.dp_size) == (4, 2), t.as_dict()
# The plugin resolves libnvshmem_host.so.3 from the nvidia-nvshmem-cu13 wheel by its RUNPATH.
ctypes.CDLL(os.path.join(pkg, "lib", "libmixcomm_nvshmem.so"))
print(f"   import ok: {path} (version {_lib.version_tuple()}), plugin loads")
EOF
) || fail "the installed package does not work"
done_step
echo "ci-packaging: $passed passed, 0 failed"
