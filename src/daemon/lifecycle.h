/* The parts of qvld's life outside serving: claiming the socket (one daemon
 * per socket; a stale socket from a crash replaced), the pid file, and
 * daemonizing with the parent waiting for the child's verdict so that
 * `qvld` exits 0 only once the daemon serves. */
#ifndef QVLD_LIFECYCLE_H
#define QVLD_LIFECYCLE_H

#include "err.h"

/* Take SOCKET.lock (flock, held for the process's life: two daemons starting
 * at once cannot both pass), then probe the socket: connect() succeeding
 * means another daemon serves it (-EADDRINUSE); ECONNREFUSED means a stale
 * socket, which is removed (*stale = 1). Creates the socket's directory. */
int qvld_socket_claim(const char *path, int *lock_fd, int *stale, struct qvl_err *err);

int qvld_pidfile_write(const char *path, struct qvl_err *err);

/* Fork; the parent waits until the child calls qvld_daemon_ready(0) (exit 0)
 * or reports an error (prints it, exit 1). Returns in the child only. */
int qvld_daemonize(struct qvl_err *err);
/* In the child: tell the waiting parent (no-op when not daemonized). */
void qvld_daemon_ready(int rc, const char *msg);

#endif
