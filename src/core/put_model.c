/* SPDX-License-Identifier: Apache-2.0
 * Cross-node traffic of one rank per call (put_model.h), following the kernels' loops: per CTA
 * and step, each put carries the vectors its receiver reads (the protocol comment of
 * src/nvshmem_plugin/internode.cu), and a put with nothing to carry still sends its signal. */
#include "core/put_model.h"

#include "core/error.h"
#include "core/topology.h"

/* Vectors of a block-sized piece starting at `first` that lie before `end`. */
static int64_t piece(int64_t first, int64_t end, int64_t block) {
  const int64_t n = end - first;
  return n <= 0 ? 0 : n < block ? n : block;
}

static void add(mixcomm__put_count_t* c, int64_t vecs) {
  c->bytes += (uint64_t)vecs * MIXCOMM_VEC_BYTES;
  c->puts++;
}

/* One step of one CTA: [base, end) is what is left of the CTA's range from the step on. */
static void step_puts(const mixcomm_topology_t* t, mixcomm_op_t op, mixcomm_mode_t mode,
                      int64_t base, int64_t end, int64_t block, mixcomm__put_count_t* c) {
  const int I = t->inter_size, node = t->inter_rank, It = t->inter_tp_size, Lt = t->local_tp_size;
  const int mt = t->local_tp_rank, my_itp = t->inter_tp_rank, my_idp = t->inter_dp_rank;
  const int scatter = mixcomm__op_is_scatter(op);
  if (mode == MIXCOMM_MODE_FUSED_OPT_WAITS_UC) {
    /* K packed blocks of the step's valid length to every other node. */
    const int64_t k = mixcomm__put_rows(t, op, mode);
    for (int n = 0; n < I; n++)
      if (n != node)
        add(c, k * piece(base, end, block));
  } else if (mode == MIXCOMM_MODE_FUSED_OPT_BYTES1_UC) {
    /* The owner's partial of its chunk (local tp rank mt) to every other node. */
    for (int n = 0; n < I; n++)
      if (n != node)
        add(c, piece(base + (int64_t)mt * block, end, block));
  } else {
    /* Round 2: partial i, chunk mt + itp(i) * Lt, to node dest(i); round 3: the final chunk,
     * mt + my_itp * Lt, to every node that needs it. */
    const int Np = scatter ? I : It;
    for (int i = 0; i < Np; i++) {
      const int dn = scatter ? i : i + my_idp * It;
      if (dn == node)
        continue;
      const int64_t q = mt + (int64_t)(scatter ? i % It : i) * Lt;
      add(c, piece(base + q * block, end, block));
    }
    const int64_t mine = piece(base + (int64_t)(mt + my_itp * Lt) * block, end, block);
    for (int n = 0; n < I; n++)
      if (n != node && !(scatter && n / It != my_idp))
        add(c, mine);
  }
}

mixcomm_status_t mixcomm__put_model(const mixcomm_topology_t* t, mixcomm_op_t op,
                                    mixcomm_mode_t mode, const mixcomm__geometry_t* g,
                                    mixcomm__put_count_t* out) {
  if (t == NULL || g == NULL || out == NULL)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "put model: NULL argument");
  out->bytes = 0;
  out->puts = 0;
  if (mode != MIXCOMM_MODE_FUSED_OPT_WAITS_UC && mode != MIXCOMM_MODE_FUSED_OPT_BYTES1_UC &&
      mode != MIXCOMM_MODE_FUSED_OPT_BYTES2_UC)
    return mixcomm__error(MIXCOMM_ERR_INVALID_ARGUMENT, "put model: %s is not a fused mode",
                          mixcomm_mode_name(mode) ? mixcomm_mode_name(mode) : "?");
  if (t->inter_size == 1)
    return MIXCOMM_SUCCESS;
  const int64_t per_step = (int64_t)g->chunks * g->block; /* one chunk in WAITS */
  for (int cta = 0; cta < g->grid; cta++) {
    const int64_t begin = (int64_t)cta * g->span;
    const int64_t end = begin + g->span < g->vecs ? begin + g->span : g->vecs;
    for (int s = 0; s < g->steps; s++)
      step_puts(t, op, mode, begin + (int64_t)s * per_step, end, g->block, out);
  }
  return MIXCOMM_SUCCESS;
}
