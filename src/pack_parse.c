/* Reading a pack's header, metadata records and tables (pack.h). Nothing
 * from the file indexes memory before it is bounds-checked; sizes use
 * overflow-checked arithmetic. The shards themselves are checked by the
 * reader (nvme/) as they are read. */
#define _GNU_SOURCE
#include "pack.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nvme.h"

static int bad(struct qvl_err *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct qvl_err *err, const char *what, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qvl_errf(err, -EBADMSG, "%s: %s", what, msg);
}

int pack_parse_header(struct pack_info *p, const uint8_t *b, size_t size, const char *what,
		      struct qvl_err *err)
{
	uint64_t crc, end;

	memset(p, 0, sizeof(*p));
	if (size < PACK_HDR_BYTES || memcmp(b, PACK_MAGIC, 8))
		return qvl_errf(err, -EBADMSG, "%s: not a qvl pack (no QVLPACK magic)", what);
	p->major = (uint16_t)pack_get(b + PH_MAJOR, 2);
	p->minor = (uint16_t)pack_get(b + PH_MINOR, 2);
	crc = nv_crc64(0, b, PH_HDR_CRC);
	if (crc != pack_get(b + PH_HDR_CRC, 8))
		return bad(err, what,
			   "header: CRC-64 mismatch (stored %016" PRIx64 ", computed %016" PRIx64
			   "): the header is damaged",
			   pack_get(b + PH_HDR_CRC, 8), crc);
	if (p->major != PACK_MAJOR)
		return qvl_errf(err, -ENOTSUP,
				"%s: pack format version %u.%u: this qvl reads version %u.x only "
				"(repack the model with this qvl)",
				what, p->major, p->minor, PACK_MAJOR);
	if (pack_get(b + PH_HDR_BYTES, 4) != PACK_HDR_BYTES)
		return bad(err, what, "header: header_bytes %" PRIu64 " (expected %" PRIu64 ")",
			   pack_get(b + PH_HDR_BYTES, 4), (uint64_t)PACK_HDR_BYTES);
	if (pack_get(b + PH_ALIGN, 4) != PACK_ALIGN)
		return bad(err, what, "header: alignment %" PRIu64 " (expected %" PRIu64 ")",
			   pack_get(b + PH_ALIGN, 4), (uint64_t)PACK_ALIGN);
	if (pack_get(b + PH_FLAGS, 4))
		return bad(err, what,
			   "header: flags %#" PRIx64 " set (none are defined in %" PRIu64 ".x)",
			   pack_get(b + PH_FLAGS, 4), (uint64_t)PACK_MAJOR);
	p->file_bytes = pack_get(b + PH_FILE_BYTES, 8);
	p->meta_off = pack_get(b + PH_META_OFF, 8);
	p->meta_len = pack_get(b + PH_META_LEN, 8);
	p->table_off = pack_get(b + PH_TABLE_OFF, 8);
	p->table_len = pack_get(b + PH_TABLE_LEN, 8);
	p->data_off = pack_get(b + PH_DATA_OFF, 8);
	p->n_shards = (uint32_t)pack_get(b + PH_N_SHARDS, 4);
	p->n_tensors = (uint32_t)pack_get(b + PH_N_TENSORS, 4);
	if (p->meta_off != PACK_HDR_BYTES)
		return bad(err, what, "header: meta_off %" PRIu64 " (expected %" PRIu64 ")",
			   p->meta_off, (uint64_t)PACK_HDR_BYTES);
	if (__builtin_add_overflow(p->meta_off, p->meta_len, &end) || end > p->table_off ||
	    p->table_off % 8)
		return bad(err, what,
			   "header: metadata ends at %" PRIu64 ", table starts at %" PRIu64,
			   p->meta_off + p->meta_len, p->table_off);
	if (__builtin_add_overflow(p->table_off, p->table_len, &end) || end > p->data_off)
		return bad(err, what, "header: table ends at %" PRIu64 ", data starts at %" PRIu64,
			   end, p->data_off);
	if (p->data_off % PACK_ALIGN || p->data_off > PACK_MAX_HEAD)
		return bad(err, what,
			   "header: data_off %" PRIu64 " not a multiple of 4096 or past %" PRIu64,
			   p->data_off, (uint64_t)PACK_MAX_HEAD);
	if (p->file_bytes % PACK_ALIGN || p->file_bytes < p->data_off)
		return bad(err, what, "header: file_bytes %" PRIu64 " (data starts at %" PRIu64 ")",
			   p->file_bytes, p->data_off);
	return 0;
}

