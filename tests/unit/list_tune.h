/* Mode selection tests: buckets, cache, cross-rank agreement, cost model
 * (tests/unit/test_tune_*.c). */
#define TEST_LIST_TUNE(X)                    \
  X(tune_num_buckets, 10)                    \
  X(tune_bucket_mapping, 30)                 \
  X(tune_key_fields, 10)                     \
  X(tune_cache_path_precedence, 10)          \
  X(tune_cache_round_trip, 20)               \
  X(tune_cache_rejects_bad_files, 30)        \
  X(tune_agree_2_ranks, 60)                  \
  X(tune_agree_3_ranks, 60)                  \
  X(tune_agree_4_ranks, 60)                  \
  X(tune_agree_timer_failure, 90)            \
  X(tune_agree_bad_times, 90)                \
  X(tune_agree_mode_list_mismatch, 60)       \
  X(tune_agree_one_rank_and_arguments, 10)   \
  X(tune_cost_model, 30)                     \
  X(tune_cost_model_env, 30)
