/* Writing the deterministic model directory (testmodel.md §1, §6, §8).
 *
 * model.safetensors is streamed with bounded memory: the data section is cut
 * into fixed chunks (512 KiB by default), and each of `threads` workers takes
 * the next chunk number, generates it into its own buffer and pwrite()s it at
 * its offset. So while one worker is inside write() another is generating:
 * generation and I/O overlap, and memory is threads x chunk whatever the
 * model size (the 2b shape is 4.26 GB). Chunks cross tensor boundaries
 * freely since every element is a pure function of (tensor, index).
 *
 * Every file goes to a temporary name in the output directory and is renamed
 * when complete, so an interrupted run never leaves a short file under the
 * final name. (No fsync: this protects against a crash of qvlctl, not of the
 * machine, and syncing 4 GB would cost more than generating it.) */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkmodel.h"
#include "util.h"

/* Small enough that the chunk is still in L2 when write() copies it into the
 * page cache: on the 2-core Zen4 box, 2b to tmpfs took 4.1-5.3 s with 256 KiB
 * chunks, 4.2-6.7 s with 1 MiB and 7.2-15.8 s with 8 MiB (noisy, shared). */
#define MK_DEFAULT_CHUNK (512u << 10)
#define MK_MAX_THREADS	 256

/* "dir/.name.tmp.PID": hidden, and unique per process. */
static char *tmp_name(const char *dir, const char *name)
{
	char leaf[256];

	snprintf(leaf, sizeof(leaf), ".%s.tmp.%ld", name, (long)getpid());
	return qvl_path_join(dir, leaf);
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Close and rename tmp to dir/name, or remove tmp when rc is already an error. */
static int finish(int fd, char *tmp, const char *dir, const char *name, int rc, struct qvl_err *err)
{
	char *final = qvl_path_join(dir, name);

	if (close(fd) && !rc)
		rc = qvl_errf(err, -errno, "%s: close: %s", tmp, strerror(errno));
	if (!rc && !final)
		rc = qvl_errf(err, -ENOMEM, "out of memory");
	if (!rc && rename(tmp, final))
		rc = qvl_errf(err, -errno, "rename %s to %s: %s", tmp, final, strerror(errno));
	if (rc)
		unlink(tmp);
	free(final);
	free(tmp);
	return rc;
}

static int create_tmp(const char *dir, const char *name, char **tmp, struct qvl_err *err)
{
	int fd;

	*tmp = tmp_name(dir, name);
	if (!*tmp)
		return qvl_errf(err, -ENOMEM, "out of memory");
	fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int rc = qvl_errf(err, -errno, "%s: %s", *tmp, strerror(errno));

		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	return fd;
}

static int write_small(const char *dir, const char *name, const char *text, struct qvl_err *err)
{
	char *tmp;
	int fd, rc;

	if (!text)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", name);
	fd = create_tmp(dir, name, &tmp, err);
	if (fd < 0)
		return fd;
	rc = pwrite_all(fd, text, strlen(text), 0);
	if (rc)
		qvl_errf(err, rc, "%s: write: %s", tmp, strerror(-rc));
	return finish(fd, tmp, dir, name, rc, err);
}

/* Byte-for-byte copy of dir_from/name into dir/name. */
static int copy_file(const char *from_dir, const char *dir, const char *name, struct qvl_err *err)
{
	char *src = qvl_path_join(from_dir, name), *dst = qvl_path_join(dir, name), *tmp = NULL;
	struct stat ss, ds;
	char *buf = NULL;
	int in = -1, fd = -1, rc = 0;
	uint64_t off = 0;

	if (!src || !dst) {
		rc = qvl_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &ss)) {
		rc = qvl_errf(err, -errno, "%s: %s", src, strerror(errno));
		goto out;
	}
	/* copying a file onto itself (-o is the tokenizer dir) would truncate it */
	if (!stat(dst, &ds) && ds.st_dev == ss.st_dev && ds.st_ino == ss.st_ino)
		goto out;
	buf = malloc(1u << 20);
	if (!buf) {
		rc = qvl_errf(err, -ENOMEM, "out of memory");
		goto out;
	}
	fd = create_tmp(dir, name, &tmp, err);
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	for (;;) {
		ssize_t n = read(in, buf, 1u << 20);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = qvl_errf(err, -errno, "%s: read: %s", src, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		rc = pwrite_all(fd, buf, (size_t)n, off);
		if (rc) {
			qvl_errf(err, rc, "%s: write: %s", tmp, strerror(-rc));
			break;
		}
		off += (uint64_t)n;
	}
	rc = finish(fd, tmp, dir, name, rc, err);
out:
	if (in >= 0)
		close(in);
	free(buf);
	free(src);
	free(dst);
	return rc;
}

/* Remove ".NAME.tmp.PID" files (our names only) that a killed earlier run
 * left behind, up to 4 GB each. A PID still alive may be a concurrent run. */
static void remove_stale_tmp(const char *dir)
{
	static const char *const names[] = {
	    "model.safetensors",	"config.json",	  "generation_config.json",
	    "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
	};
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t n = strlen(names[i]);
			const char *p = e->d_name;
			char *end;

			if (p[0] != '.' || strncmp(p + 1, names[i], n) ||
			    strncmp(p + 1 + n, ".tmp.", 5))
				continue;
			long pid = strtol(p + n + 6, &end, 10);

			if (*end || end == p + n + 6 || pid <= 0)
				continue;
			if (kill((pid_t)pid, 0) && errno == ESRCH)
				unlinkat(dirfd(d), p, 0);
		}
	}
	closedir(d);
}