static int parse_meta(struct pack_info *p, const uint8_t *b, const char *what, struct qvl_err *err)
{
	uint64_t pos = p->meta_off, end = p->meta_off + p->meta_len;

	while (pos < end) {
		uint64_t kind, len, next;

		if (end - pos < 16)
			return bad(err, what,
				   "metadata: record at %" PRIu64 " cut short (%" PRIu64
				   " bytes left)",
				   pos, end - pos);
		kind = pack_get(b + pos, 4);
		len = pack_get(b + pos + 8, 8);
		if (len > end - pos - 16)
			return bad(err, what,
				   "metadata: record at %" PRIu64 ": length %" PRIu64
				   " past the end of the metadata",
				   pos, len);
		next = pos + 16 + (len + 7) / 8 * 8;
		switch (kind) {
		case PACK_META_CONFIG:
			p->config = b + pos + 16, p->config_len = len;
			break;
		case PACK_META_TOKENIZER_JSON:
			p->tok_json = b + pos + 16, p->tok_json_len = len;
			break;
		case PACK_META_TOKENIZER_GGUF:
			p->tok_gguf = b + pos + 16, p->tok_gguf_len = len;
			break;
		case PACK_META_SOURCE:
			p->source = b + pos + 16, p->source_len = len;
			break;
		default: /* a later minor version's record */
			break;
		}
		pos = next;
	}
	if (!p->config)
		return qvl_errf(err, -EBADMSG, "%s: metadata: no config record", what);
	return 0;
}

/* A name from the pool: non-empty, no NUL, at most PACK_MAX_NAME bytes. */
static int pool_name(char **out, const uint8_t *pool, uint64_t pool_len, const uint8_t *ent,
		     const char *what, const char *kind, uint64_t i, struct qvl_err *err)
{
	uint64_t off = pack_get(ent, 4), len = pack_get(ent + 4, 4);

	if (!len || len > PACK_MAX_NAME || off > pool_len || len > pool_len - off ||
	    memchr(pool + off, 0, len))
		return qvl_errf(err, -EBADMSG,
				"%s: table: %s %" PRIu64 ": name at %" PRIu64 " (%" PRIu64
				" bytes) outside the name pool (%" PRIu64 " bytes) or not a name",
				what, kind, i, off, len, pool_len);
	*out = strndup((const char *)pool + off, len);
	return *out ? 0 : qvl_errf(err, -ENOMEM, "%s: out of memory", what);
}

static int parse_shards(struct pack_info *p, const uint8_t *t, const uint8_t *pool,
			uint64_t pool_len, const char *what, struct qvl_err *err)
{
	uint64_t prev_end = p->data_off;

	for (uint32_t i = 0; i < p->n_shards; i++) {
		const uint8_t *e = t + (size_t)i * PACK_SHARD_ENTRY;
		struct pack_shard *s = &p->shards[i];
		uint64_t alen, end;
		int rc = pool_name(&s->name, pool, pool_len, e + 24, what, "shard", i, err);

		if (rc)
			return rc;
		s->off = pack_get(e, 8);
		s->len = pack_get(e + 8, 8);
		s->crc = pack_get(e + 16, 8);
		alen = (s->len + PACK_ALIGN - 1) / PACK_ALIGN * PACK_ALIGN;
		if (s->off % PACK_ALIGN || s->off < prev_end || !s->len || alen < s->len ||
		    __builtin_add_overflow(s->off, alen, &end) || end > p->file_bytes)
			return qvl_errf(err, -EBADMSG,
					"%s: table: shard '%s': offset %" PRIu64 ", %" PRIu64
					" bytes: not 4096-aligned, empty, overlapping the previous "
					"shard or past the end of the file (%" PRIu64 " bytes)",
					what, s->name, s->off, s->len, p->file_bytes);
		prev_end = end;
	}
	return 0;
}

