/* SPDX-License-Identifier: Apache-2.0
 * Mode selection: size buckets, the cross-rank autotune decision, the on-disk cache of its
 * results, and the cost model used when nothing was measured. Everything here is host-only and
 * GPU-free (the handler supplies the timer), so it is tested on machines without a GPU. */
#ifndef MIXCOMM_TUNE_TUNE_H_
#define MIXCOMM_TUNE_TUNE_H_

#include <stddef.h>
#include <stdint.h>

#include "mixcomm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Buckets: per-rank message bytes 8 KiB * 2^k for k in [0, num_buckets). */
#define MIXCOMM_TUNE_BUCKETS 15
#define MIXCOMM_TUNE_BASE_BYTES 8192ull

typedef mixcomm_mode_t mixcomm__tune_table_t[MIXCOMM_NUM_OPS][MIXCOMM_TUNE_BUCKETS];

/* As FlashInfer's autotune: max(15 - floor(log2(dp_size)), 1) buckets, so dp * the largest bucket stays
 * <= 128 MiB when dp is a power of two (< 256 MiB otherwise). dp_size < 1 counts as 1. */
int mixcomm__tune_num_buckets(int dp_size);
/* Bucket of a per-rank message: round(log2(bytes / 8 KiB)) clamped to [0, num_buckets);
 * ties (exact half-way, which cannot occur for integers except by construction) go down. */
int mixcomm__tune_bucket(uint64_t bytes_per_rank, int num_buckets);
/* 8 KiB * 2^bucket; 0 for a bucket outside [0, MIXCOMM_TUNE_BUCKETS). */
uint64_t mixcomm__tune_bucket_bytes(int bucket);

/* Times one (op, mode, bucket) on this rank, in microseconds. Returns a status. */
typedef mixcomm_status_t (*mixcomm__tune_timer_fn)(void* ctx, mixcomm_op_t op,
                                                   mixcomm_mode_t mode, int bucket, double* us);

/* COLLECTIVE. For every op in ops and bucket, time every mode in modes (same order on every
 * rank), replace each time by its maximum over all ranks (one allgather per op), and choose the
 * fastest; ties go to the earlier mode in `modes`. Every rank ends with the same table. Entries
 * of ops not listed are left unchanged.
 * A timer error, or a time that is NaN, infinite or negative, stops this rank's timing; it still
 * joins the op's allgather (each rank's contribution carries its status), and then every rank
 * returns an error naming the failing rank (preferring one whose failure is not a timeout).
 * Ranks measuring different ops, bucket counts or mode lists get MIXCOMM_ERR_MISMATCH. On any
 * error the table is left untouched. */
mixcomm_status_t mixcomm__tune_measure_and_agree(mixcomm_bootstrap_t* bs, const mixcomm_op_t* ops,
                                                 int nops, const mixcomm_mode_t* modes, int nmodes,
                                                 int num_buckets, mixcomm__tune_timer_fn timer,
                                                 void* ctx, mixcomm__tune_table_t table);

/* Everything that can change the autotune result, as text ("key=value;" pairs). */
typedef struct mixcomm__tune_key {
  char text[1024];
} mixcomm__tune_key_t;

typedef struct mixcomm__tune_key_fields {
  const mixcomm_topology_t* topo; /* resolved: the four tp/dp sizes and sizes */
  mixcomm_dtype_t dtype;
  const char* gpu_name;
  int driver_version;
  int library_version;
  int grid_size, max_block_size, min_block_size, min_num_steps;
  int ranks_share_gpu;
  uint32_t valid_modes_mask; /* bit m set when mode m is valid */
} mixcomm__tune_key_fields_t;

void mixcomm__tune_key(const mixcomm__tune_key_fields_t* f, mixcomm__tune_key_t* key);

/* Cache file path for key: <dir>/autotune-<16 hex digits of a hash of key>.txt, where dir is
 * config_dir if not NULL, else $MIXCOMM_CACHE_DIR, else $XDG_CACHE_HOME/mixcomm, else
 * $HOME/.cache/mixcomm. Returns MIXCOMM_ERR_UNSUPPORTED (cache disabled) when config_dir is ""
 * or no directory can be determined. */
mixcomm_status_t mixcomm__tune_cache_path(const char* config_dir, const mixcomm__tune_key_t* key,
                                          char* path, size_t size);

/* Read a cache file. Returns 1 and fills table[op][0..num_buckets) for every op with
 * (valid_ops_mask bit op) if the file exists, has the exact key, a correct checksum, the same
 * bucket count, and only modes in valid_modes_mask (never AUTOTUNE). Returns 0 otherwise
 * (missing file silently; anything else with a warning in the log) and leaves table untouched:
 * a foreign or corrupt file is never trusted. */