/* mkdir -p */
static int make_dirs(const char *dir, struct qvl_err *err)
{
	char *p = strdup(dir);
	int rc = 0;

	if (!p)
		return qvl_errf(err, -ENOMEM, "out of memory");
	for (char *s = p + 1; !rc; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			rc = qvl_errf(err, -errno, "mkdir %s: %s", p, strerror(errno));
		*s = c;
		if (!c)
			break;
	}
	if (!rc) {
		struct stat st;

		if (stat(dir, &st) || !S_ISDIR(st.st_mode))
			rc = qvl_errf(err, -ENOTDIR, "%s: not a directory", dir);
	}
	free(p);
	return rc;
}

struct stream {
	const struct qvl_mk_plan *plan;
	int fd;
	size_t chunk;
	uint64_t nchunks;
	atomic_uint_fast64_t next;
	atomic_uint_fast64_t written; /* bytes, for the progress report only */
	atomic_int rc;		      /* first error; workers stop when set */
	const struct qvl_mk_opts *o;
};

/* One worker; the caller's (report) also drives the progress callback. */
static void work(struct stream *s, bool report)
{
	void *buf = aligned_alloc(4096, s->chunk);

	if (!buf) {
		int zero = 0;

		atomic_compare_exchange_strong(&s->rc, &zero, -ENOMEM);
		return;
	}
	while (!atomic_load_explicit(&s->rc, memory_order_relaxed)) {
		uint64_t k = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);

		if (k >= s->nchunks)
			break;
		uint64_t off = k * s->chunk;
		size_t len = s->chunk;

		if (len > s->plan->data_bytes - off)
			len = (size_t)(s->plan->data_bytes - off);
		qvl_mk_fill_range(s->plan, off, len, buf);
		int rc = pwrite_all(s->fd, buf, len, s->plan->header_bytes + off);

		if (rc) {
			int zero = 0;

			atomic_compare_exchange_strong(&s->rc, &zero, rc);
		}
		/* relaxed (both sides): a count shown to the user, nothing is
		 * published through it; the join orders the final state */
		uint64_t w =
		    atomic_fetch_add_explicit(&s->written, len, memory_order_relaxed) + len;
		if (report && s->o->progress)
			s->o->progress(s->o->progress_ctx, (double)w, (double)s->plan->data_bytes);
	}
	free(buf);
}

static void *worker(void *arg)
{
	work(arg, false);
	return NULL;
}

