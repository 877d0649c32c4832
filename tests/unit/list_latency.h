/* Launch-shape tests for small calls: the per-CTA floor of the geometry
 * (tests/unit/test_latency_geometry.c). */
#define TEST_LIST_LATENCY(X)     \
  X(latency_geometry_cases, 10)  \
  X(latency_geometry_floor, 30)
