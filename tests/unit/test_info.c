/* SPDX-License-Identifier: Apache-2.0
 * Tests of the mixcomm-info tool: run the built binary (MIXCOMM_INFO_PATH), read its JSON with
 * a small strict parser (tests/harness/json_read.h), and check the values against the documented formulas computed in
 * the test. Bad arguments must fail with a message on stderr. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/build_config.h"
#include "harness/json_read.h"
#include "harness/task.h"
#include "harness/tool_run.h"

#ifndef MIXCOMM_INFO_PATH
#error "MIXCOMM_INFO_PATH must name the built mixcomm-info binary"
#endif

/* Run mixcomm-info with the space-separated arguments in args (no quoting needed here). */
static tool_run_t run_info(const char* args) { return tool_run(MIXCOMM_INFO_PATH, args); }

/* ---------------------------------------------------------------------------------------- */
/* Expectations from the documented rules                                                     */
/* ---------------------------------------------------------------------------------------- */

static const char* const kOps[] = {"ALLREDUCE", "ALLGATHER", "REDUCESCATTER",
                                   "ALLREDUCE_ALLGATHER", "REDUCESCATTER_ALLREDUCE"};
static const char* const kModes[] = {
    "FUSED_OPT_WAITS_MC",  "FUSED_OPT_WAITS_UC",  "FUSED_OPT_BYTES1_MC",
    "FUSED_OPT_BYTES1_UC", "FUSED_OPT_BYTES2_MC", "FUSED_OPT_BYTES2_UC",
    "NCCL_ONE",            "NCCL_TP_DP",          "AUTOTUNE"};

typedef struct info_case {
  const char* args;
  int W, L;
  int ltp, ldp, itp, idp; /* expected resolved sizes, worked out by hand */
} info_case_t;

static const info_case_t kCases[] = {
    {"--world-size 1 --local-size 1", 1, 1, 1, 1, 1, 1},
    {"--world-size 2 --local-size 2", 2, 2, 2, 1, 1, 1},
    {"--world-size 8 --local-size 8 --local-tp-size 4", 8, 8, 4, 2, 1, 1},
    {"--world-size 8 --local-size 8 --local-dp-size 2", 8, 8, 4, 2, 1, 1},
    {"--world-size 16 --local-size 8 --inter-tp-size 2", 16, 8, 8, 1, 2, 1},
    {"--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2", 16, 8, 4, 2, 2, 1},
    {"--world-size 12 --local-size 6 --local-tp-size 3", 12, 6, 3, 2, 2, 1},
    {"--world-size 12 --local-size 6 --local-tp-size 3 --local-dp-size 2 --inter-dp-size 2", 12,
     6, 3, 2, 1, 2},
    {"--world-size 3 --local-size 3", 3, 3, 3, 1, 1, 1},
    {"--world-size 3 --local-size 3 --local-dp-size 3", 3, 3, 1, 3, 1, 1},
    {"--world-size 8 --local-size 2 --local-tp-size 2 --inter-dp-size 4", 8, 2, 2, 1, 1, 4},
    {"--world-size 32 --local-size 32", 32, 32, 32, 1, 1, 1},
};

/* Which modes the mode rules allow, with the tool's assumptions (one GPU per rank, autotune
 * on unless no_autotune, this build's NCCL and NVSHMEM). */
static int mode_expected_valid(int mode, const info_case_t* c, int no_autotune, int share) {
  const int I = c->W / c->L, tp = c->ltp * c->itp, dp = c->ldp * c->idp;
  const int fused_ok = c->L <= 16 && (I == 1 || MIXCOMM_HAVE_NVSHMEM);
  switch (mode) {
    case 1: return fused_ok;
    case 3: return fused_ok && c->ltp > 1;
    case 5: return fused_ok && c->itp > 1;
    case 6: return MIXCOMM_HAVE_NCCL && !share;
    case 7: return MIXCOMM_HAVE_NCCL && !share && tp > 1 && dp > 1;
    case 8: return !no_autotune;
    default: return 0; /* multicast modes are never built */
  }
}

