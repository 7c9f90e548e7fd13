/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * clock.h - the one monotonic clock every part of csvfs measures time on.
 *
 * Leases, deadlines, time-outs and back-offs are all CLOCK_MONOTONIC:
 * wall-clock steps (NTP, an operator's date) must never end a lease early
 * or extend it.  Condition variables that wait on these deadlines are set
 * up with pthread_condattr_setclock(CLOCK_MONOTONIC).
 */
#ifndef CSVFS_CLOCK_H
#define CSVFS_CLOCK_H

#include <stdint.h>
#include <time.h>

#define CV_NS_PER_MS 1000000ull
#define CV_NS_PER_S 1000000000ull

static inline uint64_t cv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * CV_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline uint64_t cv_now_ms(void)
{
	return cv_now_ns() / CV_NS_PER_MS;
}

/* The timespec of monotonic time ns (for pthread_cond_timedwait). */
static inline struct timespec cv_timespec_of(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / CV_NS_PER_S),
			       .tv_nsec = (long)(ns % CV_NS_PER_S) };

	return ts;
}

/* The monotonic timespec ms milliseconds from now. */
static inline struct timespec cv_deadline_ms(uint64_t ms)
{
	return cv_timespec_of(cv_now_ns() + ms * CV_NS_PER_MS);
}

/* Milliseconds left before deadline d (0 when past). */
static inline int64_t cv_ms_left(const struct timespec *d)
{
	uint64_t at = (uint64_t)d->tv_sec * CV_NS_PER_S + (uint64_t)d->tv_nsec;
	uint64_t now = cv_now_ns();

	return at > now ? (int64_t)((at - now) / CV_NS_PER_MS) : 0;
}

#endif /* CSVFS_CLOCK_H */
