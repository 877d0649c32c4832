/* SPDX-License-Identifier: Apache-2.0
 *
 * mixcomm: fused GPU collectives for LLM inference with mixed tensor-parallel (TP) and
 * data-parallel (DP) groups. This is the only public header.
 *
 * Conventions
 * - Every function returns mixcomm_status_t (MIXCOMM_SUCCESS = 0) unless it is a pure query.
 *   On failure, mixcomm_last_error() returns a message (per calling thread) saying what failed
 *   and what to do about it. The library never prints (unless logging is switched on), never
 *   calls exit() or abort().
 * - Collective calls (mixcomm_run) only enqueue work on the given CUDA stream; they never
 *   synchronise the host and can be captured into CUDA graphs.
 * - Functions marked COLLECTIVE must be called by every rank of the handler, in the same order.
 * - Every wait on another rank is bounded by the configured timeout, counted from the start of
 *   that wait; a silent or diverging peer gives MIXCOMM_ERR_TIMEOUT or MIXCOMM_ERR_MISMATCH
 *   naming that peer. With the built-in TCP bootstrap, a peer whose process dies is seen within
 *   about a second as a closed connection and gives MIXCOMM_ERR_PEER_LOST naming it.
 */
#ifndef MIXCOMM_H_
#define MIXCOMM_H_

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define MIXCOMM_API
#else
#define MIXCOMM_API __attribute__((visibility("default")))
#endif

#define MIXCOMM_VERSION_MAJOR 0
#define MIXCOMM_VERSION_MINOR 1
#define MIXCOMM_VERSION_PATCH 0
#define MIXCOMM_VERSION_CODE \
  (MIXCOMM_VERSION_MAJOR * 10000 + MIXCOMM_VERSION_MINOR * 100 + MIXCOMM_VERSION_PATCH)

/* Largest number of ranks on one node that the fused kernels support. */
#define MIXCOMM_MAX_LOCAL_SIZE 16
/* Largest dp_size for uneven rows per DP rank (mixcomm_run_v, mixcomm_run_v_device). */
#define MIXCOMM_MAX_DP_SIZE 64

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                               */
/* ------------------------------------------------------------------------------------------ */

#define MIXCOMM_STATUS_MAP(X)                                                                  \
  X(MIXCOMM_SUCCESS, 0, "success")                                                             \
  X(MIXCOMM_ERR_INVALID_ARGUMENT, 1, "invalid argument")                                       \
  X(MIXCOMM_ERR_INVALID_USAGE, 2, "invalid usage (wrong state or order of calls)")            \
  X(MIXCOMM_ERR_UNSUPPORTED, 3, "not supported by this build, topology or hardware")          \
  X(MIXCOMM_ERR_CUDA, 4, "CUDA error")                                                         \
  X(MIXCOMM_ERR_SYSTEM, 5, "system call error")                                               \
  X(MIXCOMM_ERR_NCCL, 6, "NCCL error")                                                         \
  X(MIXCOMM_ERR_NVSHMEM, 7, "NVSHMEM error")                                                   \
  X(MIXCOMM_ERR_BOOTSTRAP, 8, "bootstrap (rank rendezvous) error")                            \
  X(MIXCOMM_ERR_TIMEOUT, 9, "timed out waiting for a peer rank")                              \
  X(MIXCOMM_ERR_MISMATCH, 10, "ranks disagree (configuration or call sequence)")              \
  X(MIXCOMM_ERR_ABORTED, 11, "aborted")                                                        \
  X(MIXCOMM_ERR_OUT_OF_MEMORY, 12, "out of memory")                                           \
  X(MIXCOMM_ERR_INTERNAL, 13, "internal error (a bug in mixcomm)")                           \
  X(MIXCOMM_ERR_PEER_LOST, 14, "a peer rank's connection closed (the process died)")

typedef enum mixcomm_status {
#define MIXCOMM_X_ENUM(name, value, text) name = value,
  MIXCOMM_STATUS_MAP(MIXCOMM_X_ENUM)
#undef MIXCOMM_X_ENUM
  MIXCOMM_NUM_STATUS
} mixcomm_status_t;

