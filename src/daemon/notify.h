/* systemd's readiness protocol without libsystemd: one datagram per state
 * change to $NOTIFY_SOCKET (a path, or '@' for the abstract namespace), as in
 * systemd's man/notify-selfcontained-example.c. The protocol is documented
 * as stable; doing it ourselves keeps qvld free of a libsystemd dependency
 * (Debian's libsystemd-dev is not a build requirement) and costs 40 lines.
 * Nothing is sent when NOTIFY_SOCKET is unset. */
#ifndef QVLD_NOTIFY_H
#define QVLD_NOTIFY_H

/* "READY=1", "STOPPING=1", "STATUS=...". 0, or -errno (logged by the caller). */
int qvld_notify(const char *state);

#endif
