/* SPDX-License-Identifier: Apache-2.0
 * Every CPU test: X(name, timeout in seconds). Each area keeps its own list file. */
#ifndef MIXCOMM_TEST_LIST_H_
#define MIXCOMM_TEST_LIST_H_

#include "unit/list_core.h"
#include "unit/list_bootstrap.h"
#include "unit/list_tools.h"
#include "unit/list_tune.h"
#include "unit/list_epilogue.h"
#include "unit/list_inputs.h"
#include "unit/list_wire.h"
#include "unit/list_latency.h"
#include "unit/list_reliability.h"
#include "unit/list_uneven.h"

#define TEST_LIST(X) \
  TEST_LIST_CORE(X)  \
  TEST_LIST_BOOTSTRAP(X) \
  TEST_LIST_TOOLS(X) \
  TEST_LIST_TUNE(X) \
  TEST_LIST_EPILOGUE(X) \
  TEST_LIST_INPUTS(X) \
  TEST_LIST_WIRE(X) \
  TEST_LIST_LATENCY(X) \
  TEST_LIST_RELIABILITY(X) \
  TEST_LIST_UNEVEN(X)

#endif