/* Short fixed text for a status ("timed out waiting for a peer rank"). Never NULL. */
MIXCOMM_API const char* mixcomm_status_string(mixcomm_status_t status);
/* Enum name of a status ("MIXCOMM_ERR_TIMEOUT"). Never NULL. */
MIXCOMM_API const char* mixcomm_status_name(mixcomm_status_t status);
/* Detailed message of the last failed call made by this thread ("" if none). */
MIXCOMM_API const char* mixcomm_last_error(void);
/* Library version as MIXCOMM_VERSION_CODE of the built library. */
MIXCOMM_API int mixcomm_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Enums: operations, modes, data types (FlashInfer MixedCommHandler's names and values)        */
/* ------------------------------------------------------------------------------------------ */

typedef enum mixcomm_op {
  MIXCOMM_OP_ALLREDUCE = 0,
  MIXCOMM_OP_ALLGATHER = 1,
  MIXCOMM_OP_REDUCESCATTER = 2,
  MIXCOMM_OP_ALLREDUCE_ALLGATHER = 3,
  MIXCOMM_OP_REDUCESCATTER_ALLREDUCE = 4,
  MIXCOMM_NUM_OPS
} mixcomm_op_t;

typedef enum mixcomm_mode {
  MIXCOMM_MODE_DEFAULT = -1, /* "no mode given": autotune if on, else the cost model's pick */
  MIXCOMM_MODE_FUSED_OPT_WAITS_MC = 0,
  MIXCOMM_MODE_FUSED_OPT_WAITS_UC = 1,
  MIXCOMM_MODE_FUSED_OPT_BYTES1_MC = 2,
  MIXCOMM_MODE_FUSED_OPT_BYTES1_UC = 3,
  MIXCOMM_MODE_FUSED_OPT_BYTES2_MC = 4,
  MIXCOMM_MODE_FUSED_OPT_BYTES2_UC = 5,
  MIXCOMM_MODE_NCCL_ONE = 6,
  MIXCOMM_MODE_NCCL_TP_DP = 7,
  MIXCOMM_MODE_AUTOTUNE = 8,
  MIXCOMM_NUM_MODES = 9
} mixcomm_mode_t;

typedef enum mixcomm_dtype {
  MIXCOMM_FLOAT16 = 0,
  MIXCOMM_BFLOAT16 = 1,
  MIXCOMM_FLOAT32 = 2,
  MIXCOMM_NUM_DTYPES
} mixcomm_dtype_t;

/* Names as FlashInfer spells them: "ALLREDUCE", "FUSED_OPT_WAITS_UC", "float16". NULL for an
 * out-of-range value. */
MIXCOMM_API const char* mixcomm_op_name(mixcomm_op_t op);
MIXCOMM_API const char* mixcomm_mode_name(mixcomm_mode_t mode);
MIXCOMM_API const char* mixcomm_dtype_name(mixcomm_dtype_t dtype);
/* Inverse lookups (case-insensitive; dtypes also accept fp16, bf16, fp32, half, float).
 * Return MIXCOMM_ERR_INVALID_ARGUMENT for an unknown name. */
MIXCOMM_API mixcomm_status_t mixcomm_op_from_name(const char* name, mixcomm_op_t* op);
MIXCOMM_API mixcomm_status_t mixcomm_mode_from_name(const char* name, mixcomm_mode_t* mode);
MIXCOMM_API mixcomm_status_t mixcomm_dtype_from_name(const char* name, mixcomm_dtype_t* dtype);
/* Bytes per element (2 or 4); 0 for an invalid dtype. */
MIXCOMM_API size_t mixcomm_dtype_size(mixcomm_dtype_t dtype);

/* ------------------------------------------------------------------------------------------ */
/* Topology: world, node (local) and across-node (inter) ranks, each level split into TP x DP    */
/* ------------------------------------------------------------------------------------------ */

/* Input: the six rank/size fields and optionally the four tp/dp sizes (0 = default).
 * Output of mixcomm_topology_resolve: every field filled. TP varies fastest:
 *   world_rank = inter_rank * local_size + local_rank
 *   local_rank = local_tp_rank + local_dp_rank * local_tp_size   (same at the inter level)
 *   tp_rank = local_tp_rank + inter_tp_rank * local_tp_size
 *   dp_rank = local_dp_rank + inter_dp_rank * local_dp_size */
typedef struct mixcomm_topology {
  int world_rank, world_size;
  int local_rank, local_size;
  int inter_rank, inter_size;
  int local_tp_size, local_dp_size; /* 0 = default */
  int inter_tp_size, inter_dp_size; /* 0 = default */
  /* derived */
  int local_tp_rank, local_dp_rank;
  int inter_tp_rank, inter_dp_rank;
  int tp_rank, tp_size;
  int dp_rank, dp_size;
} mixcomm_topology_t;

/* Check the inputs of *in and fill every derived field into *out (in and out may alias).
 * Defaults per level: neither size given -> tp = level size, dp = 1; one given -> the other
 * is level size / given (must divide); both given -> product must equal the level size.
 * Every violated rule gives MIXCOMM_ERR_INVALID_ARGUMENT and a message naming the values. */
MIXCOMM_API mixcomm_status_t mixcomm_topology_resolve(const mixcomm_topology_t* in,
                                                      mixcomm_topology_t* out);

/* The topology of another world rank of the same job (same sizes). */
MIXCOMM_API mixcomm_status_t mixcomm_topology_for_rank(const mixcomm_topology_t* resolved,
                                                       int world_rank, mixcomm_topology_t* out);

/* Whether op is valid for a resolved topology:
 *   ALLREDUCE: dp_size == 1; ALLGATHER, REDUCESCATTER: tp_size == 1;
 *   ALLREDUCE_ALLGATHER, REDUCESCATTER_ALLREDUCE: tp_size > 1 and dp_size > 1. */
MIXCOMM_API int mixcomm_topology_op_valid(const mixcomm_topology_t* topo, mixcomm_op_t op);

/* What the machine offers; the handler fills it from the hardware, tools may assume one. */
typedef struct mixcomm_caps {
  int multicast;        /* NVLink multicast objects may be used (never in this build) */
  int nccl;             /* NCCL is available and every rank has its own GPU */
  int nvshmem;          /* NVSHMEM support is built in (needed for fused modes across nodes) */
  int autotune;         /* autotune is switched on (use_autotune) */
  int ranks_share_gpu;  /* several ranks of the node use one GPU (NCCL refuses this) */
} mixcomm_caps_t;

/* Capabilities of this build, assuming one GPU per rank and autotune on. */
MIXCOMM_API void mixcomm_caps_default(mixcomm_caps_t* caps);

/* Whether mode is valid for (topology, caps). Returns 1 if valid; 0 if not, and then
 * *reason (if reason is not NULL) points to a static sentence saying why. */
MIXCOMM_API int mixcomm_topology_mode_valid(const mixcomm_topology_t* topo,
                                            const mixcomm_caps_t* caps, mixcomm_mode_t mode,
                                            const char** reason);

/* ------------------------------------------------------------------------------------------ */
/* Bootstrap: how ranks find each other                                                        */
/* ------------------------------------------------------------------------------------------ */

/* A framework fills this from its own process group (all world ranks, world-rank order).
 * allgather: every rank contributes `bytes` bytes from send; recv receives world_size * bytes,
 *   the contribution of rank r at offset r * bytes. Must return 0 on success.
 * barrier: returns 0 once every rank has entered it.
 * Both are called from the thread that calls mixcomm; they should time out rather than hang. */
typedef struct mixcomm_bootstrap {
  void* ctx;
  int (*allgather)(void* ctx, const void* send, void* recv, size_t bytes);
  int (*barrier)(void* ctx);
  /* Optional: called by mixcomm_bootstrap_destroy. */
  void (*destroy)(void* ctx);
  int rank, size; /* this process's world rank and the world size */
} mixcomm_bootstrap_t;

/* The built-in TCP rendezvous. Rank 0 listens at addr:port; the others connect.
 * Fields left empty/zero are taken from the environment:
 *   addr    <- MIXCOMM_ADDR, else MASTER_ADDR, else "127.0.0.1"
 *   port    <- MIXCOMM_PORT, else MASTER_PORT (required: no default)
 *   token   <- MIXCOMM_JOB_TOKEN, else TORCHELASTIC_RUN_ID, else "" (a shared secret: a
 *              process with another token is refused and cannot join)
 *   timeout_ms <- MIXCOMM_BOOTSTRAP_TIMEOUT_MS, else 60000 */
typedef struct mixcomm_tcp_options {
  char addr[256];
  int port;
  char token[128];
  int timeout_ms;
} mixcomm_tcp_options_t;

/* COLLECTIVE. Create the TCP bootstrap (rank in [0, size)). Blocks until every rank has
 * joined or the timeout passes; a rank that never arrives is named in the error. */
MIXCOMM_API mixcomm_status_t mixcomm_bootstrap_tcp_create(const mixcomm_tcp_options_t* options,
                                                          int rank, int size,
                                                          mixcomm_bootstrap_t** out);
/* Release a bootstrap created by mixcomm_bootstrap_tcp_create (or any with a destroy). */
MIXCOMM_API void mixcomm_bootstrap_destroy(mixcomm_bootstrap_t* bootstrap);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */
/* ------------------------------------------------------------------------------------------ */

typedef struct mixcomm_config {
  size_t struct_size; /* sizeof(mixcomm_config_t), set by the initializer */
  int version;        /* MIXCOMM_VERSION_CODE, set by the initializer */
  /* Topology (world_rank ... inter_dp_size; 0 = default for the four tp/dp sizes). */
  int world_rank, world_size;
  int local_rank, local_size;
  int inter_rank, inter_size;
  int local_tp_size, local_dp_size, inter_tp_size, inter_dp_size;
  mixcomm_dtype_t dtype;
  int device;            /* CUDA device ordinal; -1 = the current device */
  int grid_size;         /* CTAs per GPU; 0 = number of SMs */
  int max_block_size;    /* threads per CTA cap; 0 = no cap beyond the kernel's 1024 */
  int min_block_size;    /* default 256 */
  int min_num_steps;     /* default 4 */
  int ib_enable_ibgda;   /* default 1; sets NVSHMEM_IB_ENABLE_IBGDA only if unset, and
                           only where /sys/class/infiniband lists a device */
  int should_init_nvshmem; /* default 1; 0 = the application already started NVSHMEM */
  int use_autotune;      /* default 1 */
  /* Beyond FlashInfer's MixedCommHandler. */
  int timeout_ms;        /* bound on each wait for a peer, from its start; 0 = MIXCOMM_TIMEOUT_MS
                          * or 600000 (10 minutes, as PyTorch's NCCL process groups) */
  const char* autotune_cache_dir; /* NULL = MIXCOMM_CACHE_DIR, else $XDG_CACHE_HOME/mixcomm,
                                     else ~/.cache/mixcomm; "" disables the cache */
} mixcomm_config_t;

#define MIXCOMM_CONFIG_INITIALIZER                                                          \
  {                                                                                         \
    sizeof(mixcomm_config_t), MIXCOMM_VERSION_CODE, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0,           \
        MIXCOMM_BFLOAT16, -1, 0, 0, 256, 4, 1, 1, 1, 0, NULL                                \
  }

/* Fill *config with the defaults (same as MIXCOMM_CONFIG_INITIALIZER; the defaults of
 * FlashInfer's MixedCommHandler where it has the field). */
MIXCOMM_API void mixcomm_config_init(mixcomm_config_t* config);

/* ------------------------------------------------------------------------------------------ */
/* Workspace plan: what a handler will allocate, known before it exists                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct mixcomm_workspace_plan {
  int grid_size;             /* CTAs per GPU the plan is for */
  int max_block_size;        /* largest CTA the kernels use (threads) */
  int ring_slots;            /* depth of the slot ring, reused call after call */
  int vmm_rows;              /* rows of max_block_size 16-byte vectors in one CTA's slot */
  int nvshmem_rows;          /* the same for the symmetric heap (0 on one node) */
  size_t vmm_slot_bytes;     /* one CTA's share of one ring slot in the node workspace */
  size_t vmm_bytes;          /* intra-node workspace per GPU (before granularity rounding);
                                every GPU also maps its local peers' workspaces */
  size_t nvshmem_slot_bytes; /* one CTA's share of one ring slot in the symmetric heap */
  size_t nvshmem_bytes;      /* inter-node symmetric workspace per GPU (0 on one node) */
  size_t control_bytes;      /* per-CTA ring state and error words (ordinary device memory) */
} mixcomm_workspace_plan_t;

