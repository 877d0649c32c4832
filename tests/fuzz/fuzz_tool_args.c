/* SPDX-License-Identifier: Apache-2.0
 * Fuzz target: the command lines of the tools. mixcomm-info's parse_args and build_report
 * (which hands the numbers to the library's topology and workspace planning), mixcomm-perf's
 * parse_options (with a launcher's WORLD_SIZE / LOCAL_WORLD_SIZE in the environment or not),
 * and the shared integer parser tools/common/args.c.
 *
 * The input is [tool byte][flags byte] and then NUL-separated arguments. Properties:
 *   - a command line is either refused (with the tool's bad-arguments exit status 2, or -1 from
 *     the parser) or gives options that are consistent and representable: sizes that divide,
 *     byte counts that are whole rows within the limits, names that exist;
 *   - args_parse_ll accepts exactly the decimal integers in range (checked against an
 *     independent reading of the digits);
 *   - nothing overflows, reads out of bounds or leaks (the sanitizers).
 * The tools' own messages go to /dev/null while they run.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/args.h"
#include "fuzz_common.h"
#include "fuzz_tools.h"

#define MAX_ARGS 24
#define MAX_INPUT_BYTES 4096

static int devnull = -1, saved_out = -1, saved_err = -1;

static void quiet(void) {
  fflush(stdout);
  fflush(stderr);
  dup2(devnull, 1);
  dup2(devnull, 2);
}

static void loud(void) {
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
}

/* Independent reading of a decimal integer: optional sign, digits only, within [lo, hi]. */
static int reference_ll(const char* s, long long lo, long long hi, long long* out) {
  const char* p = s;
  int neg = 0;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  if (*p == '\0')
    return -1;
  unsigned long long mag = 0;
  for (; *p != '\0'; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    if (mag > (ULLONG_MAX - 9) / 10)
      return -1;
    mag = mag * 10 + (unsigned)(*p - '0');
  }
  if (!neg && mag > (unsigned long long)LLONG_MAX)
    return -1;
  if (neg && mag > (unsigned long long)LLONG_MAX + 1)
    return -1;
  const long long v = neg ? (long long)(0 - mag) : (long long)mag;
  if (v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size_in) {
  if (devnull < 0) {
    devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    saved_out = dup(1);
    saved_err = dup(2);
    FUZZ_CHECK(devnull >= 0 && saved_out >= 0 && saved_err >= 0, "cannot set up stdio");
  }
  if (size_in < 2 || size_in > MAX_INPUT_BYTES)
    return 0;
  const int tool = data[0] % 3;
  const uint8_t flags = data[1];
  /* Arguments: the rest, split at NULs (a copy, NUL-terminated at the end). */
  char* text = malloc(size_in - 2 + 1);
  FUZZ_CHECK(text != NULL, "out of memory");
  memcpy(text, data + 2, size_in - 2);
  text[size_in - 2] = '\0';
  char* argv[MAX_ARGS + 2];
  int argc = 0;
  argv[argc++] = tool == 0 ? "mixcomm-info" : "mixcomm-perf";
  for (char* p = text; argc < MAX_ARGS && p <= text + (size_in - 2);) {
    argv[argc++] = p;
    p += strlen(p) + 1;
  }
  argv[argc] = NULL;

  if (tool == 0) {
    fuzz_info_result_t r;
    quiet();
    const int rc = fuzz_info(argc, argv, &r);
    loud();
    if (rc != 0) {
      FUZZ_CHECK(r.exit_code == 0 || r.exit_code == 2, "exit status %d", r.exit_code);
    } else {
      const mixcomm_topology_t* t = &r.topo;
      FUZZ_CHECK(r.world_size >= 1 && r.local_size >= 1 && r.world_size % r.local_size == 0,
                 "world %d local %d accepted", r.world_size, r.local_size);
      FUZZ_CHECK(t->world_size == r.world_size && t->local_size == r.local_size &&
                     t->local_size * t->inter_size == t->world_size,
                 "topology sizes");
      FUZZ_CHECK(t->local_tp_size * t->local_dp_size == t->local_size &&
                     t->inter_tp_size * t->inter_dp_size == t->inter_size &&
                     t->tp_size == t->local_tp_size * t->inter_tp_size &&
                     t->dp_size == t->local_dp_size * t->inter_dp_size,
                 "tp/dp split of %d x %d", t->local_size, t->inter_size);
      FUZZ_CHECK(r.last_rank.world_rank == r.world_size - 1, "rank topology");
      FUZZ_CHECK(mixcomm_dtype_name(r.dtype) != NULL, "dtype %d", (int)r.dtype);
    }
  } else if (tool == 1) {
    /* A launcher's environment (the tool then takes the world from it). */
    unsetenv("RANK");
    unsetenv("WORLD_SIZE");
    unsetenv("LOCAL_WORLD_SIZE");
    int first = 1;
    if ((flags & 1) && argc > 2) {
      setenv("RANK", "0", 1);
      setenv("WORLD_SIZE", argv[1], 1);
      first = 2;
      if ((flags & 2) && argc > 3) {
        setenv("LOCAL_WORLD_SIZE", argv[2], 1);
        first = 3;
      }
    }
    argv[first - 1] = "mixcomm-perf";
    int rc = 0;
    quiet();
    const fuzz_perf_options_t* o = fuzz_perf(argc - (first - 1), argv + (first - 1), &rc);
    loud();
    FUZZ_CHECK(rc >= -1 && rc <= 1, "parse_options returned %d", rc);
    if (rc == 0) {
      char why[200];
      FUZZ_CHECK(fuzz_perf_check(o, why, sizeof why) == 0, "accepted options: %s", why);
    }
  } else {
    /* args_parse_ll / args_parse_int on each argument, with bounds from the flags. */
    static const long long bounds[4][2] = {
        {LLONG_MIN, LLONG_MAX}, {0, 1024}, {-5, 5}, {1, 1 << 30}};
    const long long lo = bounds[flags & 3][0], hi = bounds[flags & 3][1];
    for (int i = 1; i < argc; i++) {
      long long v = 12345, want = 0;
      const int got = args_parse_ll(argv[i], lo, hi, &v);
      const int ref = reference_ll(argv[i], lo, hi, &want);
      FUZZ_CHECK(got == ref, "args_parse_ll('%s') = %d, expected %d", argv[i], got, ref);
      FUZZ_CHECK(got != 0 ? v == 12345 : v == want, "value of '%s'", argv[i]);
      int iv = 7;
      const int goti = args_parse_int(argv[i], INT_MIN, INT_MAX, &iv);
      const int refi = reference_ll(argv[i], INT_MIN, INT_MAX, &want);
      FUZZ_CHECK(goti == refi && (goti != 0 || iv == want), "args_parse_int('%s')", argv[i]);
    }
  }
  free(text);
  return 0;
}
