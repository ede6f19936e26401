/*
 * demo: `--demo`, a replay of the shipped sample feeds (demo/ in the
 * source tree) with their times moved to now, so a fresh daemon shows
 * live data and alerts at once.
 *
 * SAMPLES_DIR holds one folder per format, read in name order:
 *   partner/ (ndjson) -> source "demo-partner"   acled/ -> "demo-acled"
 *   gdelt/            -> "demo-gdelt"            ooni/  -> "demo-ooni"
 *   ioda/             -> "demo-ioda"
 * Every file is parsed once with its format's parser (rv/feed.h).
 *
 * Timeline. Per source, each event keeps its distance to that source's
 * newest event (scaled down to fit RV_DEMO_HISTORY_S when the source
 * spans more; spread evenly over the last hour when it spans less), so
 * the newest event of every source lands at now.
 *   1. History burst, at start: every sample event once at
 *      now - its offset, ids "<id>#cycle0-<run>" (run = start time in s,
 *      so a restart adds fresh events instead of duplicates). The IODA
 *      sample (eight days of BGP signal of six countries every 5 min, with
 *      a two-hour shutdown of SD ending 20 min before its end) gives the
 *      probe series a baseline past the aggregator's default warmup and
 *      an alert at once, with the default 1 h bins too.
 *   2. Live: the non-IODA sample events again, oldest first, at
 *      RV_DEMO_RATE * speed events/s in small batches (every
 *      RV_DEMO_TICK_MS), each with time = now and id "<id>#cycleN-<run>",
 *      N = 1, 2, ... one per pass over the samples, forever. Alongside,
 *      one BGP probe per IODA country every RV_DEMO_PROBE_S / speed
 *      seconds (value = the country's median in the sample, +-3 %), and a
 *      whole-country drop to 10 % that recurs: every
 *      RV_DEMO_DROP_EVERY_S / speed seconds the next country in turn drops
 *      for RV_DEMO_DROP_LEN_S / speed seconds. Event times are always the
 *      wall clock: SPEED scales the pace, not the clock.
 * For the recurring live drops to alert within minutes the aggregator
 * needs short bins (e.g. bin_s 300, allowed_lateness_s 60); with the
 * default 1 h bins a 10-minute drop is too small a share of a bin, and
 * only the history's SD shutdown and the counted series show.
 *
 * Metrics (M may be NULL): rv_demo_events_total{outcome="accepted|duplicate"}.
 * Threads: one replay thread; start/stop from one controlling thread.
 */
#ifndef RV_DEMO_H
#define RV_DEMO_H

#include "rv/err.h"

struct rv_writer;
struct rv_metrics;
struct rv_demo;

#define RV_DEMO_HISTORY_S (8 * 86400) /* longest history laid before now: past the
                                         aggregator's default warmup (168 h) */
#define RV_DEMO_RATE 4.0              /* live sample events per second at speed 1 */
#define RV_DEMO_TICK_MS 250           /* live batch interval */
#define RV_DEMO_PROBE_S 60            /* live probe interval at speed 1 */
#define RV_DEMO_DROP_EVERY_S 300      /* a new country drops this often at speed 1 */
#define RV_DEMO_DROP_LEN_S 600        /* and stays down this long */

/* Loads the samples of SAMPLES_DIR (see above) and starts the replay
 * thread, which writes through W (borrowed; must outlive rv_demo_stop).
 * SPEED > 0 (1 = the pace above). Errors: RV_EINVAL (speed), RV_ENOTFOUND
 * ("demo: no sample events under 'DIR'"), RV_ENOMEM, RV_EIO (thread). */
int rv_demo_start(struct rv_writer *w, const char *samples_dir, double speed,
                  struct rv_metrics *m, struct rv_demo **out, struct rv_errbuf *err);

/* Stops the replay (within one tick, or after the request in flight to
 * the writer commits), joins, frees. Accepts NULL; sets *d to NULL. */
void rv_demo_stop(struct rv_demo **d);

#endif