/* The workspace for config's topology, dtype, grid and block limits. sm_count is used when
 * config->grid_size is 0; if both are 0 the current device is asked. */
MIXCOMM_API mixcomm_status_t mixcomm_workspace_plan(const mixcomm_config_t* config, int sm_count,
                                                    mixcomm_workspace_plan_t* plan);

/* ------------------------------------------------------------------------------------------ */
/* Handler                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct mixcomm_handler mixcomm_handler_t;

/* COLLECTIVE. Create a handler: resolve and cross-check the topology on all ranks, set up the
 * node workspace (init_virtual_memory), NVSHMEM when there are several nodes (init_nvshmem),
 * NCCL where it can run, and autotune if config->use_autotune. The bootstrap must outlive the
 * handler. */
MIXCOMM_API mixcomm_status_t mixcomm_handler_create(const mixcomm_config_t* config,
                                                    mixcomm_bootstrap_t* bootstrap,
                                                    mixcomm_handler_t** out);

/* COLLECTIVE. Wait for the handler's work, release everything it holds and free it.
 * Safe on NULL. If a peer is dead, local resources are still released and an error says so. */
MIXCOMM_API mixcomm_status_t mixcomm_handler_shutdown(mixcomm_handler_t* handler);

/* The resolved topology, the capabilities found, and the workspace plan in use. */
MIXCOMM_API const mixcomm_topology_t* mixcomm_handler_topology(const mixcomm_handler_t* h);
MIXCOMM_API const mixcomm_caps_t* mixcomm_handler_caps(const mixcomm_handler_t* h);
MIXCOMM_API const mixcomm_workspace_plan_t* mixcomm_handler_plan(const mixcomm_handler_t* h);

