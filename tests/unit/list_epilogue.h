/* Fused epilogue tests: initializer, argument checks, row geometry, cost model
 * (tests/unit/test_epilogue.c). */
#define TEST_LIST_EPILOGUE(X)      \
  X(epilogue_initializer, 10)      \
  X(epilogue_validate, 10)         \
  X(epilogue_geometry_rows, 60)    \
  X(epilogue_cost_model, 10)
