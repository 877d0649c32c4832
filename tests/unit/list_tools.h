/* mixcomm-info tests (tests/unit/test_info.c) and mixcomm-perf's GPU-free ones
 * (tests/unit/test_perf_cli.c). */
#define TEST_LIST_TOOLS(X)        \
  X(info_json_topologies, 30)     \
  X(info_json_options, 30)        \
  X(info_text_and_help, 30)       \
  X(info_bad_arguments, 30)       \
  X(info_write_failure, 30)       \
  X(info_json_python, 60)         \
  X(perf_dry_run_refuses, 30)     \
  X(perf_dry_run_accepts, 30)     \
  X(perf_without_driver, 60)
