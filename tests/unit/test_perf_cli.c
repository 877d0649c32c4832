/* SPDX-License-Identifier: Apache-2.0
 * Tests of mixcomm-perf that need no GPU: --dry-run refuses what cannot run (modes the topology
 * rules out, an output path that cannot be written) before anything starts, and a machine
 * without a CUDA driver gets a message saying so. The binary is MIXCOMM_PERF_PATH. */
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/task.h"
#include "harness/tool_run.h"

#ifndef MIXCOMM_PERF_PATH
#error "MIXCOMM_PERF_PATH must name the built mixcomm-perf binary"
#endif

/* Run mixcomm-perf with space-separated args (no quoting), stdout and stderr captured; forked
 * ranks, never a launcher's environment. */
static void run_perf(const char* args, tool_run_t* r) { *r = tool_run(MIXCOMM_PERF_PATH, args); }

TEST_IMPL(perf_dry_run_refuses) {
  static const struct {
    const char* args;
    const char* needle; /* stderr must say this */
  } bad[] = {
      /* One node: no TP group across nodes for the two-level two-shot mode. */
      {"--dry-run -n 2 -m FUSED_OPT_BYTES2_UC", "inter_tp_size > 1"},
      {"--dry-run -n 4 -m FUSED_OPT_WAITS_MC", "multicast"},
      {"--dry-run -n 4 -m FUSED_OPT_WAITS_UC,FUSED_OPT_BYTES1_MC", "FUSED_OPT_BYTES1_MC"},
      /* Pure TP: no DP group for NCCL_TP_DP; DP only: no TP group for the one-level two-shot. */
      {"--dry-run -n 4 -m NCCL_TP_DP", "NCCL_TP_DP"},
      {"--dry-run -n 4 --local-dp-size 4 -m FUSED_OPT_BYTES1_UC", "local_tp_size > 1"},
      {"--dry-run -n 2 -m AUTOTUNE", "autotune"},
      {"--dry-run -n 2 --json /nonexistent-mixcomm-dir/out.json", "/nonexistent-mixcomm-dir"},
      {"--dry-run -n 2 --json /tmp", "directory"},
      {"--dry-run -n 2 --json /proc/version/x.json", "/proc/version"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tool_run_t r;
    run_perf(bad[i].args, &r);
    if (r.status != 2)
      FAIL("'%s': exit %d, expected 2 (bad arguments); stderr: %s", bad[i].args, r.status, r.err);
    if (strstr(r.err, "mixcomm-perf") == NULL || strstr(r.err, bad[i].needle) == NULL)
      FAIL("'%s': stderr \"%s\" should name the tool and \"%s\"", bad[i].args, r.err,
           bad[i].needle);
    if (r.out[0] != '\0')
      FAIL("'%s': printed on stdout although it failed: %s", bad[i].args, r.out);
  }
  return 0;
}

TEST_IMPL(perf_dry_run_accepts) {
  /* Valid modes for the topology, a writable JSON path: the plan is printed and nothing is
   * written (the file is only made by a real run). */
  char dir[] = "/tmp/mixcomm-perf-test-XXXXXX";
  ASSERT(mkdtemp(dir) != NULL);
  char path[256];
  snprintf(path, sizeof path, "%s/out.json", dir);
  char args[512];
  snprintf(args, sizeof args,
           "--dry-run -n 4 --local-size 2 --inter-tp-size 2 -m FUSED_OPT_BYTES2_UC,DEFAULT "
           "--json %s", path);
  tool_run_t r;
  run_perf(args, &r);
  struct stat st;
  const int created = stat(path, &st) == 0;
  unlink(path);
  rmdir(dir);
  if (r.status != 0)
    FAIL("'%s': exit %d; stderr: %s", args, r.status, r.err);
  ASSERT_CONTAINS(r.out, "# dry run: world 4 = 2 node(s) x 2 local");
  ASSERT_CONTAINS(r.out, "FUSED_OPT_BYTES2_UC");
  ASSERT(!created);

  run_perf("--dry-run -n 2 -m AUTOTUNE --autotune 1", &r);
  ASSERT_EQ(r.status, 0);
  ASSERT_CONTAINS(r.out, "AUTOTUNE");
  return 0;
}

TEST_IMPL(perf_without_driver) {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver != NULL) {
    dlclose(driver);
    fprintf(stderr, "  a CUDA driver is installed: skipped\n");
    return 0;
  }
  tool_run_t r;
  run_perf("-n 2 -b 1K -e 1K -w 0 -i 1 --time-limit 60", &r);
  ASSERT_EQ(r.status, 1);
  ASSERT_CONTAINS(r.err, "no CUDA driver or GPU found");
  ASSERT_CONTAINS(r.err, "libcuda.so.1");
  /* Said once for the host, not once per rank. */
  ASSERT(strstr(strstr(r.err, "no CUDA driver") + 1, "no CUDA driver") == NULL);
  return 0;
}
