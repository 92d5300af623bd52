"""The house every family stands on: runtime facts, threads, dispatch, errors, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import kernkit
from kernkit import _dispatch


def test_info_reports_the_build() -> None:
    facts = kernkit.info()
    for key in ("version", "compiler", "simd", "simd_built", "openmp", "threads", "cuda_built",
                "cuda_devices"):
        assert key in facts
    assert facts["version"] == kernkit.__version__
    assert facts["simd"] in facts["simd_built"].split(",")
    assert facts["simd"] in ("baseline", "avx2", "avx512")
    assert facts["threads"] >= 1
    assert isinstance(facts["cpu"], str) and facts["cpu"]
    if os.path.exists("/proc/cpuinfo"):  # the model name Linux reports, as benchmarks record it
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            assert facts["cpu"].startswith(names[0])
    assert isinstance(kernkit.cuda_available(), bool)
    if not facts["cuda_built"]:
        assert kernkit.cuda_available() is False


def test_set_num_threads_roundtrip() -> None:
    before = kernkit.get_num_threads()
    try:
        kernkit.set_num_threads(1)
        assert kernkit.get_num_threads() == 1
        with pytest.raises(TypeError, match="'n'"):
            kernkit.set_num_threads(1.5)  # type: ignore[arg-type]
    finally:
        kernkit.set_num_threads(before if before != os.cpu_count() else 0)


def test_set_num_threads_zero_restores_the_default() -> None:
    """n <= 0 restores OpenMP's default in the calling thread too (OpenMP's limit is per thread:
    resetting kernkit's own setting alone left this thread at the last n). A fresh process, so the
    default is the library's own, whatever earlier tests set."""
    code = ("import kernkit, concurrent.futures as cf; d = kernkit.get_num_threads(); "
            "kernkit.set_num_threads(1); one = kernkit.get_num_threads(); kernkit.set_num_threads(0); "
            "print(d, one, kernkit.get_num_threads(), cf.ThreadPoolExecutor(1).submit(kernkit.get_num_threads).result())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    d, one, back, other = (int(v) for v in out)
    assert one == 1 and back == d and other == d


def test_threadpoolctl_sees_and_limits_kernkit() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not kernkit.info()["openmp"]:
        pytest.skip("built without OpenMP")
    libs = threadpoolctl.threadpool_info()
    assert any(lib["user_api"] == "openmp" for lib in libs)
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert kernkit.get_num_threads() == 1
        # The limited call still computes the same thing.
        x = np.linspace(0.1, 50, 100_000)
        limited = kernkit.log_iv(2.5, x)
    np.testing.assert_array_equal(limited, kernkit.log_iv(2.5, x))


class FakeCudaArray:
    """Just enough of a CUDA array (DLPack device type 2) to reach the device dispatch."""

    dtype = np.dtype("float32")
    shape = (3,)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, 0)


def test_device_detection() -> None:
    assert _dispatch.device_of(np.ones(2)) == _dispatch.CPU
    assert _dispatch.device_of(1.5) is None
    assert repr(_dispatch.device_of(FakeCudaArray())) == "cuda:0"


def test_torch_device_and_address() -> None:
    torch = pytest.importorskip("torch")
    t = torch.arange(6.0).reshape(2, 3)
    assert _dispatch.device_of(t) == _dispatch.CPU  # the fast path, without __dlpack_device__
    assert _dispatch.device_of(torch.nn.Parameter(t)) == _dispatch.CPU
    assert _dispatch.device_pointer(t) == t.data_ptr()
    assert _dispatch.device_pointer(t[1]) == t.data_ptr() + 3 * t.element_size()
    assert _dispatch.device_pointer(np.ones(2)) is None
    with _dispatch.device_guard(t):  # a CPU tensor: nothing to switch
        pass


def test_mixed_devices_are_an_error_naming_both() -> None:
    with pytest.raises(ValueError, match=r"'x' is on cpu but 'v' is on cuda:0"):
        _dispatch.common_device({"v": FakeCudaArray(), "x": np.ones(3)})


@pytest.mark.skipif(kernkit.info()["cuda_built"], reason="checks the CPU-only build's message")
def test_cuda_array_on_cpu_build_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="no CUDA support"):
        kernkit.log_iv(FakeCudaArray(), FakeCudaArray())
    with pytest.raises(ValueError, match="never copies between devices"):
        kernkit.log_iv(np.ones(3), FakeCudaArray())


