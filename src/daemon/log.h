/* qvld's log: one line per event, "2026-12-04T20:30:01.123Z qvld[PID] LEVEL message",
 * to stderr (the journal under systemd) or a file that SIGHUP reopens (for
 * logrotate). The level is checked before formatting. Thread-safe: each line
 * is one write(2). */
#ifndef QVLD_LOG_H
#define QVLD_LOG_H

#include <stdbool.h>

enum { LOG_ERR_ = 0, LOG_WARN_ = 1, LOG_INFO_ = 2, LOG_DEBUG_ = 3 };

/* path NULL: stderr. Returns 0 or -errno. */
int qvld_log_open(const char *path, int level);
/* Reopen the file (after SIGHUP); keeps the old one on failure. */
int qvld_log_reopen(void);
void qvld_log_close(void);
/* Whether lines go to stderr (no log file). */
bool qvld_log_on_stderr(void);
/* Point stderr at /dev/null (a daemonized qvld once it is ready). */
void qvld_log_detach_stderr(void);
void qvld_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   qvld_log(LOG_ERR_, __VA_ARGS__)
#define log_warn(...)  qvld_log(LOG_WARN_, __VA_ARGS__)
#define log_info(...)  qvld_log(LOG_INFO_, __VA_ARGS__)
#define log_debug(...) qvld_log(LOG_DEBUG_, __VA_ARGS__)

#endif
