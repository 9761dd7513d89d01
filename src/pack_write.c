/* qvlctl pack: any model qvl opens (Hugging Face directory, GGUF text +
 * mmproj) written as one pack (pack.h, qvl-pack(5)). The layout is planned
 * first (every shard's and tensor's offset); then the shards are streamed
 * through one bounded buffer, each shard's CRC-64 computed as its bytes go
 * out; the table and header, which hold the CRCs, are written last, and the
 * file is renamed into place only when complete. Memory: the write buffer,
 * one row of f32 when converting, and the source pages of the tensor being
 * copied (released every 4 MiB). */
#define _GNU_SOURCE
#include "pack.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert.h"
#include "gguf.h"
#include "gguf_write.h"
#include "nvme.h"
#include "util.h"

#define WBUF (4u << 20)

struct item {
	const struct qvl_tensor *t;
	enum qvl_dtype out;
	uint64_t nbytes, rank, off;
	uint32_t shard;
	char shard_name[32];
};

struct pw {
	const struct pack_opts *o;
	struct qvl_model *m;
	struct qvl_err *err;
	struct item *it;
	size_t n;
	struct pack_shard *sh;
	uint32_t nsh;
	uint8_t *meta, *table;
	uint64_t meta_len, table_len, data_off, file_bytes, payload;
	int fd;
	char *tmp;
	/* the write buffer */
	uint8_t *buf;
	size_t used;
	uint64_t pos, crc, done;
	float *row;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->t->name, y->t->name);
}

/* The weight matrices take --type; norms, biases and embeddings of the
 * vision tower (read widened to f32) keep the source's type. */
static enum qvl_dtype out_type(const struct pack_opts *o, const struct qvl_tensor *t)
{
	const struct qvl_dtype_info *di = qvl_dtype_info((enum qvl_dtype)o->type);
	size_t n = strlen(t->name);

	if (o->type < 0 || !di || t->ndim != 2 || n < 7 || strcmp(t->name + n - 7, ".weight") ||
	    strstr(t->name, "pos_embed") || t->shape[1] % di->blk)
		return t->dtype;
	return (enum qvl_dtype)o->type;
}

static int plan(struct pw *w)
{
	uint64_t pos;

	w->n = w->m->ntensors;
	w->it = calloc(w->n, sizeof(*w->it));
	w->sh = calloc(w->n, sizeof(*w->sh));
	if (!w->it || !w->sh)
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < w->n; i++) {
		struct item *x = &w->it[i];
		bool ok;

		x->t = &w->m->tensors[i];
		x->out = out_type(w->o, x->t);
		x->nbytes = qvl_dtype_bytes(x->out, x->t->nelem, &ok);
		if (!ok)
			return qvl_errf(w->err, -EINVAL,
					"%s: tensor '%s': %" PRIu64 " values of %s", w->o->model,
					x->t->name, x->t->nelem, qvl_dtype_name(x->out));
		pack_shard_of(x->t->name, x->shard_name, sizeof(x->shard_name), &x->rank);
	}
	qsort(w->it, w->n, sizeof(*w->it), cmp_item);
	for (size_t i = 0; i < w->n; i++) {
		struct item *x = &w->it[i];
		struct pack_shard *s = w->nsh ? &w->sh[w->nsh - 1] : NULL;

		if (!s || strcmp(s->name, x->shard_name)) {
			s = &w->sh[w->nsh++];
			if (!(s->name = strdup(x->shard_name)))
				return qvl_errf(w->err, -ENOMEM, "out of memory");
		}
		x->shard = w->nsh - 1;
		x->off = (s->len + PACK_TENSOR_ALIGN - 1) / PACK_TENSOR_ALIGN * PACK_TENSOR_ALIGN;
		s->len = x->off + x->nbytes;
		w->payload += x->nbytes;
	}
	pos = w->data_off;
	for (uint32_t i = 0; i < w->nsh; i++) {
		w->sh[i].off = pos;
		pos += (w->sh[i].len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
	}
	w->file_bytes = pos;
	return 0;
}

/* ---- metadata ------------------------------------------------------------ */

static int meta_add(struct pw *w, uint32_t kind, const void *p, uint64_t len)
{
	uint64_t sz = 16 + (len + 7) / 8 * 8;
	uint8_t *nm = realloc(w->meta, w->meta_len + sz);

	if (!nm)
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	w->meta = nm;
	memset(nm + w->meta_len, 0, sz);
	pack_put(nm + w->meta_len, kind, 4);
	pack_put(nm + w->meta_len + 8, len, 8);
	memcpy(nm + w->meta_len + 16, p, len);
	w->meta_len += sz;
	return 0;
}

