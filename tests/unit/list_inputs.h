/* Bytes from outside: hostile peers of the TCP bootstrap, the fd exchange's messages, the
 * environment, cache files and the tools' numbers (tests/unit/test_bootstrap_hostile.c,
 * tests/unit/test_inputs.c; regression tests of the fuzzing findings, tests/fuzz). */
#define TEST_LIST_INPUTS(X)                \
  X(bootstrap_tcp_judge_hello, 10)         \
  X(bootstrap_tcp_wire_messages, 10)       \
  X(bootstrap_tcp_connection_flood, 30)    \
  X(bootstrap_tcp_fake_root, 40)           \
  X(bootstrap_tcp_env_strict, 10)          \
  X(bootstrap_fdx_messages, 10)            \
  X(core_env_numbers, 10)                  \
  X(core_env_kernel_timeout, 15)           \
  X(core_log_file_name, 10)                \
  X(tune_cache_special_files, 20)          \
  X(tune_cache_reasons_printable, 20)      \
  X(tune_cache_path_printable, 10)         \
  X(tune_cache_parse_bounds, 10)           \
  X(tune_cost_model_env_bounds, 15)        \
  X(tools_perf_strict_numbers, 30)         \
  X(tools_spawn_launcher_env, 15)
