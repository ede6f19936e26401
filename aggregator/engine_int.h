/*
 * engine_int: what the aggregator's files share besides rv/agg.h.
 */
#ifndef RV_AGG_ENGINE_INT_H
#define RV_AGG_ENGINE_INT_H

#include <stdint.h>

#include "rv/agg.h"
#include "rv/event.h"

/* rv_agg_engine_push for a borrowed view (rv_store_read_log_view): the
 * same engine, the same results; nothing of EV is kept past the call.
 * rv_agg_engine_push is this on a view of its event. Errors: RV_ENOMEM. */
int rv_agg_engine_push_view(struct rv_agg_engine *e, uint64_t seq, const struct rv_event_view *ev);

#endif
