/* SPDX-License-Identifier: Apache-2.0
 * The soak's dry run (--dry-run): no GPU and no ranks; plans every call of rank 0 and
 * computes inputs and references on the host, to check the plan and measure its host-side cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/refdata.h"

#include "gpu/soak/soak.h"

int dry_run(const options_t* o, const mixcomm_topology_t* t) {
  counts_t cnt;
  memset(&cnt, 0, sizeof cnt);
  const double t0 = now_s();
  size_t cap = max_call_bytes(o, t->dp_size) * 2;
  if (cap < ((size_t)64 << 20))
    cap = (size_t)64 << 20;
  const size_t max_elems = (size_t)o->max_rows * (size_t)t->dp_size * (size_t)o->max_elems;
  char* h_in = malloc(cap);
  double* ref = malloc(max_elems * sizeof(double));
  double* abs_sum = malloc(max_elems * sizeof(double));
  unsigned char* nz = malloc(max_elems);
  char* out = malloc(max_elems * 4);
  unit_t* units = calloc((size_t)o->batch, sizeof *units);
  if (!h_in || !ref || !abs_sum || !nz || !out || !units) {
    fprintf(stderr, "soak: host allocation failed\n");
    return 1;
  }
  long long batches = 0, max_batch_bytes = 0;
  for (int d = 0; d < o->ndtypes; d++) {
    const mixcomm_dtype_t dtype = o->dtypes[d];
    plan_ctx_t p;
    plan_init(&p, o, dtype, t, NULL, d);
    const long long share = o->calls / o->ndtypes + (d < o->calls % o->ndtypes ? 1 : 0);
    long long left = share;
    batch_t b = {.units = units};
    while (left > 0) {
      if (plan_batch(&p, &b, left, cap) != 0) {
        fprintf(stderr, "soak: a unit does not fit an empty batch\n");
        return 1;
      }
      const int nunits = b.nunits, ncalls = b.ncalls;
      const size_t out_used = b.out_used;
      batches++;
      if ((long long)out_used > max_batch_bytes)
        max_batch_bytes = (long long)out_used;
      for (int i = 0; i < nunits; i++) {
        cnt.graphs += units[i].graph;
        for (int j = 0; j < units[i].n; j++) {
          const call_t* c = &units[i].c[j];
          cnt.calls++;
          cnt.per_op[c->op]++;
          cnt.per_mode[c->mode + 1]++;
          cnt.graph_calls += units[i].graph;
          if (c->rows_in == 0) {
            cnt.zero_rows++;
            cnt.checked++;
            continue;
          }
          const size_t n_in = (size_t)c->rows_in * (size_t)c->elems;
          const size_t n_out = (size_t)c->rows_out * (size_t)c->elems;
          ref_fill_input(dtype, c->seed, 0, h_in + c->in_off, n_in, c->specials);
          ref_compute(t, dtype, c->op, c->seed, c->rows_in, c->elems, c->specials, ref, abs_sum,
                      nz);
          /* The reference, rounded to the dtype, must pass the checker. */
          for (size_t i2 = 0; i2 < n_out; i2++)
            ref_from_double(dtype, out, i2, nz[i2] ? -0.0 : ref[i2]);
          cnt.wrong += ref_check(dtype, out, ref, abs_sum, nz, n_out, NULL, 0);
          cnt.checked++;
          cnt.elements += (long long)n_out;
        }
      }
      left -= ncalls;
    }
  }
  const double dt = now_s() - t0;
  printf("soak dry run: %lld calls in %lld batches (largest batch output %.1f MiB), %lld zero-row, "
         "%lld in %lld graphs, %lld elements checked, %lld wrong; host time %.2f s (%.1f us per "
         "call)\n",
         cnt.calls, batches, max_batch_bytes / 1048576.0, cnt.zero_rows, cnt.graph_calls,
         cnt.graphs, cnt.elements, cnt.wrong, dt, dt * 1e6 / (cnt.calls ? cnt.calls : 1));
  print_mix("soak dry run:", &cnt);
  free(h_in);
  free(ref);
  free(abs_sum);
  free(nz);
  free(out);
  free(units);
  return cnt.wrong || cnt.checked != o->calls ? 1 : 0;
}
