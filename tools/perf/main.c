/* SPDX-License-Identifier: Apache-2.0
 *
 * mixcomm-perf: bandwidth and latency of mixcomm's collectives, in the style of nccl-tests.
 *
 *   mixcomm-perf [-n RANKS] [--local-size L] [-d bf16] [-o OP|all] [-m MODE|all]
 *                [-b 1K] [-e 16M] [-f 2] [-w 10] [-i 50] [-G [-g 10]] [--json FILE] ...
 *
 * It forks the ranks itself (or, with RANK and WORLD_SIZE in the environment, runs as that rank
 * of a job started by a launcher such as torchrun), creates a handler through the TCP bootstrap
 * and, for every (operation, size, mode): runs one checked call against the float64 reference
 * (tools/common/refdata.h), warms up, times `iters` calls one by one with CUDA event pairs (or
 * replays of a CUDA graph of K calls), takes each rank's median and reports the largest median
 * over the ranks. Rank 0 prints an nccl-tests-like table and can write the same as JSON.
 *
 * Definitions (also printed in the output header and in docs/benchmarks.md).
 *   S      = the size column: a rank's input bytes for ALLREDUCE, ALLGATHER and
 *            ALLREDUCE_ALLGATHER; a rank's OUTPUT bytes for REDUCESCATTER and
 *            REDUCESCATTER_ALLREDUCE (their input is dp*S). Rows = S / row_bytes; a size under
 *            one row is one row of S bytes. count = S / element size.
 *   t      = time_us: max over ranks of each rank's median time of one call.
 *   algbw  = in / t, in = a rank's input bytes (S, or dp*S for the reduce-scatter types).
 *   busbw  = (2(tp-1)/tp + (dp-1)) * S / t, the sum of nccl-tests' bus factors of the phases:
 *            AR (dp=1): 2(n-1)/n * S;  AG, RS (tp=1): (n-1)/n * n*S (n*S = all the data);
 *            AR+AG: TP all-reduce of S plus DP all-gather of dp*S; RS+AR: DP reduce-scatter of
 *            dp*S plus TP all-reduce of S.
 *   mem    = HBM bytes the kernels of ALL ranks must move for one call when every rank runs on
 *            this one GPU (single node only; fused unicast modes only), from the protocol in
 *            src/kernels/intranode.cu. With L local ranks, Lt = local TP, in/out as above
 *            (out = dp*S for the gather types, S otherwise), per rank:
 *              FUSED_OPT_WAITS_UC  (one-shot): in + out + 3*(L-1)*S
 *              FUSED_OPT_BYTES1_UC (two-shot): in + out + 3*(L+Lt-2)*S/Lt
 *            (3 = the write into a peer's workspace, the peer's read, and its re-poisoning of
 *            the consumed row), times L ranks. mem_GBps = mem / t; frac_copy = mem_GBps / the
 *            device copy bandwidth measured in the same run.
 *   lat_x_rtt = t / (cross-process flag round trip measured in the same run), smallest size only.
 *   floor_us  = launch floor of the call's own launch shape (CTAs x threads), measured in the
 *            same run on every rank at once: a graph of kernels of that shape whose threads
 *            load and store 16 bytes each (tools/perf/launch_floor.cu); sizes up to 1 MiB.
 *   x_floor   = t / (floor_us + flag round trip): how far a small call is from the least any
 *            kernel of its shape plus one exchange between two processes can take.
 * With a library built with -DMIXCOMM_PHASE_STAMPS=ON, every small size also gets a
 * "# breakdown" line: the mean duration of each phase of rank 0's calls (tools/perf/latency.h).
 *
 * The files of tools/perf: options (command line), rank (one rank's life), sweep (its cases),
 * work (ops and modes), ceilings (copy bandwidth, flag round trip; pingpong.cu), case and calls
 * (one case: checked and timed calls), metrics (the column formulas), latency and launch_floor
 * (launch floors, phase breakdowns), report (table and JSON), context (failures, agreements).
 *
 * Exit status: 0 if every call ran and every checked element was right; 1 otherwise; 2 for bad
 * arguments.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "perf/options.h"
#include "perf/rank.h"
#include "perf/report.h"

/* Whether the CUDA driver library loads, asked in a child process so that this one (which forks
 * the ranks) never touches the driver. 1 when it cannot tell (the ranks then find out). */
static int cuda_driver_loads(void) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0)
    return 1;
  if (pid == 0)
    _exit(dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) != NULL ? 0 : 1);
  int st = 0;
  if (waitpid(pid, &st, 0) != pid)
    return 1;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char** argv) {
  static perf_options_t o; /* large: not on the stack */
  int rc = perf_parse_options(argc, argv, &o);
  if (rc > 0)
    return 0;
  if (rc < 0)
    return PERF_EXIT_BAD_ARGS;
  if (o.dry_run) {
    perf_print_dry_run(&o);
    return 0;
  }
  if (!cuda_driver_loads()) { /* said once, not by every rank */
    fprintf(stderr, PERF_TOOL
            ": no CUDA driver or GPU found: libcuda.so.1 cannot be loaded (install the NVIDIA "
            "driver; mixcomm needs an NVIDIA GPU of compute capability 9.0 or newer); --dry-run "
            "shows the job without a GPU\n");
    return 1;
  }
  int failed = spawn_ranks(o.ranks, o.local_size, o.time_limit_s, perf_rank_main, &o);
  if (failed != 0 && !spawn_under_launcher())
    fprintf(stderr,
            PERF_TOOL ": %d rank(s) exited with a failure (errors or wrong elements above)\n",
            failed);
  return failed ? 1 : 0;
}
