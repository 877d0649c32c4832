# SPDX-License-Identifier: Apache-2.0
"""Build of the mixcomm Python package (metadata: pyproject.toml).

`pip install ./python` (from the repository root) runs CMake on the repository:
    cmake -S <repo> -B python/build/cmake -DMIXCOMM_BUILD_TESTS=OFF && cmake --build ... --target mixcomm
and ships the resulting libmixcomm.so inside the package (mixcomm/lib/libmixcomm.so); the
package is otherwise pure Python (ctypes, no extension module).

Environment:
  MIXCOMM_LIBRARY         a libmixcomm.so already built: nothing is built; the package records the
                          path and uses it at run time (MIXCOMM_LIBRARY set at run time wins)
  MIXCOMM_CMAKE_ARGS      extra CMake arguments (e.g. "-DCMAKE_CUDA_ARCHITECTURES=90;100")
  MIXCOMM_CMAKE_BUILD_DIR the CMake build folder (default python/build/cmake)
  MIXCOMM_SOURCE_DIR      the repository, when this folder is not inside it
  CMAKE_BUILD_PARALLEL_LEVEL  build jobs (default: all CPUs)
"""
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent


def _prebuilt():
    return os.environ.get("MIXCOMM_LIBRARY", "").strip()


def _repo_root():
    env = os.environ.get("MIXCOMM_SOURCE_DIR", "").strip()
    for cand in ([Path(env)] if env else []) + [HERE.parent]:
        if (cand / "CMakeLists.txt").is_file() and (cand / "include" / "mixcomm.h").is_file():
            return cand.resolve()
    return None


def _fail(msg):
    raise SystemExit("mixcomm: " + msg)


def _build_library():
    root = _repo_root()
    if root is None:
        _fail("cannot find the mixcomm repository (CMakeLists.txt and include/mixcomm.h) above "
              f"{HERE}: install from a checkout (pip install ./python), set MIXCOMM_SOURCE_DIR, "
              "or set MIXCOMM_LIBRARY to a built libmixcomm.so")
    cmake = shutil.which("cmake")
    if cmake is None:
        _fail("cmake (>= 3.24) is not on PATH: install it (apt-get install cmake, or pip install "
              "cmake), or build the library yourself and set MIXCOMM_LIBRARY")
    build_dir = Path(os.environ.get("MIXCOMM_CMAKE_BUILD_DIR", "").strip() or
                     HERE / "build" / "cmake")
    configure = [cmake, "-S", str(root), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                 "-DMIXCOMM_BUILD_TESTS=OFF"]
    nvcc = Path("/usr/local/cuda/bin/nvcc")
    if not os.environ.get("CUDACXX") and shutil.which("nvcc") is None and nvcc.is_file():
        configure.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    configure += shlex.split(os.environ.get("MIXCOMM_CMAKE_ARGS", ""))
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "").strip() or str(os.cpu_count() or 1)
    build = [cmake, "--build", str(build_dir), "--target", "mixcomm", "-j", jobs]
    for cmd in (configure, build):
        print("mixcomm:", " ".join(shlex.quote(c) for c in cmd), flush=True)
        try:
            subprocess.check_call(cmd)
        except subprocess.CalledProcessError as e:
            _fail(f"building libmixcomm failed ({e}); a CUDA toolkit with nvcc is needed, or set "
                  "MIXCOMM_LIBRARY to a built libmixcomm.so")
    lib = build_dir / "libmixcomm.so"
    if not lib.exists():
        _fail(f"the build did not produce {lib}")
    return lib.resolve()


class BuildPyWithLibrary(build_py):
    """build_py, then put libmixcomm.so (or the path of a prebuilt one) into the package."""

    def run(self):
        super().run()
        pkg = Path(self.build_lib) / "mixcomm"
        pkg.mkdir(parents=True, exist_ok=True)
        prebuilt = _prebuilt()
        if prebuilt:
            path = Path(prebuilt).expanduser().resolve()
            if not path.is_file():
                _fail(f"MIXCOMM_LIBRARY={prebuilt!r} is not a file")
            (pkg / "_build_config.py").write_text(
                "# Written by setup.py: MIXCOMM_LIBRARY at install time.\n"
                f"LIBRARY = {str(path)!r}\n")
            print(f"mixcomm: using the prebuilt {path} (nothing built)", flush=True)
            return
        lib = _build_library()
        dest = pkg / "lib"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, dest / "libmixcomm.so")
        print(f"mixcomm: shipping {lib} as mixcomm/lib/libmixcomm.so", flush=True)


class MixcommDistribution(Distribution):
    """A wheel holding libmixcomm.so is platform-specific although it has no extension."""

    def has_ext_modules(self):
        return not _prebuilt()


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=MixcommDistribution)
