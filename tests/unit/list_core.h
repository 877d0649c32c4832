/* Core tests: topology, modes, plan, validation, names (tests/unit/test_core_*.c). */
#define TEST_LIST_CORE(X)           \
  X(core_topology_all_ranks, 60)    \
  X(core_topology_for_rank, 60)     \
  X(core_topology_errors, 10)       \
  X(core_ops_valid, 10)             \
  X(core_modes_caps_default, 10)    \
  X(core_modes_sweep, 30)           \
  X(core_names, 10)                 \
  X(core_status_strings, 10)        \
  X(core_config_initializer, 10)    \
  X(core_plan_layout, 10)           \
  X(core_plan_node_count, 10)       \
  X(core_plan_invalid, 10)          \
  X(core_geometry_random, 60)       \
  X(core_geometry_invalid, 10)      \
  X(core_validate_op, 10)           \
  X(core_validate_shapes, 10)       \
  X(core_validate_pointers, 10)     \
  X(core_validate_overflow, 10)
