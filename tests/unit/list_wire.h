/* Many nodes and the wire: valid modes fit the plan, the row bound, the put model, the put
 * fan-out rule (tests/unit/test_wire.c). */
#define TEST_LIST_WIRE(X)          \
  X(wire_valid_modes_fit, 120)     \
  X(wire_mode_row_bound, 10)       \
  X(wire_put_model, 60)            \
  X(wire_put_fanout, 60)