/* A GGUF with no tensors holding the source GGUF's tokenizer.* keys. */
static int meta_tok_gguf(struct pw *w)
{
	const struct gguf_file *g = w->m->gguf_text;
	struct gguf_w gw;
	uint8_t *b = NULL;
	off_t len;
	int rc, fd = memfd_create("qvl-pack-tokenizer", MFD_CLOEXEC);

	if (fd < 0)
		return qvl_errf(w->err, -errno, "memfd_create: %s", strerror(errno));
	gguf_w_init(&gw);
	for (size_t i = 0; i < gguf_n_kv(g); i++)
		if (!strncmp(gguf_kv_key(g, i), "tokenizer.", 10))
			gguf_w_copy_kv(&gw, g, i);
	rc = gguf_w_write_header(&gw, fd, "tokenizer", w->err);
	len = rc ? 0 : lseek(fd, 0, SEEK_CUR);
	if (!rc && (len <= 0 || !(b = malloc((size_t)len)) || pread(fd, b, (size_t)len, 0) != len))
		rc = qvl_errf(w->err, -EIO, "tokenizer: cannot read back the GGUF written");
	if (!rc)
		rc = meta_add(w, PACK_META_TOKENIZER_GGUF, b, (uint64_t)len);
	free(b);
	gguf_w_free(&gw);
	close(fd);
	return rc;
}

static int build_meta(struct pw *w)
{
	size_t csz = pack_config_size();
	uint8_t *cfg = calloc(1, csz);
	char src[4200];
	int rc;

	if (!cfg)
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	pack_config_write(cfg, w->m);
	rc = meta_add(w, PACK_META_CONFIG, cfg, csz);
	free(cfg);
	if (!rc && w->m->tokenizer_json_path) {
		char *text = NULL;
		size_t len;

		rc = qvl_read_file(w->m->tokenizer_json_path, PACK_MAX_HEAD / 2, &text, &len,
				   w->err);
		if (!rc)
			rc = meta_add(w, PACK_META_TOKENIZER_JSON, text, len);
		free(text);
	} else if (!rc && w->m->gguf_text) {
		rc = meta_tok_gguf(w);
	}
	snprintf(src, sizeof(src), "%s (%s)", w->o->model, qvl_format_name(w->m->format));
	return rc ? rc : meta_add(w, PACK_META_SOURCE, src, strlen(src));
}

static int build_table(struct pw *w)
{
	uint64_t pool = 0, fixed = (uint64_t)w->nsh * PACK_SHARD_ENTRY + w->n * PACK_TENSOR_ENTRY;
	uint8_t *t, *e;
	uint64_t at;

	for (uint32_t i = 0; i < w->nsh; i++)
		pool += strlen(w->sh[i].name);
	for (size_t i = 0; i < w->n; i++)
		pool += strlen(w->it[i].t->name);
	w->table_len = (fixed + pool + 7) / 8 * 8;
	t = w->table = calloc(1, w->table_len);
	if (!t)
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	at = 0;
	for (uint32_t i = 0; i < w->nsh; i++) {
		size_t len = strlen(w->sh[i].name);

		e = t + (size_t)i * PACK_SHARD_ENTRY;
		pack_put(e, w->sh[i].off, 8);
		pack_put(e + 8, w->sh[i].len, 8);
		pack_put(e + 16, w->sh[i].crc, 8);
		pack_put(e + 24, at, 4);
		pack_put(e + 28, len, 4);
		memcpy(t + fixed + at, w->sh[i].name, len);
		at += len;
	}
	for (size_t i = 0; i < w->n; i++) {
		const struct item *x = &w->it[i];
		size_t len = strlen(x->t->name);

		e = t + (size_t)w->nsh * PACK_SHARD_ENTRY + i * PACK_TENSOR_ENTRY;
		pack_put(e, at, 4);
		pack_put(e + 4, len, 4);
		pack_put(e + 8, qvl_dtype_info(x->out)->ggml_type, 4);
		pack_put(e + 12, (uint64_t)x->t->ndim, 4);
		for (int d = 0; d < x->t->ndim; d++)
			pack_put(e + 16 + 8 * d, (uint64_t)x->t->shape[d], 8);
		pack_put(e + 56, x->shard, 4);
		pack_put(e + 64, x->off, 8);
		pack_put(e + 72, x->nbytes, 8);
		memcpy(t + fixed + at, x->t->name, len);
		at += len;
	}
	return 0;
}

/* ---- data ----------------------------------------------------------------- */