def test_check_float_dtype_names_the_argument() -> None:
    _dispatch.check_float_dtype("w", np.ones(2, np.float32))
    with pytest.raises(TypeError, match="'w' must be float32 or float64, got int64"):
        _dispatch.check_float_dtype("w", np.ones(2, np.int64))


def test_ufunc_wrapper_is_the_numpy_ufunc() -> None:
    uf = kernkit.log_iv.ufunc
    assert isinstance(uf, np.ufunc)
    assert (kernkit.log_iv.nin, kernkit.log_iv.nout) == (2, 1)
    assert kernkit.log_iv.types == ["ff->f", "dd->d"]
    x = np.linspace(0.5, 5, 7)
    np.testing.assert_array_equal(kernkit.log_iv(1.0, x), uf(1.0, x))
    assert "log I_v(x)" in (kernkit.log_iv.__doc__ or "")


def run_cli(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "kernkit", *args], capture_output=True, text=True,
                         check=True)
    return res.stdout


def test_cli_info_and_cmake_dir() -> None:
    out = run_cli("info")
    assert "simd" in out and "threads" in out
    cmake_dir = run_cli("--cmake-dir").strip()
    assert os.path.isfile(os.path.join(cmake_dir, "kernkitConfig.cmake"))
    assert os.path.isfile(os.path.join(cmake_dir, "kernkitConfigVersion.cmake"))


