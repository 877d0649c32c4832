/* SPDX-License-Identifier: Apache-2.0
 * The plan of the soak: every rank draws the same random sequence of calls (shared
 * seed) and places them in the slots of a batch. */
#include <math.h>
#include <string.h>

#include "common/refdata.h"
#include "gpu/harness.h"

#include "gpu/soak/soak.h"

static uint64_t rng_next(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]. */
static int64_t rng_range(uint64_t* s, int64_t lo, int64_t hi) {
  if (hi <= lo)
    return lo;
  return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform integer in [lo, hi] (lo >= 1): small values much more likely. */
static int64_t rng_log(uint64_t* s, int64_t lo, int64_t hi) {
  if (hi <= lo)
    return lo;
  const double u = (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
  int64_t v = (int64_t)floor(exp(log((double)lo) + u * (log((double)hi + 1.0) - log((double)lo))));
  return v < lo ? lo : v > hi ? hi : v;
}

static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* One call's shape. `small_only` for calls inside a graph (they must fit a batch together). */
static void draw_call(plan_ctx_t* p, call_t* c, int small_only) {
  const options_t* o = p->opt;
  const int64_t vec = 16 / (int64_t)mixcomm_dtype_size(p->dtype);
  const int64_t kmin = (8 + vec - 1) / vec, kmax = o->max_elems / vec > kmin ? o->max_elems / vec
                                                                               : kmin;
  memset(c, 0, sizeof *c);
  c->op = p->ops[rng_range(&p->rng, 0, p->nops - 1)];
  c->mode = p->modes[rng_range(&p->rng, 0, p->nmodes - 1)];
  const int64_t cls = rng_range(&p->rng, 0, 9999);
  int64_t rows_unit, k;
  if (cls < 150) { /* 1.5%: zero rows */
    rows_unit = 0;
    k = rng_range(&p->rng, kmin, kmin + 31);
  } else if (cls < 8150 || small_only) { /* 80%: tiny */
    rows_unit = rng_range(&p->rng, 1, 8 < o->max_rows ? 8 : o->max_rows);
    k = rng_range(&p->rng, kmin, kmin + 31 < kmax ? kmin + 31 : kmax);
  } else if (cls < 9650) { /* 15%: medium */
    rows_unit = rng_range(&p->rng, 1, 64 < o->max_rows ? 64 : o->max_rows);
    k = rng_log(&p->rng, kmin, 2048 / vec < kmax ? 2048 / vec : kmax);
  } else if (cls < 9995) { /* 3.45%: large, log-uniform over the whole range */
    rows_unit = rng_log(&p->rng, 1, o->max_rows);
    k = rng_log(&p->rng, kmin, kmax);
  } else { /* 0.05%: the largest shapes */
    rows_unit = rng_range(&p->rng, (o->max_rows + 1) / 2, o->max_rows);
    k = rng_range(&p->rng, (kmax + 1) / 2, kmax);
  }
  c->elems = k * vec;
  c->rows_in = is_scatter(c->op) ? rows_unit * p->dp : rows_unit;
  c->rows_out = is_gather(c->op) ? rows_unit * p->dp : rows_unit;
  const size_t es = mixcomm_dtype_size(p->dtype);
  c->in_bytes = (size_t)c->rows_in * (size_t)c->elems * es;
  c->out_bytes = (size_t)c->rows_out * (size_t)c->elems * es;
  static const unsigned specials[] = {0, 0, 0, 0, 0, REF_SPECIAL_NEG_ZERO, REF_SPECIAL_NEG_ZERO,
                                      REF_SPECIAL_NEG_ZERO, REF_SPECIAL_POISON,
                                      REF_SPECIAL_NEG_ZERO | REF_SPECIAL_POISON};
  c->specials = specials[rng_range(&p->rng, 0, 9)];
  c->null_ptrs = rows_unit == 0 && rng_range(&p->rng, 0, 1) == 1;
  c->seed = p->next_seed++;
}

static void draw_unit(plan_ctx_t* p, unit_t* u, long long calls_left) {
  memset(u, 0, sizeof *u);
  u->stream = (int)rng_range(&p->rng, 0, 1);
  const int graph = calls_left >= 2 && rng_range(&p->rng, 0, 99) < p->opt->graph_percent;
  if (graph) {
    u->graph = 1;
    u->n = (int)rng_range(&p->rng, 2, calls_left < MAX_GROUP ? calls_left : MAX_GROUP);
    u->replays = (int)rng_range(&p->rng, 1, 3);
    for (int i = 0; i < u->n; i++)
      draw_call(p, &u->c[i], 1);
  } else {
    u->n = 1;
    draw_call(p, &u->c[0], 0);
  }
}

/* Place a unit's calls after *in_used / *out_used; 0 if it does not fit the capacity. */
static int place_unit(plan_ctx_t* p, unit_t* u, size_t* in_used, size_t* out_used, size_t cap) {
  size_t in = *in_used, out = *out_used;
  for (int i = 0; i < u->n; i++) {
    call_t* c = &u->c[i];
    /* One call in eight at an offset that is 16-byte but not 256-byte aligned. */
    const size_t skew = rng_range(&p->rng, 0, 7) == 0 ? 16 * (size_t)rng_range(&p->rng, 1, 15) : 0;
    c->in_off = align_up(in, ALIGN) + skew;
    c->out_off = align_up(out, ALIGN) + skew;
    in = c->in_off + c->in_bytes;
    out = c->out_off + c->out_bytes;
  }
  if (in > cap || out > cap)
    return 0;
  *in_used = in;
  *out_used = out;
  return 1;
}

/* Fill b with the next batch; -1 if one unit alone does not fit an empty batch. */
int plan_batch(plan_ctx_t* p, batch_t* b, long long left, size_t cap) {
  const int max_calls = p->opt->batch;
  b->nunits = b->ncalls = 0;
  b->in_used = b->out_used = 0;
  while (b->ncalls < max_calls && left - b->ncalls > 0) {
    unit_t u;
    if (b->have_pending) {
      u = b->pending;
      b->have_pending = 0;
    } else {
      draw_unit(p, &u, left - b->ncalls);
    }
    if ((b->ncalls > 0 && b->ncalls + u.n > max_calls) ||
        !place_unit(p, &u, &b->in_used, &b->out_used, cap)) {
      if (b->nunits == 0)
        return -1;
      b->pending = u;
      b->have_pending = 1;
      break;
    }
    b->units[b->nunits++] = u;
    b->ncalls += u.n;
  }
  return 0;
}

size_t max_call_bytes(const options_t* o, int dp) {
  return (size_t)o->max_rows * (size_t)dp * (size_t)o->max_elems * 4;
}

int plan_init(plan_ctx_t* p, const options_t* o, mixcomm_dtype_t dtype,
              const mixcomm_topology_t* t, const mixcomm_handler_t* h, int dtype_index) {
  memset(p, 0, sizeof *p);
  p->opt = o;
  p->dtype = dtype;
  p->dp = t->dp_size;
  p->rng = o->seed * 0x9E3779B97F4A7C15ull + 0x51A4ull + (uint64_t)dtype_index;
  p->next_seed = o->seed * 1000003ull + (uint64_t)dtype_index * 0x100000000ull;
  for (int op = 0; op < MIXCOMM_NUM_OPS; op++)
    if (mixcomm_topology_op_valid(t, (mixcomm_op_t)op))
      p->ops[p->nops++] = (mixcomm_op_t)op;
  p->modes[p->nmodes++] = MIXCOMM_MODE_DEFAULT;
  for (int m = 0; m < MIXCOMM_NUM_MODES; m++) {
    const int fused = m >= MIXCOMM_MODE_FUSED_OPT_WAITS_MC && m <= MIXCOMM_MODE_FUSED_OPT_BYTES2_UC;
    if ((!fused && !o->all_modes) || m == MIXCOMM_MODE_AUTOTUNE) /* handlers: autotune off */
      continue;
    const int valid = h != NULL ? mixcomm_mode_invalid_reason(h, (mixcomm_mode_t)m) == NULL
                                : mixcomm_topology_mode_valid(t, NULL, (mixcomm_mode_t)m, NULL);
    if (valid)
      p->modes[p->nmodes++] = (mixcomm_mode_t)m;
  }
  return p->nops > 0 ? 0 : -1;
}
