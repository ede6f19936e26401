/*
 * links: the ZeroMQ endpoints and message shapes between stages inside
 * rightsviewd. All stages share one zmq context; each socket is created,
 * used and closed by one thread.
 *
 * RV_EP_COMMITS  PUB by the writer thread, after each durable commit:
 *                one frame of 24 bytes, three u64 big-endian:
 *                first_seq, last_seq (first > last: no new events),
 *                last_alert_seq.
 * RV_EP_UPDATES  PUB by the aggregator, two frames:
 *                ["alert", alert JSON] after the alert is durable,
 *                ["cell", cell JSON] for a changed country x violation cell.
 */
#ifndef RV_LINKS_H
#define RV_LINKS_H

#include <stdint.h>

#define RV_EP_COMMITS "inproc://rv-commits"
#define RV_EP_UPDATES "inproc://rv-updates"

static inline void rv_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static inline uint64_t rv_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
