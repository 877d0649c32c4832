/* Lost peers, agreement on failures, device checks (tests/unit/test_reliability.c). */
#define TEST_LIST_RELIABILITY(X)               \
  X(peer_watch_nonroot_killed, 20)             \
  X(peer_watch_root_killed, 20)                \
  X(peer_watch_killed_during_collective, 30)   \
  X(peer_watch_collectives_undisturbed, 30)    \
  X(peer_watch_nothing_to_watch, 10)           \
  X(bs_agree_all_succeed, 15)                  \
  X(bs_agree_one_fails, 15)                    \
  X(bs_agree_failure_is_prompt, 20)            \
  X(current_device_check, 5)