/* Valid operations / modes for this handler, in enum order. *count is set to how many there
 * are; at most `capacity` are written to the array (which may be NULL when capacity is 0). */
MIXCOMM_API mixcomm_status_t mixcomm_get_valid_op_list(const mixcomm_handler_t* h,
                                                       mixcomm_op_t* ops, int capacity,
                                                       int* count);
MIXCOMM_API mixcomm_status_t mixcomm_get_valid_mode_list(const mixcomm_handler_t* h,
                                                         mixcomm_mode_t* modes, int capacity,
                                                         int* count);
/* NULL if mode is valid for this handler, else why not. */
MIXCOMM_API const char* mixcomm_mode_invalid_reason(const mixcomm_handler_t* h,
                                                    mixcomm_mode_t mode);

/* COLLECTIVE. End the NVSHMEM that handlers of this process started (should_init_nvshmem).
 * mixcomm keeps it running after their shutdown, for the next handler; call this once no
 * handler uses it any more (MIXCOMM_ERR_INVALID_USAGE otherwise). No-op if mixcomm did not start
 * NVSHMEM. */
MIXCOMM_API mixcomm_status_t mixcomm_nvshmem_finalize(void);

/* COLLECTIVE. Idempotent parts of creation, exposed as MixedCommHandler's methods are. */
MIXCOMM_API mixcomm_status_t mixcomm_init_virtual_memory(mixcomm_handler_t* h);
MIXCOMM_API mixcomm_status_t mixcomm_init_nvshmem(mixcomm_handler_t* h);
/* COLLECTIVE. Measure every valid mode per op and size bucket and agree on the fastest. */
MIXCOMM_API mixcomm_status_t mixcomm_run_autotune(mixcomm_handler_t* h);
/* The mode autotune chose for (op, input rows, elements per row); a fused or NCCL mode.
 * If autotune has not run, the cost model's choice. */