static int write_model(const struct qvl_mk_plan *p, const struct qvl_mk_opts *o, int threads,
		       size_t chunk, struct qvl_err *err)
{
	const char *dir = o->out_dir;
	pthread_t tid[MK_MAX_THREADS];
	struct stream s = {.plan = p, .chunk = chunk, .o = o};
	uint64_t total = p->header_bytes + p->data_bytes;
	char *tmp;
	int fd, rc, started = 0;

	fd = create_tmp(dir, "model.safetensors", &tmp, err);
	if (fd < 0)
		return fd;
	/* Reserve the space up front: a full disk fails now, not after 4 GB.
	 * fallocate(2), not posix_fallocate(3), whose fallback on file systems
	 * without it writes every block once more. */
	if (fallocate(fd, 0, 0, (off_t)total) && errno != EOPNOTSUPP && errno != ENOSYS &&
	    errno != EINVAL) {
		rc = qvl_errf(err, -errno, "%s: reserving %llu bytes: %s", tmp,
			      (unsigned long long)total, strerror(errno));
		return finish(fd, tmp, dir, "model.safetensors", rc, err);
	}
	rc = pwrite_all(fd, p->header, p->header_bytes, 0);
	if (rc) {
		qvl_errf(err, rc, "%s: write: %s", tmp, strerror(-rc));
		return finish(fd, tmp, dir, "model.safetensors", rc, err);
	}
	s.fd = fd;
	s.nchunks = (p->data_bytes + chunk - 1) / chunk;
	atomic_init(&s.next, 0);
	atomic_init(&s.rc, 0);
	atomic_init(&s.written, 0);
	for (int i = 1; i < threads; i++) {
		if (pthread_create(&tid[i], NULL, worker, &s))
			break; /* fewer threads is fine: the others take more chunks */
		started++;
	}
	work(&s, true);
	for (int i = 1; i <= started; i++)
		pthread_join(tid[i], NULL);
	rc = atomic_load(&s.rc);
	if (rc)
		qvl_errf(err, rc, "%s: write: %s", tmp, qvl_strerror(rc));
	return finish(fd, tmp, dir, "model.safetensors", rc, err);
}

static int remove_stale(const char *dir, const char *name, struct qvl_err *err)
{
	char *path = qvl_path_join(dir, name);
	int rc = 0;

	if (!path)
		return qvl_errf(err, -ENOMEM, "out of memory");
	if (unlink(path) && errno != ENOENT)
		rc = qvl_errf(err, -errno, "%s: %s", path, strerror(errno));
	free(path);
	return rc;
}

static int default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MK_MAX_THREADS ? MK_MAX_THREADS : (int)n;
}

int qvl_mk_write(const struct qvl_mk_opts *o, struct qvl_mk_result *res, struct qvl_err *err)
{
	static const char *const tok_files[] = {"tokenizer.json", "tokenizer_config.json"};
	struct qvl_mk_plan p;
	char *cfg = NULL, *gen = NULL;
	double t0 = qvl_now(), t1;
	size_t chunk = o->chunk_bytes ? o->chunk_bytes : MK_DEFAULT_CHUNK;
	int threads = o->threads > 0 ? o->threads : default_threads();
	int rc;

	if (threads > MK_MAX_THREADS)
		threads = MK_MAX_THREADS;
	chunk = (chunk + 4095) & ~(size_t)4095;
	rc = qvl_mk_plan_init(&p, o->shape, o->seed, o->vision, err);
	if (rc)
		return rc;
	/* check the tokenizer before generating gigabytes */
	for (size_t i = 0; i < 2; i++) {
		char *path = qvl_path_join(o->tokenizer_dir, tok_files[i]);

		if (!path)
			rc = qvl_errf(err, -ENOMEM, "out of memory");
		else if (access(path, R_OK))
			rc = qvl_errf(err, -errno, "tokenizer file %s: %s", path, strerror(errno));
		free(path);
		if (rc)
			goto out;
	}
	rc = make_dirs(o->out_dir, err);
	if (rc)
		goto out;
	remove_stale_tmp(o->out_dir);
	cfg = qvl_mk_config_json(&p);
	gen = qvl_mk_generation_config_json();
	rc = write_small(o->out_dir, "config.json", cfg, err);
	if (!rc)
		rc = write_small(o->out_dir, "generation_config.json", gen, err);
	if (rc)
		goto out;
	if (o->vision) {
		char *pre = qvl_mk_preprocessor_config_json();

		rc = write_small(o->out_dir, "preprocessor_config.json", pre, err);
		free(pre);
	} else {
		/* a stale one from an earlier run would claim a vision tower */
		rc = remove_stale(o->out_dir, "preprocessor_config.json", err);
	}
	/* we do not write the optional listing (§7): never leave one that lies */
	if (!rc)
		rc = remove_stale(o->out_dir, "tensors.sha256", err);
	for (size_t i = 0; !rc && i < 2; i++)
		rc = copy_file(o->tokenizer_dir, o->out_dir, tok_files[i], err);
	if (rc)
		goto out;
	t1 = qvl_now();
	rc = write_model(&p, o, threads, chunk, err);
	if (rc)
		goto out;
	if (res) {
		res->tensors = p.n;
		res->params = p.params;
		res->header_bytes = p.header_bytes;
		res->file_bytes = p.header_bytes + p.data_bytes;
		res->threads = threads;
		res->model_seconds = qvl_now() - t1;
		res->seconds = qvl_now() - t0;
	}
out:
	free(cfg);
	free(gen);
	qvl_mk_plan_free(&p);
	return rc;
}
