/* mixcomm-info tests (tests/unit/test_info.c). */
#define TEST_LIST_TOOLS(X)        \
  X(info_json_topologies, 30)     \
  X(info_json_options, 30)        \
  X(info_text_and_help, 30)       \
  X(info_bad_arguments, 30)       \
  X(info_json_python, 60)