MIXCOMM_API mixcomm_status_t mixcomm_select_autotune_mode(const mixcomm_handler_t* h,
                                                          mixcomm_op_t op, int64_t rows,
                                                          int64_t row_elems,
                                                          mixcomm_mode_t* mode);

/* COLLECTIVE, enqueue-only, CUDA-graph capturable. Run op on x_in (rows x row_elems elements
 * of the handler's dtype, contiguous) into x_out:
 *   ALLREDUCE writes rows rows; the AG-type ops (ALLGATHER, ALLREDUCE_ALLGATHER) write
 *   dp_size*rows rows; the RS-type ops (REDUCESCATTER, REDUCESCATTER_ALLREDUCE) read rows
 *   (divisible by dp_size) and write rows/dp_size rows (README.md has the table).
 * Checked before anything is enqueued: op and mode valid, rows >= 0 (0 is accepted and does
 * nothing), row_elems * element size a multiple of 16 bytes, x_in and x_out 16-byte aligned and
 * not overlapping. mode may be MIXCOMM_MODE_DEFAULT. The current CUDA device must be the
 * handler's (MIXCOMM_ERR_INVALID_USAGE naming both otherwise). Returns an earlier asynchronous
 * error (timeout, mismatch, abort, lost peer) if one was recorded: the handler is then
 * unusable. */