int mixcomm__tune_cache_load(const char* path, const mixcomm__tune_key_t* key,
                             uint32_t valid_ops_mask, uint32_t valid_modes_mask, int num_buckets,
                             mixcomm__tune_table_t table);

/* The checks of mixcomm__tune_cache_load on a file's text[0..len) (no terminating NUL needed;
 * the text is modified while parsing). 1 and out[op][0..num_buckets) filled for the ops of
 * valid_ops_mask if the text is a complete, intact file for exactly this key, bucket count and
 * these modes; else 0 with the reason in why (never empty), and out possibly half written (the
 * load parses into a copy). Never allocates. */
int mixcomm__tune_cache_parse(char* text, size_t len, const mixcomm__tune_key_t* key,
                              uint32_t valid_ops_mask, uint32_t valid_modes_mask, int num_buckets,
                              mixcomm__tune_table_t out, char* why, size_t why_size);

/* The text mixcomm__tune_cache_store writes, in buf[0..*len) (cap bytes). 0, or -1 with the
 * reason as the last error (bad bucket count, key with a newline, a mode that is not a fused
 * or NCCL mode, too small a buffer). */
int mixcomm__tune_cache_format(const mixcomm__tune_key_t* key, uint32_t valid_ops_mask,
                               int num_buckets, const mixcomm__tune_table_t table, char* buf,
                               size_t cap, size_t* len);

/* Write the cache atomically (<path>.tmp.<pid>, fsync, rename), creating missing directories
 * (mode 0700) like mkdir -p. Writes the entries of the ops in valid_ops_mask, which must be
 * fused or NCCL modes. Errors are statuses whose message names the path. The format is in
 * docs/mode-selection.md. */
mixcomm_status_t mixcomm__tune_cache_store(const char* path, const mixcomm__tune_key_t* key,
                                           uint32_t valid_ops_mask, int num_buckets,
                                           const mixcomm__tune_table_t table);

/* Cost model: predicted microseconds of (op, mode) for a per-rank block of `bytes` bytes (input
 * bytes for AR/AG/AR+AG, output bytes for RS/RS+AR; HUGE_VAL for AUTOTUNE or a non-mode), and
 * the valid fused or NCCL mode with the lowest prediction (never AUTOTUNE or MC; ties to the
 * lower enum value; for an op invalid for t: FUSED_OPT_WAITS_UC if valid, else NCCL_ONE).
 * mixcomm__cost_params_default gives the defaults, each overridden by its environment variable
 * (MIXCOMM_COST_*, docs/mode-selection.md) when that holds a valid value; invalid values are
 * ignored with a warning. mixcomm__cost_model_choice reads them once per process. */
typedef struct mixcomm__cost_params {
  double intra_latency_us;  /* one synchronisation round inside a node */
  double intra_gbps;        /* bytes a GPU sends to its node peers per second (GB/s) */
  double inter_latency_us;  /* one round across nodes */
  double inter_gbps;        /* bytes a GPU sends across nodes per second (GB/s) */
  double nccl_latency_us;   /* fixed cost of one NCCL collective */
  double kernel_launch_us;  /* a kernel of its own after NCCL (the epilogue in NCCL modes) */
} mixcomm__cost_params_t;

void mixcomm__cost_params_default(mixcomm__cost_params_t* p);
double mixcomm__cost_predict_us(const mixcomm__cost_params_t* p, const mixcomm_topology_t* t,
                                mixcomm_op_t op, mixcomm_mode_t mode, uint64_t bytes);
mixcomm_mode_t mixcomm__cost_model_choice(const mixcomm_topology_t* t, const mixcomm_caps_t* c,
                                          mixcomm_op_t op, uint64_t bytes);
/* The same for a call with an epilogue (mixcomm_run_epilogue) when `epilogue`: the NCCL modes
 * then pay one more kernel (MIXCOMM_COST_KERNEL_US, default 3 us). */
double mixcomm__cost_predict_epilogue_us(const mixcomm__cost_params_t* p,
                                         const mixcomm_topology_t* t, mixcomm_op_t op,
                                         mixcomm_mode_t mode, uint64_t bytes);
mixcomm_mode_t mixcomm__cost_model_choose(const mixcomm_topology_t* t, const mixcomm_caps_t* c,
                                          mixcomm_op_t op, uint64_t bytes, int epilogue);

#ifdef __cplusplus
}
#endif

#endif