def test_cli_bench_out_must_be_a_folder(tmp_path: object) -> None:
    """Checked before the benchmark runs (a file there used to fail after it, losing the table)."""
    f = os.path.join(str(tmp_path), "afile")
    open(f, "w").close()
    r = subprocess.run([sys.executable, "-m", "kernkit", "bench", "--quick", "--out", f],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a folder" in r.stderr


def test_cli_bench_quick_writes_results(tmp_path: object) -> None:
    pytest.importorskip("scipy")
    out = run_cli("bench", "--quick", "--out", str(tmp_path))
    assert "| special | log_iv" in out
    assert os.path.isfile(os.path.join(str(tmp_path), "bench_quick.json"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("family", ["special", "rational", "fft", "toeplitz", "hashattn", "quant"])
def test_kernels_read_nothing_past_their_inputs(family, dtype):
    """Every input array ends right before an unreadable page (tests/python/guarded_run.py): the
    CPU kernels, with their vector tails and masked loads, must not read past any of them, and
    give the same bits as on ordinary arrays. In a subprocess, so a fault fails this test only."""
    script = os.path.join(os.path.dirname(__file__), "guarded_run.py")
    r = subprocess.run([sys.executable, script, family, dtype], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}: {r.stdout[-1000:]} {r.stderr[-2000:]}"


def test_sass_loops_counts_the_main_loop(tmp_path: object) -> None:
    """bench/gpu/sass_loops.py on text in cuobjdump -sass's format: per kernel all instructions and
    the FP64 ones, and those of the longest backward branch's span (predicated and suffixed
    opcodes counted by their base name; a forward branch is not a loop)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ins = ["MOV R1, c[0x0][0x28]", "@P0 BRA 0x0050", "LDG.E R2, desc[UR4][R4.64]",   # 0x00-0x20
           "DFMA R6, R2, R2, R6", "@!P1 DADD R8, R6, R8", "DMUL.RP R8, R8, R2",         # 0x30-0x50
           "IADD3 R4, R4, 0x4, RZ", "@P2 BRA 0x0030", "EXIT"]                            # 0x60-0x80
    body = "\n".join(f"        /*{16 * i:04x}*/                   {t} ;   /* 0x0 */" for i, t in enumerate(ins))
    sass = ("\tcode for sm_90\n\t\tFunction : _Z4loopPf\n\t.headerflags @\"EF_CUDA_SM90\"\n" + body +
            "\n\t\tFunction : _Z4flatPf\n        /*0000*/   DADD R2, R2, R2 ;\n        /*0010*/   EXIT ;\n")
    src = os.path.join(str(tmp_path), "k.sass")
    with open(src, "w") as fh:
        fh.write(sass)
    res = subprocess.run([sys.executable, os.path.join(root, "bench", "gpu", "sass_loops.py"), "--sass", src],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[2] == "| `_Z4loopPf` | 9 | 3 | 5 | 3 |"  # the loop: 0x30..0x70
    assert lines[3] == "| `_Z4flatPf` | 2 | 1 | 0 | 0 |"
    res = subprocess.run([sys.executable, os.path.join(root, "bench", "gpu", "sass_loops.py"), "--sass", src,
                          "--match", "flat"], capture_output=True, text=True)
    assert res.stdout.splitlines()[2:] == ["| `_Z4flatPf` | 2 | 1 | 0 | 0 |"]


def test_gpu_profile_summary_reads_ncu_csv(tmp_path: object) -> None:
    """bench/gpu/profile_summary.py on lines in the format ncu --csv writes (the GPU run's profile
    step): one row per kernel ID, nanoseconds to microseconds, thousands separators, PyTorch's own
    kernels left out."""
    import json

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    k = ('"{id}","1","python3.12","127.0.0.1","void quant::<unnamed>::lut_gemv_split<float, 4>(const unsigned int *)",'
         '"1","7","(256, 1, 1)","(512, 1, 1)","0","9.0","{sec}","{metric}","{unit}","{value}",')
    lines = ['"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size",'
             '"Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value","Rule Name"',
             "==PROF== Connected to process 1",
             k.format(id=0, sec="GPU Speed Of Light Throughput", metric="Duration", unit="ns", value="17,568"),
             k.format(id=0, sec="GPU Speed Of Light Throughput", metric="DRAM Throughput", unit="%", value="11.23"),
             k.format(id=0, sec="Launch Statistics", metric="Registers Per Thread", unit="register/thread", value="80"),
             k.format(id=0, sec="Occupancy", metric="Achieved Occupancy", unit="%", value="29.86"),
             k.format(id=0, sec="Command line profiler metrics", unit="",
                      metric="smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio", value="6.25"),
             k.format(id=0, sec="Command line profiler metrics", unit="",
                      metric="smsp__average_warps_issue_stalled_wait_per_issue_active.ratio", value="1.5"),
             k.format(id=0, sec="Command line profiler metrics", unit="",
                      metric="smsp__average_warps_issue_stalled_math_pipe_throttle_per_issue_active.ratio", value="0.25"),
             k.format(id=0, sec="Command line profiler metrics", unit="",
                      metric="smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio", value="0.125"),
             k.replace("quant::<unnamed>::lut_gemv_split<float, 4>", "at::vectorized_elementwise_kernel<4>").format(
                 id=1, sec="GPU Speed Of Light Throughput", metric="Duration", unit="ns", value="2,368"),
             k.replace("lut_gemv_split<float, 4>", "lut_gemv_split<double, 8>").format(
                 id=2, sec="GPU Speed Of Light Throughput", metric="Duration", unit="us", value="1,250.5")]
    src = os.path.join(str(tmp_path), "profile.csv")
    with open(src, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    res = subprocess.run([sys.executable, os.path.join(root, "bench", "gpu", "profile_summary.py"),
                          f"run A={src}", "--out", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    with open(os.path.join(str(tmp_path), "profile_gpu.json")) as fh:
        rows = json.load(fh)
    assert [r["kernel"] for r in rows] == ["lut_gemv_split<float, 4>", "lut_gemv_split<double, 8>"]
    assert rows[0] == {"run": "run A", "kernel": "lut_gemv_split<float, 4>", "grid": "(512, 1, 1)",
                       "block": "(256, 1, 1)", "us": 17.568, "DRAM %": 11.23, "regs": 80.0,
                       "occupancy %": 29.86, "stalls": {"long_scoreboard": 6.25, "wait": 1.5,
                                                        "math_pipe_throttle": 0.25, "barrier": 0.125}}
    assert rows[1]["us"] == 1250.5 and "stalls" not in rows[1]
    md = open(os.path.join(str(tmp_path), "profile_gpu.md")).read()
    assert "| run A | `lut_gemv_split<float, 4>` |" in md
    assert "| long_scoreboard 6.2, wait 1.5, math_pipe_throttle 0.2 |" in md  # the three largest