static void check_json_case(const info_case_t* c, const jval_t* root, int no_autotune,
                            int share) {
  const int W = c->W, L = c->L, I = W / L;
  const int tp = c->ltp * c->itp, dp = c->ldp * c->idp;
  ASSERT(root->type == J_OBJ);
  ASSERT_EQ(jint(root, "world_size"), W);
  ASSERT_EQ(jint(root, "local_size"), L);
  ASSERT_EQ(jint(root, "inter_size"), I);
  ASSERT_EQ(jint(root, "local_tp_size"), c->ltp);
  ASSERT_EQ(jint(root, "local_dp_size"), c->ldp);
  ASSERT_EQ(jint(root, "inter_tp_size"), c->itp);
  ASSERT_EQ(jint(root, "inter_dp_size"), c->idp);
  ASSERT_EQ(jint(root, "tp_size"), tp);
  ASSERT_EQ(jint(root, "dp_size"), dp);

  /* Every world rank, in order, with the derived ranks of the topology rules. */
  const jval_t* ranks = jarr(root, "ranks");
  ASSERT_EQ(ranks->n, W);
  for (int w = 0; w < W; w++) {
    const jval_t* r = ranks->items[w];
    const int lr = w % L, ir = w / L;
    const int ltr = lr % c->ltp, ldr = lr / c->ltp, itr = ir % c->itp, idr = ir / c->itp;
    const long long got[] = {jint(r, "world_rank"),    jint(r, "local_rank"),
                             jint(r, "inter_rank"),    jint(r, "local_tp_rank"),
                             jint(r, "local_dp_rank"), jint(r, "inter_tp_rank"),
                             jint(r, "inter_dp_rank"), jint(r, "tp_rank"),
                             jint(r, "dp_rank")};
    const long long exp[] = {w, lr, ir, ltr, ldr, itr, idr, ltr + itr * c->ltp,
                             ldr + idr * c->ldp};
    for (int k = 0; k < 9; k++)
      if (got[k] != exp[k])
        FAIL("%s: rank %d field %d is %lld, expected %lld", c->args, w, k, got[k], exp[k]);
  }

  /* Valid ops per the op table, in enum order. */
  const int op_ok[] = {dp == 1, tp == 1, tp == 1, tp > 1 && dp > 1, tp > 1 && dp > 1};
  const jval_t* ops = jarr(root, "valid_ops");
  int k = 0;
  for (int op = 0; op < 5; op++) {
    if (!op_ok[op])
      continue;
    if (k >= ops->n || ops->items[k]->type != J_STR || strcmp(ops->items[k]->str, kOps[op]))
      FAIL("%s: valid_ops[%d] should be %s", c->args, k, kOps[op]);
    k++;
  }
  ASSERT_EQ(ops->n, k);

  /* Every mode is either valid or excluded with a reason. */
  const jval_t* valid = jarr(root, "valid_modes");
  const jval_t* excluded = jget(root, "excluded_modes");
  ASSERT(excluded != NULL && excluded->type == J_OBJ);
  ASSERT_EQ(valid->n + excluded->n, 9);
  for (int m = 0; m < 9; m++) {
    const int in_valid = jarr_has(valid, kModes[m]);
    const jval_t* why = jget(excluded, kModes[m]);
    if (in_valid == (why != NULL))
      FAIL("%s: mode %s must be in exactly one of valid_modes, excluded_modes", c->args,
           kModes[m]);
    if (why != NULL && (why->type != J_STR || why->str[0] == '\0'))
      FAIL("%s: mode %s excluded without a reason", c->args, kModes[m]);
    if (in_valid != mode_expected_valid(m, c, no_autotune, share))
      FAIL("%s: mode %s valid = %d, expected %d (%s)", c->args, kModes[m], in_valid,
           mode_expected_valid(m, c, no_autotune, share), why ? why->str : "");
    if (m == 0 || m == 2 || m == 4)
      ASSERT_CONTAINS(why->str, "multicast");
  }
  /* Valid modes are listed in enum order. */
  for (int i = 1; i < valid->n; i++) {
    int a = -1, b = -1;
    for (int m = 0; m < 9; m++) {
      if (!strcmp(valid->items[i - 1]->str, kModes[m]))
        a = m;
      if (!strcmp(valid->items[i]->str, kModes[m]))
        b = m;
    }
    ASSERT(a >= 0 && b > a);
  }

  /* The workspace: every key, consistent with the slot layout, and exactly what the library
   * plans for the same configuration (the tool must not compute its own). */
  const jval_t* ws = jget(root, "workspace");
  ASSERT(ws != NULL && ws->type == J_OBJ);
  const long long grid = jint(ws, "grid_size");
  const long long slots = jint(ws, "ring_slots");
  ASSERT(slots >= 1);
  ASSERT_EQ(jint(ws, "vmm_bytes"), slots * grid * jint(ws, "vmm_slot_bytes"));
  if (I == 1) {
    ASSERT_EQ(jint(ws, "nvshmem_bytes"), 0);
    ASSERT_EQ(jint(ws, "nvshmem_rows"), 0);
  } else {
    ASSERT(jint(ws, "nvshmem_bytes") >= slots * grid * jint(ws, "nvshmem_slot_bytes"));
    ASSERT(jint(ws, "nvshmem_slot_bytes") > 0);
  }
  ASSERT(jint(ws, "control_bytes") >= grid * 16);
  ASSERT(jint(ws, "vmm_rows") >= 1);
  mixcomm_config_t cfg = MIXCOMM_CONFIG_INITIALIZER;
  cfg.world_size = W;
  cfg.local_size = L;
  cfg.inter_size = I;
  cfg.local_tp_size = c->ltp;
  cfg.local_dp_size = c->ldp;
  cfg.inter_tp_size = c->itp;
  cfg.inter_dp_size = c->idp;
  cfg.grid_size = (int)grid;
  cfg.max_block_size = (int)jint(ws, "max_block_size");
  mixcomm_workspace_plan_t plan;
  ASSERT_OK(mixcomm_workspace_plan(&cfg, 0, &plan));
  ASSERT_EQ(jint(ws, "max_block_size"), plan.max_block_size);
  ASSERT_EQ(slots, plan.ring_slots);
  ASSERT_EQ(jint(ws, "vmm_rows"), plan.vmm_rows);
  ASSERT_EQ(jint(ws, "nvshmem_rows"), plan.nvshmem_rows);
  ASSERT_EQ(jint(ws, "vmm_slot_bytes"), plan.vmm_slot_bytes);
  ASSERT_EQ(jint(ws, "vmm_bytes"), plan.vmm_bytes);
  ASSERT_EQ(jint(ws, "nvshmem_slot_bytes"), plan.nvshmem_slot_bytes);
  ASSERT_EQ(jint(ws, "nvshmem_bytes"), plan.nvshmem_bytes);
  ASSERT_EQ(jint(ws, "control_bytes"), plan.control_bytes);

  const jval_t* notes = jarr(root, "assumptions");
  ASSERT(notes->n >= 2);
  for (int i = 0; i < notes->n; i++)
    ASSERT(notes->items[i]->type == J_STR && notes->items[i]->str[0] != '\0');
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                      */
/* ---------------------------------------------------------------------------------------- */

TEST_IMPL(info_json_topologies) {
  /* The reader must tell JSON from near misses. */
  ASSERT(json_rejects("{\"a\": 1,}"));
  ASSERT(json_rejects("{\"a\" 1}"));
  ASSERT(json_rejects("[1, 2"));
  ASSERT(json_rejects("{\"a\": \"x\ny\"}"));
  ASSERT(json_rejects("{\"a\": 01}"));
  ASSERT(json_rejects("{\"a\": 1} x"));
  ASSERT(json_rejects("{\"a\": 1, \"a\": 2}"));
  ASSERT(!json_rejects(" {\"a\": [1, -2.5e3, true, null, \"\\u00e9\\\"\"]} "));

  for (size_t i = 0; i < sizeof kCases / sizeof kCases[0]; i++) {
    char args[512];
    snprintf(args, sizeof args, "%s --json", kCases[i].args);
    tool_run_t r = run_info(args);
    if (r.status != 0)
      FAIL("%s: exit %d, stderr: %s", args, r.status, r.err);
    jval_t* root = json_parse(r.out);
    check_json_case(&kCases[i], root, 0, 0);
    /* Defaults: bf16 and the 132-CTA grid of an H100, stated as an assumption. */
    ASSERT_STR_EQ(jstr(root, "dtype"), "bfloat16");
    const jval_t* ws = jget(root, "workspace");
    ASSERT_EQ(jint(ws, "grid_size"), 132);
    ASSERT_EQ(jint(ws, "max_block_size"), 1024);
    const jval_t* notes = jarr(root, "assumptions");
    int says_grid = 0, says_gpu = 0;
    for (int k = 0; k < notes->n; k++) {
      says_grid |= strstr(notes->items[k]->str, "132") != NULL;
      says_gpu |= strstr(notes->items[k]->str, "one GPU per rank") != NULL;
    }
    ASSERT(says_grid && says_gpu);
  }
  return 0;
}

TEST_IMPL(info_json_options) {
  /* dtype, grid and block limits, autotune off, "--opt=value" spelling. */
  const info_case_t* c = &kCases[5]; /* 16 ranks, 2 nodes, tp 4 x dp 2 inside, tp 2 across */
  char args[512];
  snprintf(args, sizeof args,
           "%s --dtype fp32 --grid-size=64 --max-block-size 512 --min-block-size=128 "
           "--no-autotune --json",
           c->args);
  tool_run_t r = run_info(args);
  if (r.status != 0)
    FAIL("%s: exit %d, stderr: %s", args, r.status, r.err);
  jval_t* root = json_parse(r.out);
  check_json_case(c, root, 1, 0);
  ASSERT_STR_EQ(jstr(root, "dtype"), "float32");
  const jval_t* ws = jget(root, "workspace");
  ASSERT_EQ(jint(ws, "grid_size"), 64);
  ASSERT_EQ(jint(ws, "max_block_size"), 512);
  const jval_t* excluded = jget(root, "excluded_modes");
  ASSERT(excluded != NULL);
  ASSERT_CONTAINS(jstr(excluded, "AUTOTUNE"), "autotune");

  /* The workspace does not depend on the dtype. */
  snprintf(args, sizeof args, "%s --dtype fp16 --grid-size 64 --max-block-size 512 --json",
           c->args);
  tool_run_t r16 = run_info(args);
  ASSERT_EQ(r16.status, 0);
  jval_t* root16 = json_parse(r16.out);
  ASSERT_STR_EQ(jstr(root16, "dtype"), "float16");
  const jval_t* ws16 = jget(root16, "workspace");
  ASSERT_EQ(jint(ws16, "vmm_bytes"), jint(ws, "vmm_bytes"));
  ASSERT_EQ(jint(ws16, "nvshmem_bytes"), jint(ws, "nvshmem_bytes"));

  /* Twice the grid, twice the node workspace. */
  snprintf(args, sizeof args, "%s --grid-size 128 --max-block-size 512 --json", c->args);
  tool_run_t r128 = run_info(args);
  ASSERT_EQ(r128.status, 0);
  jval_t* root128 = json_parse(r128.out);
  ASSERT_EQ(jint(jget(root128, "workspace"), "vmm_bytes"), 2 * jint(ws, "vmm_bytes"));

  /* Ranks sharing a GPU: NCCL modes excluded, naming the GPU. */
  const info_case_t* mixed = &kCases[2];
  snprintf(args, sizeof args, "%s --ranks-share-gpu --json", mixed->args);
  tool_run_t rs = run_info(args);
  ASSERT_EQ(rs.status, 0);
  jval_t* roots = json_parse(rs.out);
  check_json_case(mixed, roots, 0, 1);
  ASSERT_CONTAINS(jstr(jget(roots, "excluded_modes"), "NCCL_ONE"), "GPU");
  ASSERT_CONTAINS(jstr(jget(roots, "excluded_modes"), "NCCL_TP_DP"), "GPU");

  /* Every documented dtype spelling. */
  static const char* const spell[][2] = {
      {"fp16", "float16"}, {"bf16", "bfloat16"}, {"fp32", "float32"}};
  for (int i = 0; i < 3; i++) {
    snprintf(args, sizeof args, "--world-size 2 --local-size 2 --dtype %s --json", spell[i][0]);
    tool_run_t rd = run_info(args);
    ASSERT_EQ(rd.status, 0);
    ASSERT_STR_EQ(jstr(json_parse(rd.out), "dtype"), spell[i][1]);
  }
  return 0;
}

TEST_IMPL(info_text_and_help) {
  tool_run_t r = run_info("--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2");
  if (r.status != 0)
    FAIL("exit %d, stderr: %s", r.status, r.err);
  ASSERT_EQ(r.err[0], '\0');
  ASSERT_CONTAINS(r.out, "REDUCESCATTER_ALLREDUCE");
  ASSERT_CONTAINS(r.out, "FUSED_OPT_WAITS_MC");
  ASSERT_CONTAINS(r.out, "multicast");
  ASSERT_CONTAINS(r.out, "132");
  /* One table line per rank: count lines that start with the rank number after spaces. */
  int rank_lines = 0;
  for (const char* line = r.out; line != NULL && *line != '\0';) {
    const char* p = line;
    while (*p == ' ')
      p++;
    char* end;
    long v = strtol(p, &end, 10);
    if (end != p && v == rank_lines && *end == ' ')
      rank_lines++;
    line = strchr(line, '\n');
    if (line != NULL)
      line++;
  }
  ASSERT_EQ(rank_lines, 16);

  /* Many nodes: the tool lists the modes a handler would (BYTES2 at 34 nodes and grid 2 runs:
   * tests/unit/test_wire.c), and past the workspace bound leaves modes out with the reason. */
  tool_run_t many = run_info("--world-size 34 --local-size 1 --grid-size 2");
  ASSERT_EQ(many.status, 0);
  tool_run_t huge = run_info("--world-size 1024 --local-size 8 --local-dp-size 8");
  ASSERT_EQ(huge.status, 0);
  if (MIXCOMM_HAVE_NVSHMEM) {
    ASSERT_CONTAINS(many.out, "Valid modes: FUSED_OPT_WAITS_UC, FUSED_OPT_BYTES2_UC");
    ASSERT_CONTAINS(huge.out, "MIXCOMM_MAX_STEP_ROWS");
  }

  tool_run_t h = run_info("--help");
  ASSERT_EQ(h.status, 0);
  ASSERT_CONTAINS(h.out, "--world-size");
  ASSERT_CONTAINS(h.out, "--local-size");
  ASSERT_CONTAINS(h.out, "--json");
  ASSERT_CONTAINS(h.out, "--grid-size");
  ASSERT_CONTAINS(h.out, "--no-autotune");
  return 0;
}

TEST_IMPL(info_bad_arguments) {
  static const struct {
    const char* args;
    const char* needle; /* stderr must name the problem */
  } bad[] = {
      {"", "--world-size"},
      {"--json", "--world-size"},
      {"--local-size 4", "--world-size"},
      {"--world-size 8", "--local-size"},
      {"--world-size 8 --local-size 3", "multiple"},
      {"--world-size 4 --local-size 4 --local-tp-size 3", "local_tp_size=3"},
      {"--world-size 8 --local-size 4 --local-tp-size 2 --local-dp-size 3", "local_dp_size=3"},
      {"--world-size 8 --local-size 4 --inter-tp-size 3", "inter_tp_size=3"},
      {"--world-size 4 --local-size 4 --inter-dp-size 2", "inter_dp_size=2"},
      {"--world-size 4 --local-size 4 --local-tp-size -2", "local_tp_size=-2"},
      {"--world-size 4 --local-size 4 --bogus", "--bogus"},
      {"--world-size 4 --local-size 4 -x", "-x"},
      {"--world-size 4 --local-size 4 stray", "stray"},
      {"--world-size 4 --local-size 4 --dtype fp64", "fp64"},
      {"--world-size 4 --local-size 4 --dtype", "--dtype"},
      {"--world-size four --local-size 4", "four"},
      {"--world-size 4x --local-size 4", "4x"},
      {"--world-size 4 --local-size 4.0", "4.0"},
      {"--world-size 4 --local-size", "--local-size"},
      {"--world-size= --local-size 4", "--world-size"},
      {"--world-size 0 --local-size 1", "world-size"},
      {"--world-size -8 --local-size 4", "-8"},
      {"--world-size 8 --local-size 0", "local-size"},
      {"--world-size 99999999999 --local-size 1", "99999999999"},
      {"--world-size 2147483647 --local-size 1", "at most 16384"},
      {"--world-size 16385 --local-size 1", "16385"},
      {"--world-size 4 --local-size 4 --grid-size 4097", "grid-size"},
      {"--world-size 4 --local-size 4 --grid-size 0", "grid-size"},
      {"--world-size 4 --local-size 4 --grid-size x", "grid-size"},
      {"--world-size 4 --local-size 4 --max-block-size 33", "max_block_size=33"},
      {"--world-size 4 --local-size 4 --max-block-size 128", "max_block_size=128"},
      {"--world-size 4 --local-size 4 --min-block-size 2000", "min_block_size=2000"},
      {"--world-size 4 --local-size 4 --json=yes", "--json"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    tool_run_t r = run_info(bad[i].args);
    if (r.status == 0 || r.status >= 128)
      FAIL("'%s': exit %d, expected a clean non-zero exit", bad[i].args, r.status);
    if (strstr(r.err, "mixcomm-info") == NULL || strstr(r.err, bad[i].needle) == NULL)
      FAIL("'%s': stderr \"%s\" should name the tool and \"%s\"", bad[i].args, r.err,
           bad[i].needle);
    if (r.out[0] != '\0')
      FAIL("'%s': printed on stdout although it failed: %s", bad[i].args, r.out);
    ASSERT_EQ(r.status, 2);
  }
  return 0;
}

/* Output into a full device or a pipe nobody reads: exit 1 at the first failed write with a
 * message, for text, JSON and --help, and never a signal or a hang. */
static void expect_write_failure(const char* const* argv, int use_pipe) {
  FILE* err = tmpfile();
  ASSERT(err != NULL);
  int fds[2] = {-1, -1};
  if (use_pipe) {
    ASSERT(pipe(fds) == 0);
    close(fds[0]); /* nobody reads: every write fails with EPIPE */
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT(pid >= 0);
  if (pid == 0) {
    int out = use_pipe ? fds[1] : open("/dev/full", O_WRONLY);
    if (out < 0)
      _exit(126);
    signal(SIGPIPE, SIG_IGN); /* kept across exec: the write fails instead of killing */
    dup2(out, 1);
    dup2(fileno(err), 2);
    execv(MIXCOMM_INFO_PATH, (char* const*)argv);
    _exit(127);
  }
  if (use_pipe)
    close(fds[1]);
  int st = 0;
  ASSERT(waitpid(pid, &st, 0) == pid);
  fseek(err, 0, SEEK_END);
  char* text = tool_run_slurp(err);
  fclose(err);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
    FAIL("%s %s into %s: status 0x%x, expected exit 1; stderr: %s", argv[1], argv[2],
         use_pipe ? "a closed pipe" : "/dev/full", st, text);
  ASSERT_CONTAINS(text, "mixcomm-info: writing the output failed");
  ASSERT_CONTAINS(text, use_pipe ? "pipe" : "space");
  /* One message, not one per attempted write. */
  ASSERT(strstr(strstr(text, "writing") + 1, "writing") == NULL);
  free(text);
}

TEST_IMPL(info_write_failure) {
  static const char* const text[] = {MIXCOMM_INFO_PATH, "--world-size", "16384", "--local-size",
                                     "16", NULL};
  static const char* const json[] = {MIXCOMM_INFO_PATH, "--world-size", "16384", "--local-size",
                                     "16", "--json", NULL};
  static const char* const small[] = {MIXCOMM_INFO_PATH, "--world-size", "2", "--local-size",
                                      "2", NULL};
  static const char* const help[] = {MIXCOMM_INFO_PATH, "--help", NULL};
  for (int use_pipe = 0; use_pipe < 2; use_pipe++) {
    expect_write_failure(text, use_pipe);
    expect_write_failure(json, use_pipe);
    expect_write_failure(small, use_pipe);
    expect_write_failure(help, use_pipe);
  }
  return 0;
}

/* Where python3 exists (CI), its json module must accept the output too. */
TEST_IMPL(info_json_python) {
  if (system("command -v python3 >/dev/null 2>&1") != 0) {
    fprintf(stderr, "  python3 not found: skipped\n");
    return 0;
  }
  static const char* const topologies[] = {
      "--world-size 16 --local-size 8 --local-tp-size 4 --inter-tp-size 2 --json",
      "--world-size 1 --local-size 1 --no-autotune --json",
      "--world-size 12 --local-size 6 --local-tp-size 3 --ranks-share-gpu --json"};
  for (size_t i = 0; i < sizeof topologies / sizeof topologies[0]; i++) {
    char path[] = "/tmp/mixcomm-info-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    tool_run_t r = run_info(topologies[i]);
    ASSERT_EQ(r.status, 0);
    size_t len = strlen(r.out);
    ASSERT(write(fd, r.out, len) == (ssize_t)len);
    close(fd);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(sys.stdin); "
             "assert isinstance(d, dict) and len(d[\"ranks\"]) == d[\"world_size\"]' < %s",
             path);
    int st = system(cmd);
    unlink(path);
    if (st != 0)
      FAIL("python3 rejected the JSON of '%s':\n%s", topologies[i], r.out);
  }
  return 0;
}
