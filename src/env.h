/* Developer knobs read from the environment (QVL_PROFILE, QVL_REPACK,
 * QVL_IO_*, ...; every one is in qvlctl(8) ENVIRONMENT). One parser for
 * all of them, so that a value it cannot use is one line on standard
 * error naming the variable and the value, never a silent fallback. Knobs
 * whose value decides correctness (QVL_SIMD) are errors at their reader
 * instead. */
#ifndef QVL_ENV_H
#define QVL_ENV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* NAME as 0 or 1; unset or empty: dflt. Anything else: a warning, dflt. */
bool qvl_env_flag(const char *name, bool dflt);
/* NAME as a decimal integer in [lo, hi]: true and *out set. Unset or empty:
 * false. Anything else: a warning, false (*out untouched, so the caller's
 * default stands). */
bool qvl_env_uint(const char *name, uint64_t lo, uint64_t hi, uint64_t *out);
/* The warning itself, for a knob with its own syntax: "qvl: NAME='value'
 * ignored: expected WANT". Printed once per variable and value however
 * often the knob is read (some are read per tensor). */
void qvl_env_warn(const char *name, const char *value, const char *want);

/* Tests' hold hooks (QVL_STREAM_HOLD, QVL_LATE_HOLD, QVL_EMBED_HOLD): while
 * the file NAME names exists and holds a number <= at (empty or not a
 * number: 0), wait; at most ten minutes, and not once *stop is up (NULL:
 * no stop). Unset or empty NAME: no wait. */
void qvl_env_hold(const char *name, long at, const atomic_bool *stop);
/* The same test without waiting, for a loop that must go on meanwhile
 * (QVL_ENCODE_HOLD: the scheduler's other work): true while the file NAME
 * names exists and holds a number <= at. */
bool qvl_env_held(const char *name, long at);

#endif