static int parse_tensors(struct pack_info *p, const uint8_t *t, const uint8_t *pool,
			 uint64_t pool_len, const char *what, struct qvl_err *err)
{
	for (uint32_t i = 0; i < p->n_tensors; i++) {
		const uint8_t *e = t + (size_t)i * PACK_TENSOR_ENTRY;
		struct pack_tensor *x = &p->tensors[i];
		uint64_t n = 1, end, want;
		int dt, rc = pool_name(&x->name, pool, pool_len, e, what, "tensor", i, err);
		bool ok;

		if (rc)
			return rc;
		dt = qvl_dtype_from_ggml((uint32_t)pack_get(e + 8, 4));
		x->ndim = (int)pack_get(e + 12, 4);
		x->shard = (uint32_t)pack_get(e + 56, 4);
		x->off = pack_get(e + 64, 8);
		x->nbytes = pack_get(e + 72, 8);
		if (dt < 0)
			return qvl_errf(err, -EBADMSG,
					"%s: table: tensor '%s': unknown type %" PRIu64, what,
					x->name, pack_get(e + 8, 4));
		x->dtype = (enum qvl_dtype)dt;
		if (x->ndim < 1 || x->ndim > QVL_MAX_DIMS)
			return qvl_errf(err, -EBADMSG, "%s: table: tensor '%s': %d dimensions",
					what, x->name, x->ndim);
		for (int d = 0; d < x->ndim; d++) {
			x->shape[d] = (int64_t)pack_get(e + 16 + 8 * d, 8);
			if (x->shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)x->shape[d], &n))
				return qvl_errf(err, -EBADMSG,
						"%s: table: tensor '%s': dimension %d is %" PRId64,
						what, x->name, d, x->shape[d]);
		}
		x->nelem = n;
		want = qvl_dtype_bytes(x->dtype, n, &ok);
		if (!ok || want != x->nbytes)
			return qvl_errf(err, -EBADMSG,
					"%s: table: tensor '%s': %" PRIu64 " bytes for %" PRIu64
					" elements of %s",
					what, x->name, x->nbytes, n, qvl_dtype_name(x->dtype));
		if (x->shard >= p->n_shards || x->off % PACK_TENSOR_ALIGN ||
		    __builtin_add_overflow(x->off, x->nbytes, &end) ||
		    end > p->shards[x->shard].len)
			return qvl_errf(err, -EBADMSG,
					"%s: table: tensor '%s': shard %" PRIu32 ", offset %" PRIu64
					", %" PRIu64 " bytes: outside its shard or misaligned",
					what, x->name, x->shard, x->off, x->nbytes);
	}
	return 0;
}

int pack_parse(struct pack_info *p, const uint8_t *b, size_t size, const char *what,
	       struct qvl_err *err)
{
	uint64_t fixed, sz, crc, pool_len;
	const uint8_t *t;
	int rc = pack_parse_header(p, b, size, what, err);