MIXCOMM_API mixcomm_status_t mixcomm_run(mixcomm_handler_t* h, mixcomm_op_t op, const void* x_in,
                                         void* x_out, int64_t rows, int64_t row_elems,
                                         mixcomm_mode_t mode, cudaStream_t stream);

/* ------------------------------------------------------------------------------------------ */
/* Fused epilogue: residual add, RMSNorm and FP8 quantisation in the same call                 */
/* ------------------------------------------------------------------------------------------ */

/* What mixcomm_run_epilogue does to the op's result S (what mixcomm_run writes to x_out), per
 * output row, accumulating in fp32:
 *   P = S + residual_in                     (P = S when residual_in is NULL), rounded to dtype
 *   norm = P / sqrt(mean over the row of P^2 + rms_eps) * rms_gamma
 *   quant = float8 e4m3 of norm / *quant_scale, saturated to +-448 (NaN stays NaN)
 * norm and quant are computed from the dtype-rounded P (what residual_out holds), quant from the
 * fp32 norm (before it is rounded to dtype).
 * Shapes (R = input rows of ALLREDUCE / ALLGATHER / ALLREDUCE_ALLGATHER, output rows of the
 * REDUCESCATTER ops; all rows have row_elems elements; everything in the handler's dtype except
 * quant_out, one byte per element):
 *   ALLREDUCE, REDUCESCATTER, REDUCESCATTER_ALLREDUCE (output rows are this rank's):
 *     residual_in, residual_out, norm_out, quant_out: R rows, like x_out.
 *   ALLGATHER, ALLREDUCE_ALLGATHER (the gather before a TP-sharded MLP):
 *     residual_in: R rows, this rank's, identical on every rank of a TP group (as in engines: the
 *     residual of the TP group with tp rank 0 is the one added); block d of P = block d of S plus
 *     the residual of DP group d; residual_out: R rows = this rank's own block (dp_rank) of P;
 *     norm_out, quant_out: dp_size * R rows, every gathered row.
 * Every output is optional (NULL), but at least one of x_out, residual_out, norm_out, quant_out
 * must be given; norm_out and quant_out need rms_gamma, quant_out needs quant_scale.
 * residual_out may be the same pointer as residual_in (in place); no other buffers may overlap.
 * Every pointer is device memory of the handler's GPU, 16-byte aligned (quant_scale: 4-byte).
 * Every rank of a TP group produces bitwise identical residual_out, norm_out and quant_out, and
 * the same inputs give the same bits on every run.
 * Rounding: for the gather ops tp rank 0 of each DP group contributes round(input + residual_in),
 * so block d of P is round(that + the other contributions) rather than round(round(S) +
 * residual): equal up to one rounding. rms_eps = 0 is allowed (an all-zero row then gives NaN).
 * A call that fails (timeout, abort) leaves every output undefined, an in-place residual too.
 * When quant_out is asked for without norm_out, P is staged in a temporary (cudaMallocAsync on
 * the stream) unless residual_out covers every output row (ALLREDUCE, REDUCESCATTER ops): give
 * norm_out as well to avoid it. */
typedef struct mixcomm_epilogue {
  size_t struct_size;       /* sizeof(mixcomm_epilogue_t), set by the initializer */
  const void* residual_in;  /* NULL: no residual is added */
  void* residual_out;       /* P; NULL: not written */
  const void* rms_gamma;    /* row_elems RMSNorm weights in the handler's dtype */
  float rms_eps;            /* default 1e-6 */
  void* norm_out;           /* RMSNorm(P) in the handler's dtype; NULL: not written */
  void* quant_out;          /* float8 e4m3 (1 byte per element); NULL: not written */
  const float* quant_scale; /* device pointer to one float32: the static per-tensor scale */
} mixcomm_epilogue_t;

