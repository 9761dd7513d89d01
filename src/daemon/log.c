/* qvld's log (see log.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"

static int log_fd = 2, log_level = LOG_INFO_;
static char log_path[4096];

static int open_file(void)
{
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

int qvld_log_open(const char *path, int level)
{
	log_level = level;
	if (!path || !*path) {
		log_fd = 2;
		log_path[0] = 0;
		return 0;
	}
	snprintf(log_path, sizeof(log_path), "%s", path);
	int fd = open_file();
	if (fd < 0)
		return fd;
	log_fd = fd;
	return 0;
}

int qvld_log_reopen(void)
{
	if (!log_path[0])
		return 0;
	int fd = open_file();
	if (fd < 0)
		return fd;
	/* dup2 swaps the descriptor atomically for concurrent writers */
	dup2(fd, log_fd);
	close(fd);
	return 0;
}

bool qvld_log_on_stderr(void)
{
	return log_fd == 2;
}

void qvld_log_detach_stderr(void)
{
	int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (nul < 0)
		return;
	dup2(nul, 2);
	close(nul);
}

void qvld_log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

void qvld_log(int level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	char line[2048];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ qvld[%d] %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, (int)getpid(), names[level & 3]);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	ssize_t w = write(log_fd, line, (size_t)n);
	(void)w;
}
