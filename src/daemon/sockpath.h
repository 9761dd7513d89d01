/* Where qvld listens and qvlctl connects when no path is given: one rule
 * for both, documented in qvld(8). */
#ifndef QVLD_SOCKPATH_H
#define QVLD_SOCKPATH_H

/* $QVL_SOCKET, else /run/qvld/qvld.sock for root (systemd's
 * RuntimeDirectory=qvld), else $XDG_RUNTIME_DIR/qvld/qvld.sock, else
 * /tmp/qvld-UID/qvld.sock. malloc'd (NULL: out of memory). */
char *qvld_default_socket(void);

#endif
