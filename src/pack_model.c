/* The pack reader: a .qvl file presented to the engine like the other
 * formats. The head (header, metadata, tables) is read and checked first;
 * then every shard is read by the io_uring reader (nvme/) into one anonymous
 * mapping that mirrors the file's data section, each shard's CRC-64 checked
 * as it completes. Only when every shard is good are tensors handed out:
 * zero-copy views into that memory, in the layout the kernels read. */
#define _GNU_SOURCE
#include "pack.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gguf.h"
#include "nvme.h"
#include "util.h"

static void pack_release(struct qvl_model *m)
{
	if (m->gguf_text)
		gguf_close(m->gguf_text);
	m->gguf_text = NULL;
}

static int own(struct qvl_model *m, void *p, struct qvl_err *err)
{
	void **o = realloc(m->owned, (m->nowned + 1) * sizeof(*o));

	if (!o)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", m->path);
	m->owned = o;
	m->owned[m->nowned++] = p;
	return 0;
}

static int pack_tokenizer(struct qvl_model *m, const struct pack_info *p, const char *path,
			  struct qvl_err *err)
{
	if (p->tok_json) {
		m->tokenizer_json = (const char *)p->tok_json;
		m->tokenizer_json_len = (size_t)p->tok_json_len;
		return 0;
	}
	if (p->tok_gguf) {
		char what[4200];

		snprintf(what, sizeof(what), "%s: tokenizer record", path);
		m->release = pack_release;
		return gguf_parse(&m->gguf_text, p->tok_gguf, (size_t)p->tok_gguf_len, what, err);
	}
	return 0; /* a model without a tokenizer: qvl_tok_load says so */
}

/* Read every shard into the arena; nothing is handed out on any error. */
static int pack_load_shards(const char *path, const struct pack_info *p, uint8_t *arena,
			    uint64_t arena_len, const bool *want, struct qvl_err *err)
{
	struct nv_shard *s = calloc(p->n_shards, sizeof(*s));
	struct nv_opts o = {0};
	struct nv_reader *r = NULL;
	int rc;

	if (!s)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	uint32_t n = 0;
	for (uint32_t i = 0; i < p->n_shards; i++)
		if (!want || want[i])
			s[n++] = (struct nv_shard){.name = p->shards[i].name,
					 .off = p->shards[i].off,
					 .len = p->shards[i].len,
					 .crc = p->shards[i].crc,
					 .dst = arena + (p->shards[i].off - p->data_off)};
	nv_opts_from_env(&o);
	rc = nv_open(&r, path, &o, err);
	if (!rc) {
		nv_register(r, arena, arena_len); /* optional: unregistered reads work too */
		rc = nv_read(r, s, n, false, NULL, err);
	}
	nv_close(r);
	free(s);
	return rc;
}

int qvl_pack_open(struct qvl_model *m, const char *path, struct qvl_err *err)
{
	return qvl_pack_open_some(m, path, NULL, 0, err);
}

int qvl_pack_open_some(struct qvl_model *m, const char *path, const bool *want, uint32_t n_want,
		       struct qvl_err *err)
{
	struct pack_info p;
	uint8_t *head = NULL, *arena;
	uint64_t fsize, alen;
	int rc, src;

	m->format = QVL_FMT_PACK;
	rc = pack_read_head(path, &p, &head, &fsize, err);
	if (rc)
		return rc;
	rc = own(m, head, err);
	if (rc) {
		free(head);
		goto out;
	}
	if (fsize != p.file_bytes) {
		rc = qvl_errf(err, -EBADMSG,
			      "%s: %" PRIu64 " bytes, but the header says %" PRIu64 ": %s", path,
			      fsize, p.file_bytes, fsize < p.file_bytes ? "truncated" : "extended");
		goto out;
	}
	rc = pack_config_read(m, p.config, p.config_len, path, err);
	if (!rc)
		rc = pack_tokenizer(m, &p, path, err);
	if (rc)
		goto out;
	alen = p.file_bytes - p.data_off;
	arena = alen ? mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
		     : NULL;
	if (alen && arena == MAP_FAILED) {
		rc = qvl_errf(err, -ENOMEM, "%s: cannot map %" PRIu64 " bytes for the weights",
			      path, alen);
		goto out;
	}
	src = qvl_model_add_source(m, path, arena, alen, err);
	if (src < 0) {
		if (arena)
			munmap(arena, alen);
		rc = src;
		goto out;
	}
	if (want && p.n_shards != n_want) {
		rc = qvl_errf(err, -ESTALE, "%s: %" PRIu32 " shards, %" PRIu32 " expected: changed "
			      "while opening", path, p.n_shards, n_want);
		goto out;
	}
	rc = pack_load_shards(path, &p, arena, alen, want, err);
	for (uint32_t i = 0; i < p.n_tensors && !rc; i++) {
		const struct pack_tensor *x = &p.tensors[i];
		struct qvl_tensor t = {
		    .name = x->name,
		    .dtype = x->dtype,
		    .ndim = x->ndim,
		    .nelem = x->nelem,
		    .data = arena + (p.shards[x->shard].off - p.data_off) + x->off,
		    .nbytes = x->nbytes,
		    .source = src,
		};

		memcpy(t.shape, x->shape, sizeof(t.shape));
		rc = qvl_model_add_tensor(m, &t, err);
	}
	if (!rc)
		rc = qvl_model_finish(m, err);
	if (!rc)
		rc = qvl_model_check_tensors(m, err);
out:
	pack_free(&p);
	return rc;
}
