/* SPDX-License-Identifier: Apache-2.0
 * mixcomm-soak without a GPU: --dry-run plans the whole random stream and checks it on the host
 * (every call's float64 reference, rounded to the dtype, must pass the same comparison the GPU
 * run uses, and every call must fit its batch), so a plan or checker bug shows here in CI. Bad
 * arguments exit 2. The binary is MIXCOMM_SOAK_PATH. */
#include <stdlib.h>
#include <string.h>

#include "harness/task.h"
#include "harness/tool_run.h"

#ifndef MIXCOMM_SOAK_PATH
#error "MIXCOMM_SOAK_PATH must name the built mixcomm-soak binary"
#endif

TEST_IMPL(soak_dry_run) {
  static const char* const runs[] = {
      "--dry-run --calls 3000",                   /* 4 ranks, TP2 x DP2, all dtypes */
      "--dry-run --ranks 4 --tp 4 --calls 1000",  /* pure TP */
      "--dry-run --ranks 2 --tp 1 --calls 1000 --dtypes fp32 --seed 7",
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    tool_run_t r = tool_run(MIXCOMM_SOAK_PATH, runs[i]);
    if (r.status != 0 || strstr(r.out, "soak dry run:") == NULL ||
        strstr(r.out, " 0 wrong;") == NULL)
      FAIL("'%s': exit %d, expected 0 and \"0 wrong\"; stdout: %.600s; stderr: %.600s", runs[i],
           r.status, r.out, r.err);
    free(r.out);
    free(r.err);
  }
  static const char* const bad[] = {"--dry-run --calls x", "--dry-run --ranks 0",
                                    "--dry-run --dtypes fp64"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tool_run_t r = tool_run(MIXCOMM_SOAK_PATH, bad[i]);
    if (r.status != 2 || strstr(r.err, "mixcomm-soak") == NULL)
      FAIL("'%s': exit %d, expected 2 and a message naming the tool; stderr: %.600s", bad[i],
           r.status, r.err);
    free(r.out);
    free(r.err);
  }
  return 0;
}