#define MIXCOMM_EPILOGUE_INITIALIZER \
  { sizeof(mixcomm_epilogue_t), NULL, NULL, NULL, 1e-6f, NULL, NULL, NULL }

/* Fill *epilogue with the defaults (same as MIXCOMM_EPILOGUE_INITIALIZER): nothing requested. */
MIXCOMM_API void mixcomm_epilogue_init(mixcomm_epilogue_t* epilogue);

/* COLLECTIVE, enqueue-only, CUDA-graph capturable, like mixcomm_run, which it equals when
 * epilogue is NULL or requests nothing. x_out may be NULL when the epilogue writes an output.
 * The fused modes do the epilogue inside the collective kernel; the NCCL modes (and a world of
 * one rank) run it as a kernel of its own after the exchange. For the gather ops, giving x_out
 * together with epilogue outputs runs the collective twice (once for S, once with the residual
 * added). Every rank must make the same call: the same op, shapes, mode and the same set of
 * epilogue outputs. Argument errors are MIXCOMM_ERR_INVALID_ARGUMENT naming the argument. */
MIXCOMM_API mixcomm_status_t mixcomm_run_epilogue(mixcomm_handler_t* h, mixcomm_op_t op,
                                                  const void* x_in, void* x_out, int64_t rows,
                                                  int64_t row_elems,
                                                  const mixcomm_epilogue_t* epilogue,
                                                  mixcomm_mode_t mode, cudaStream_t stream);

/* ------------------------------------------------------------------------------------------ */
/* Uneven rows per DP rank: gather-v and scatter-v                                             */
/* ------------------------------------------------------------------------------------------ */

/* COLLECTIVE, enqueue-only, CUDA-graph capturable. The DP ops with a different number of rows
 * on each DP rank. dp_rows: a host array of dp_size counts (entry d = rows of DP rank d), the
 * same list on every rank; any count may be 0. Rows have row_elems elements of the handler's
 * dtype; blocks are packed in dp order (block d starts after the rows of blocks 0..d-1):
 *   ALLGATHER, ALLREDUCE_ALLGATHER: x_in holds dp_rows[dp_rank] rows; x_out receives
 *     sum(dp_rows) rows, block d (dp_rows[d] rows) = what the equal-size op puts in block d.
 *   REDUCESCATTER, REDUCESCATTER_ALLREDUCE: x_in holds sum(dp_rows) rows; x_out receives
 *     dp_rows[dp_rank] rows = the equal-size op's result for this rank's block.
 * ALLREDUCE has no DP group: MIXCOMM_ERR_INVALID_ARGUMENT (use mixcomm_run).
 * epilogue: NULL, or the fused epilogue of mixcomm_run_epilogue with the shapes above (R = this
 * rank's own rows: residual_in and residual_out hold dp_rows[dp_rank] rows; norm_out and quant_out
 * as many rows as x_out). Every rank must pass the same kind of epilogue.
 * An all-equal list is exactly mixcomm_run_epilogue with rows = dp_rows[0] (gather ops) or
 * dp_size * dp_rows[0] (scatter ops): the same kernels and bits. Otherwise only the real rows
 * move (padding never travels). Modes: the single-node fused modes, FUSED_OPT_WAITS_UC across
 * nodes, and the NCCL modes (grouped send/receive); the two-shot fused modes across nodes
 * (FUSED_OPT_BYTES1_UC, FUSED_OPT_BYTES2_UC) do not take uneven rows (MIXCOMM_ERR_UNSUPPORTED
 * if asked for; DEFAULT and AUTOTUNE pick a mode that does, chosen as for an equal-size call of
 * the same total size, FUSED_OPT_WAITS_UC where the pick was a two-shot mode).
 * Errors before anything is enqueued (MIXCOMM_ERR_INVALID_ARGUMENT naming the value): dp_rows
 * NULL, a negative count, a sum that overflows, the checks of mixcomm_run on the buffers;
 * dp_size > MIXCOMM_MAX_DP_SIZE is MIXCOMM_ERR_UNSUPPORTED. The C call cannot see the length of
 * the array: it reads exactly dp_size entries. A rank whose list differs from its peers' gets
 * MIXCOMM_ERR_MISMATCH (asynchronously, like every cross-rank error) naming the rank that
 * differs, never wrong data. */