	if (rc)
		return rc;
	if (size < p->table_off + p->table_len)
		return bad(err, what, "head: %" PRIu64 " bytes given, the table ends at %" PRIu64,
			   size, p->table_off + p->table_len);
	crc = nv_crc64(0, b + p->meta_off, p->meta_len);
	if (crc != pack_get(b + PH_META_CRC, 8))
		return bad(err, what,
			   "metadata: CRC-64 mismatch (stored %016" PRIx64 ", computed %016" PRIx64
			   "): the metadata is damaged",
			   pack_get(b + PH_META_CRC, 8), crc);
	t = b + p->table_off;
	crc = nv_crc64(0, t, p->table_len);
	if (crc != pack_get(b + PH_TABLE_CRC, 8))
		return bad(err, what,
			   "table: CRC-64 mismatch (stored %016" PRIx64 ", computed %016" PRIx64
			   "): the tensor table is damaged",
			   pack_get(b + PH_TABLE_CRC, 8), crc);
	if (!p->n_shards || !p->n_tensors ||
	    __builtin_mul_overflow((uint64_t)p->n_shards, PACK_SHARD_ENTRY, &fixed) ||
	    __builtin_mul_overflow((uint64_t)p->n_tensors, PACK_TENSOR_ENTRY, &sz) ||
	    __builtin_add_overflow(fixed, sz, &fixed) || fixed > p->table_len)
		return qvl_errf(err, -EBADMSG,
				"%s: table: %" PRIu32 " shards and %" PRIu32
				" tensors do not fit in %" PRIu64 " bytes",
				what, p->n_shards, p->n_tensors, p->table_len);
	rc = parse_meta(p, b, what, err);
	if (rc)
		return rc;
	p->shards = calloc(p->n_shards, sizeof(*p->shards));
	p->tensors = calloc(p->n_tensors, sizeof(*p->tensors));
	if (!p->shards || !p->tensors)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", what);
	pool_len = p->table_len - fixed;
	rc = parse_shards(p, t, t + fixed, pool_len, what, err);
	if (!rc)
		rc = parse_tensors(p, t + (size_t)p->n_shards * PACK_SHARD_ENTRY, t + fixed,
				   pool_len, what, err);
	return rc;
}

void pack_free(struct pack_info *p)
{
	for (uint32_t i = 0; p->shards && i < p->n_shards; i++)
		free(p->shards[i].name);
	for (uint32_t i = 0; p->tensors && i < p->n_tensors; i++)
		free(p->tensors[i].name);
	free(p->shards);
	free(p->tensors);
	p->shards = NULL;
	p->tensors = NULL;
}

static int pread_all(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	while (n) {
		ssize_t r = pread(fd, buf, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -ENODATA;
		buf += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

int pack_read_head(const char *path, struct pack_info *p, uint8_t **head, uint64_t *fsize,
		   struct qvl_err *err)
{
	uint8_t *b = malloc((uint64_t)PACK_HDR_BYTES);
	struct stat st;
	int rc, fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(p, 0, sizeof(*p));
	*head = NULL;
	if (fd < 0 || !b) {
		rc = fd < 0 ? qvl_errf(err, -errno, "%s: %s", path, strerror(errno))
			    : qvl_errf(err, -ENOMEM, "%s: out of memory", path);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		rc = qvl_errf(err, -errno, "%s: %s", path, strerror(errno));
		goto out;
	}
	*fsize = (uint64_t)st.st_size;
	rc = pread_all(fd, b, PACK_HDR_BYTES, 0);
	if (rc == -ENODATA)
		rc = qvl_errf(err, -EBADMSG, "%s: %" PRIu64 " bytes: too short for a pack header",
			      path, *fsize);
	else if (rc)
		rc = qvl_errf(err, rc, "%s: reading the header: %s", path, strerror(-rc));
	if (!rc)
		rc = pack_parse_header(p, b, PACK_HDR_BYTES, path, err);
	if (!rc) {
		uint8_t *nb = realloc(b, p->data_off);

		rc = nb ? 0 : qvl_errf(err, -ENOMEM, "%s: out of memory", path);
		b = nb ? nb : b;
	}
	if (!rc &&
	    (rc = pread_all(fd, b + PACK_HDR_BYTES, p->data_off - PACK_HDR_BYTES, PACK_HDR_BYTES)))
		rc = rc == -ENODATA ? qvl_errf(err, -EBADMSG,
					       "%s: file ends at %" PRIu64
					       " inside the metadata and tables (%" PRIu64
					       " bytes): truncated",
					       path, *fsize, p->data_off)
				    : qvl_errf(err, rc, "%s: %s", path, strerror(-rc));
	if (!rc)
		rc = pack_parse(p, b, p->data_off, path, err);
out:
	if (fd >= 0)
		close(fd);
	if (rc) {
		pack_free(p);
		free(b);
		return rc;
	}
	*head = b;
	return 0;
}
