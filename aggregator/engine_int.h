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

/* Whether late events are logged (rate-limited warnings; on by default).
 * The stage's rebuild turns it off: they were logged when they arrived. */
void rv_agg_engine_set_log_late(struct rv_agg_engine *e, bool on);

/* ------------------------------------------------------------ pipe.c */

/* Reading and aggregating on two threads: rv_agg_pipe_run starts PRODUCE
 * on a thread of its own, which reads events from wherever it likes and
 * hands each to rv_agg_pipe_put in the order the engine must see them;
 * the calling thread pushes them into E (rv_agg_engine_push_view) in that
 * order, a chunk at a time, so the results are those of one thread doing
 * both. rv_agg_pipe_put copies the view's strings (the producer's view
 * may die right after the call); it returns 1 when the consumer has
 * stopped (an engine error, or out of memory), and PRODUCE should then
 * return. PRODUCE returns RV_OK or an error with ERR set. When no thread
 * can be started, PRODUCE runs on the calling thread and each event goes
 * straight into E. Returns the first error of either side (ERR set).
 * E's sink is called on the calling thread. */
struct rv_agg_pipe;
typedef int (*rv_agg_produce_fn)(struct rv_agg_pipe *pp, void *arg, struct rv_errbuf *err);
int rv_agg_pipe_put(struct rv_agg_pipe *pp, uint64_t seq, const struct rv_event_view *ev);
int rv_agg_pipe_run(struct rv_agg_engine *e, rv_agg_produce_fn produce, void *arg,
                    struct rv_errbuf *err);

#endif