MIXCOMM_API mixcomm_status_t mixcomm_run_v(mixcomm_handler_t* h, mixcomm_op_t op,
                                           const void* x_in, void* x_out, const int64_t* dp_rows,
                                           int64_t row_elems, const mixcomm_epilogue_t* epilogue,
                                           mixcomm_mode_t mode, cudaStream_t stream);

/* COLLECTIVE, enqueue-only, the graph form of mixcomm_run_v: the counts are read by the kernel
 * from dp_rows_dev, a device array of dp_size int32 (on the handler's GPU, 4-byte aligned) that
 * may change between replays of a captured graph (write it on the stream before the call). The
 * buffers are sized for max_rows rows per DP rank, the bound given at capture: x_in holds
 * max_rows (gather ops) or dp_size * max_rows rows (scatter ops) of capacity, x_out
 * dp_size * max_rows (gather ops) or max_rows (scatter ops); the rows are written packed exactly
 * as by mixcomm_run_v, the rest of x_out is left as it was. One captured graph serves every list
 * with counts in [0, max_rows]. The geometry (CTAs, steps) is cut for max_rows, so a call costs
 * about what its real rows cost plus a fixed part for max_rows; every rank must pass the same
 * max_rows. A count outside [0, max_rows] is found by the kernel: it writes nothing and records
 * MIXCOMM_ERR_INVALID_ARGUMENT (returned by the next call or mixcomm_handler_async_error; the
 * handler is then unusable like after any asynchronous error); its peers see a MISMATCH.
 * Modes: the fused modes of one node and FUSED_OPT_WAITS_UC across nodes (DEFAULT and AUTOTUNE
 * resolve to one, chosen for the largest call max_rows allows); the NCCL modes need host counts
 * and the two-shot fused modes across nodes take no uneven rows (MIXCOMM_ERR_UNSUPPORTED).
 * An epilogue is supported except in a world of one rank (MIXCOMM_ERR_UNSUPPORTED). Every count
 * equal still runs the uneven kernels (the host cannot see the counts); without an epilogue they
 * give the bits of mixcomm_run in the same fused mode (each output vector sums the same
 * contributions in the same rank order whatever the geometry); with one, the row sums of RMSNorm
 * may round differently (their order follows the geometry). */
MIXCOMM_API mixcomm_status_t mixcomm_run_v_device(mixcomm_handler_t* h, mixcomm_op_t op,
                                                  const void* x_in, void* x_out,
                                                  const int32_t* dp_rows_dev, int64_t max_rows,
                                                  int64_t row_elems,
                                                  const mixcomm_epilogue_t* epilogue,
                                                  mixcomm_mode_t mode, cudaStream_t stream);

/* Output rows of op for `rows` input rows (dp_size*rows for AG-type ops, rows/dp_size for
 * RS-type ops); -1 if rows is invalid for op. */
MIXCOMM_API int64_t mixcomm_output_rows(const mixcomm_handler_t* h, mixcomm_op_t op,
                                        int64_t rows);

/* Asynchronous error recorded by the kernels or by the watch on the peers' connections (never
 * blocks): MIXCOMM_SUCCESS, or the error and, if peer is not NULL, the world rank it concerns
 * (-1 if none); MIXCOMM_ERR_PEER_LOST names the rank whose connection closed. */
MIXCOMM_API mixcomm_status_t mixcomm_handler_async_error(const mixcomm_handler_t* h, int* peer);

/* Thread-safe: make every outstanding and future kernel of the handler stop waiting and
 * return; later calls fail with MIXCOMM_ERR_ABORTED. Shutdown is still required. */
MIXCOMM_API mixcomm_status_t mixcomm_handler_abort(mixcomm_handler_t* h);

/* COLLECTIVE. Release the workspaces' physical memory but keep their addresses, so graphs
 * captured before stay valid after mixcomm_checkpoint_restore. No run in between. */
MIXCOMM_API mixcomm_status_t mixcomm_checkpoint_prepare(mixcomm_handler_t* h);
MIXCOMM_API mixcomm_status_t mixcomm_checkpoint_restore(mixcomm_handler_t* h);

#ifdef __cplusplus
}
#endif

#endif /* MIXCOMM_H_ */
