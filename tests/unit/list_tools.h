/* mixcomm-info tests (tests/unit/test_info.c), mixcomm-perf's GPU-free ones
 * (tests/unit/test_perf_cli.c), mixcomm-soak's dry run (tests/unit/test_soak_cli.c) and those
 * of the pieces the tools share (tests/unit/test_tools_common.c). */
#define TEST_LIST_TOOLS(X)        \
  X(info_json_topologies, 30)     \
  X(info_json_options, 30)        \
  X(info_text_and_help, 30)       \
  X(info_bad_arguments, 30)       \
  X(info_write_failure, 30)       \
  X(info_json_python, 60)         \
  X(perf_dry_run_refuses, 30)     \
  X(perf_dry_run_accepts, 30)     \
  X(perf_without_driver, 60)      \
  X(soak_dry_run, 60)             \
  X(tools_args_int_list, 30)      \
  X(tools_args_pairs, 30)         \
  X(tools_spawn_children, 30)     \
  X(tools_spawn_children_unseen, 30) \
  X(tools_run_ranks_statuses, 30) \
  X(tools_spawn_ranks, 60)
