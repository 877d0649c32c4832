/* Uneven rows per DP rank, host side: argument checks, geometry coverage, kernel-argument size,
 * mode choice (tests/unit/test_uneven.c). */
#define TEST_LIST_UNEVEN(X)        \
  X(uneven_validate_op, 10)        \
  X(uneven_validate_rows, 10)      \
  X(uneven_validate_buffers, 10)   \
  X(uneven_geometry_covers, 60)    \
  X(uneven_mode_choice, 10)        \
  X(uneven_public_api, 10)
