#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int qvl_map_file(struct qvl_map *m, const char *path, struct qvl_err *err)
{
	struct stat st;
	int fd, rc;

	m->data = NULL;
	m->size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qvl_errf(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return qvl_errf(err, rc, "%s: cannot stat: %s", path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return qvl_errf(err, -EINVAL, "%s: not a regular file", path);
	}
	m->size = (size_t)st.st_size;
	if (m->size == 0) {
		/* mmap refuses length 0; give callers a valid pointer anyway */
		m->data = MAP_FAILED;
		close(fd);
		m->data = NULL;
		return 0;
	}
	m->data = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
	rc = m->data == MAP_FAILED ? -errno : 0;
	close(fd);
	if (rc) {
		m->data = NULL;
		return qvl_errf(err, rc, "%s: cannot map %zu bytes: %s", path, m->size,
				strerror(-rc));
	}
	return 0;
}

void qvl_unmap(struct qvl_map *m)
{
	if (m->data && m->size)
		munmap(m->data, m->size);
	m->data = NULL;
	m->size = 0;
}

void *qvl_huge_alloc(size_t bytes)
{
	const size_t huge = (size_t)2 << 20;
	void *p;

	if (bytes > SIZE_MAX - huge)
		return NULL;
	bytes = (bytes + huge - 1) & ~(huge - 1);
	if (!(p = aligned_alloc(huge, bytes)))
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, bytes, MADV_HUGEPAGE); /* a hint: failure changes nothing */
#endif
	return p;
}

int qvl_read_file(const char *path, size_t max_bytes, char **out, size_t *len,
		  struct qvl_err *err)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qvl_errf(err, -errno, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return qvl_errf(err, -EINVAL, "%s: not a regular file", path);
	}
	if ((uint64_t)st.st_size > max_bytes) {
		close(fd);
		return qvl_errf(err, -EFBIG, "%s: %" PRIu64 " bytes is over the limit of %zu",
				path, (uint64_t)st.st_size, max_bytes);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int rc = n < 0 ? -errno : -EIO;
			free(buf);
			close(fd);
			return qvl_errf(err, rc, "%s: read failed after %zu bytes", path, got);
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

int qvl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int qvl_parse_u64(const char *s, uint64_t *out)
{
	const char *p = s;
	char *end;
	int base = 10;

	if (!s || !*s)
		return -EINVAL;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
		if (!*p)
			return -EINVAL;
	}
	for (const char *q = p; *q; q++) {
		int okc = base == 16 ? ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
					(*q >= 'A' && *q <= 'F'))
				     : (*q >= '0' && *q <= '9');
		if (!okc)
			return -EINVAL;
	}
	errno = 0;
	*out = strtoull(p, &end, base);
	if (errno || *end)
		return -EINVAL;
	return 0;
}

int qvl_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

double qvl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t qvl_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

char *qvl_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}