static int pwrite_all(struct pw *w, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t r = pwrite(w->fd, b, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return qvl_errf(w->err, -errno, "%s: write at %" PRIu64 ": %s", w->tmp, off,
					strerror(errno));
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int flush(struct pw *w)
{
	int rc = 0;

	if (w->used) {
		w->crc = nv_crc64(w->crc, w->buf, w->used);
		rc = pwrite_all(w, w->buf, w->used, w->pos);
		w->pos += w->used;
		w->done += w->used;
		w->used = 0;
		if (w->o->progress)
			w->o->progress(w->o->progress_ctx, (double)w->done, (double)w->payload);
	}
	return rc;
}

/* Room for n contiguous bytes in the buffer (n <= WBUF). */
static int space(struct pw *w, size_t n, uint8_t **p)
{
	int rc = w->used + n > WBUF ? flush(w) : 0;

	*p = w->buf + w->used;
	return rc;
}

static int put(struct pw *w, const uint8_t *p, uint64_t n)
{
	while (n) {
		size_t k = WBUF - w->used < n ? WBUF - w->used : (size_t)n;
		int rc;

		memcpy(w->buf + w->used, p, k);
		w->used += k;
		p += k;
		n -= k;
		if (w->used == WBUF && (rc = flush(w)))
			return rc;
	}
	return 0;
}

static int put_converted(struct pw *w, const struct item *x)
{
	uint64_t k = (uint64_t)x->t->shape[x->t->ndim - 1], rows = x->t->nelem / k;
	size_t rb = (size_t)(x->nbytes / rows);
	int rc = 0;

	free(w->row);
	w->row = malloc(k * sizeof(float));
	if (!w->row || rb > WBUF)
		return qvl_errf(w->err, -ENOMEM, "tensor '%s': rows of %zu bytes", x->t->name, rb);
	for (uint64_t r = 0; r < rows && !rc; r++) {
		uint8_t *dst;

		rc = space(w, rb, &dst);
		if (!rc && qvl_tensor_to_f32(x->t, r * k, k, w->row))
			rc = qvl_errf(w->err, -EINVAL, "tensor '%s': cannot read %s as f32",
				      x->t->name, qvl_dtype_name(x->t->dtype));
		if (!rc && (rc = cv_from_f32(x->out, w->row, dst, k)))
			rc = qvl_errf(w->err, rc, "tensor '%s': cannot write %s", x->t->name,
				      qvl_dtype_name(x->out));
		w->used += rb;
	}
	return rc;
}

/* Drop the source pages of a copied tensor, so that memory stays bounded
 * whatever the model's size (the pages come back from the file if needed). */
static void release_src(const struct pw *w, const struct qvl_tensor *t, uint64_t off, uint64_t len)
{
	const struct qvl_source *s =
	    (size_t)t->source < w->m->nsources ? &w->m->sources[t->source] : NULL;
	uintptr_t a = (uintptr_t)t->data + off, b = a + len, pg = 4096;
	uintptr_t lo = s && s->map ? (uintptr_t)s->map : 0;

	if (!lo || a < lo || b > lo + s->size)
		return;
	a = (a + pg - 1) / pg * pg;
	b = b / pg * pg;
	if (b > a)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

static int write_data(struct pw *w)
{
	static const uint8_t zero[PACK_TENSOR_ALIGN];
	int rc = 0;

	if (posix_memalign((void **)&w->buf, PACK_ALIGN, WBUF)) {
		w->buf = NULL;
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < w->n && !rc; i++) {
		const struct item *x = &w->it[i];
		struct pack_shard *s = &w->sh[x->shard];

		if (i == 0 || w->it[i - 1].shard != x->shard) {
			if ((rc = flush(w)))
				break;
			w->pos = s->off;
			w->crc = 0;
		}
		if (w->pos + w->used - s->off < x->off)
			rc = put(w, zero, x->off - (w->pos + w->used - s->off));
		if (!rc && x->out != x->t->dtype)
			rc = put_converted(w, x);
		/* a plain copy in pieces, each piece's source pages dropped after it */
		for (uint64_t o = 0; !rc && x->out == x->t->dtype && o < x->nbytes; o += WBUF) {
			uint64_t k = x->nbytes - o < WBUF ? x->nbytes - o : WBUF;

			rc = put(w, (const uint8_t *)x->t->data + o, k);
			release_src(w, x->t, o, k);
		}
		release_src(w, x->t, 0, x->nbytes);
		if (!rc && (i + 1 == w->n || w->it[i + 1].shard != x->shard)) {
			rc = flush(w);
			s->crc = w->crc;
		}
	}
	if (!rc && ftruncate(w->fd, (off_t)w->file_bytes) < 0)
		rc = qvl_errf(w->err, -errno, "%s: %s", w->tmp, strerror(errno));
	return rc;
}

static int write_head(struct pw *w)
{
	uint8_t *h = calloc(1, PACK_HDR_BYTES);
	uint64_t table_off = (PACK_HDR_BYTES + w->meta_len + 7) / 8 * 8;
	int rc;

	if (!h)
		return qvl_errf(w->err, -ENOMEM, "out of memory");
	memcpy(h, PACK_MAGIC, 8);
	pack_put(h + PH_MAJOR, PACK_MAJOR, 2);
	pack_put(h + PH_MINOR, PACK_MINOR, 2);
	pack_put(h + PH_HDR_BYTES, PACK_HDR_BYTES, 4);
	pack_put(h + PH_ALIGN, PACK_ALIGN, 4);
	pack_put(h + PH_FILE_BYTES, w->file_bytes, 8);
	pack_put(h + PH_META_OFF, PACK_HDR_BYTES, 8);
	pack_put(h + PH_META_LEN, w->meta_len, 8);
	pack_put(h + PH_TABLE_OFF, table_off, 8);
	pack_put(h + PH_TABLE_LEN, w->table_len, 8);
	pack_put(h + PH_DATA_OFF, w->data_off, 8);
	pack_put(h + PH_N_SHARDS, w->nsh, 4);
	pack_put(h + PH_N_TENSORS, w->n, 4);
	pack_put(h + PH_META_CRC, nv_crc64(0, w->meta, w->meta_len), 8);
	pack_put(h + PH_TABLE_CRC, nv_crc64(0, w->table, w->table_len), 8);
	pack_put(h + PH_HDR_CRC, nv_crc64(0, h, PH_HDR_CRC), 8);
	rc = pwrite_all(w, w->meta, w->meta_len, PACK_HDR_BYTES);
	if (!rc)
		rc = pwrite_all(w, w->table, w->table_len, table_off);
	if (!rc)
		rc = pwrite_all(w, h, PACK_HDR_BYTES, 0);
	if (!rc && fdatasync(w->fd) < 0)
		rc = qvl_errf(w->err, -errno, "%s: %s", w->tmp, strerror(errno));
	free(h);
	return rc;
}

int pack_write(const struct pack_opts *o, struct pack_result *r, struct qvl_err *err)
{
	struct pw w = {.o = o, .err = err, .fd = -1};
	double t0 = qvl_now();
	int rc;

	memset(r, 0, sizeof(*r));
	rc = qvl_model_open(&w.m, o->model, o->mmproj, err);
	if (!rc)
		rc = build_meta(&w);
	if (!rc) {
		/* the table's size depends only on the names: plan it first */
		uint64_t table_off = (PACK_HDR_BYTES + w.meta_len + 7) / 8 * 8;

		w.data_off = 0;
		rc = plan(&w);
		if (!rc)
			rc = build_table(&w);
		w.data_off = (table_off + w.table_len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
		if (!rc && w.data_off > PACK_MAX_HEAD)
			rc = qvl_errf(err, -EFBIG,
				      "%s: metadata and table of %" PRIu64 " bytes (at most %u)",
				      o->model, w.data_off, PACK_MAX_HEAD);
		for (uint32_t i = 0; !rc && i < w.nsh; i++)
			w.sh[i].off += w.data_off;
		w.file_bytes += w.data_off;
	}
	if (!rc && asprintf(&w.tmp, "%s.tmp", o->out) < 0) {
		w.tmp = NULL;
		rc = qvl_errf(err, -ENOMEM, "out of memory");
	}
	if (!rc && (w.fd = open(w.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		rc = qvl_errf(err, -errno, "%s: %s", w.tmp, strerror(errno));
	if (!rc)
		rc = write_data(&w);
	if (!rc) {
		free(w.table);
		w.table = NULL;
		rc = build_table(&w); /* now with the CRCs */
	}
	if (!rc)
		rc = write_head(&w);
	if (w.fd >= 0 && close(w.fd) < 0 && !rc)
		rc = qvl_errf(err, -errno, "%s: %s", w.tmp, strerror(errno));
	if (!rc && rename(w.tmp, o->out) < 0)
		rc = qvl_errf(err, -errno, "%s: %s", o->out, strerror(errno));
	if (rc && w.fd >= 0)
		unlink(w.tmp);
	if (!rc) {
		r->bytes = w.file_bytes;
		r->payload = w.payload;
		r->n_shards = w.nsh;
		r->n_tensors = (uint32_t)w.n;
		r->seconds = qvl_now() - t0;
	}
	for (uint32_t i = 0; i < w.nsh; i++)
		free(w.sh[i].name);
	free(w.sh);
	free(w.it);
	free(w.meta);
	free(w.table);
	free(w.buf);
	free(w.row);
	free(w.tmp);
	qvl_model_close(w.m);
	return rc;
}
