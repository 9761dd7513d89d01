/* Socket claim, pid file, daemonizing (see lifecycle.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/lifecycle.h"
#include "daemon/log.h"

static int mkdirs(const char *path, mode_t mode)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int qvld_socket_claim(const char *path, int *lock_fd, int *stale, struct qvl_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char lock[4200], dir[4096];
	int fd, rc;

	*stale = 0;
	*lock_fd = -1;
	if (strlen(path) >= sizeof(sa.sun_path))
		return qvl_errf(err, -ENAMETOOLONG, "socket %s: path longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		rc = mkdirs(dir, 0755);
		if (rc < 0)
			return qvl_errf(err, rc, "socket directory %s: %s", dir, strerror(-rc));
	}
	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return qvl_errf(err, -errno, "%s: %s", lock, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "?";
		ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[r > 0 ? r : 1] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(fd);
		return qvl_errf(err, -EADDRINUSE,
				"socket %s: another qvld (pid %s) holds %s; stop it first", path,
				pid, lock);
	}
	char pidbuf[32];
	int pl = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pidbuf, (size_t)pl, 0) != pl) {
		/* the pid is only for the message above */
	}
	*lock_fd = fd;

	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return qvl_errf(err, -errno, "socket: %s", strerror(errno));
	rc = connect(s, (struct sockaddr *)&sa, sizeof(sa));
	int e = errno;
	close(s);
	if (rc == 0)
		return qvl_errf(err, -EADDRINUSE,
				"socket %s: another process is serving it (not a qvld holding "
				"%s)",
				path, lock);
	if (e == ECONNREFUSED) {
		/* nobody listens: a crashed daemon's socket */
		if (unlink(path) < 0 && errno != ENOENT)
			return qvl_errf(err, -errno, "stale socket %s: %s", path, strerror(errno));
		*stale = 1;
	} else if (e != ENOENT) {
		return qvl_errf(err, -e, "socket %s: %s", path, strerror(e));
	}
	return 0;
}

int qvld_pidfile_write(const char *path, struct qvl_err *err)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return qvl_errf(err, -errno, "pidfile %s: %s", tmp, strerror(errno));
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return qvl_errf(err, -errno, "pidfile %s: %s", path, strerror(errno));
	return 0;
}

static int ready_fd = -1;

int qvld_daemonize(struct qvl_err *err)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return qvl_errf(err, -errno, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		return qvl_errf(err, -errno, "fork: %s", strerror(errno));
	if (pid > 0) {
		char msg[1024];
		ssize_t n, tot = 0;
		close(p[1]);
		while ((n = read(p[0], msg + tot, sizeof(msg) - 1 - (size_t)tot)) > 0)
			tot += n;
		msg[tot] = 0;
		if (tot > 0 && msg[0] == '0') {
			if (tot > 1)
				fprintf(stderr, "qvld: %s\n", msg + 1);
			_exit(0);
		}
		if (tot > 1)
			fprintf(stderr, "qvld: %s\n", msg + 1);
		else
			fprintf(stderr, "qvld: the daemon exited during startup\n");
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	int nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
		if (nul > 2)
			close(nul);
	}
	return 0;
}

void qvld_daemon_ready(int rc, const char *msg)
{
	char buf[1024];
	int n;

	if (ready_fd < 0)
		return;
	if (rc == 0) {
		/* Detach stderr too: the caller's terminal or pipe must not stay
		 * open in a resident process (a `qvld | tail` would never end). */
		if (qvld_log_on_stderr() && !msg)
			msg = "warning: daemonized without --log-file: the log is discarded "
			      "(give --log-file, or --foreground under systemd)";
		qvld_log_detach_stderr();
	}
	n = snprintf(buf, sizeof(buf), "%c%s", rc == 0 ? '0' : '1', msg ? msg : "");
	ssize_t w = write(ready_fd, buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1));
	(void)w;
	close(ready_fd);
	ready_fd = -1;
}
