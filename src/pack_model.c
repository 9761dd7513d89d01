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

#include "env.h"
#include "gguf.h"
#include "nvme.h"
#include "util.h"

static void pack_release(struct qvl_model *m)
{
	/* first: the late read writes into the arena, unmapped after this */
	pack_late_destroy(m->late);
	m->late = NULL;
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

void pack_nv_shards(const struct pack_info *p, uint8_t *arena, struct nv_shard *s)
{
	for (uint32_t i = 0; i < p->n_shards; i++)
		s[i] = (struct nv_shard){.name = p->shards[i].name,
					 .off = p->shards[i].off,
					 .len = p->shards[i].len,
					 .crc = p->shards[i].crc,
					 .dst = arena ? arena + (p->shards[i].off - p->data_off)
						      : NULL};
}

/* Read every shard i with want[i] (all when want is NULL) into the arena
 * with the I/O threads; nothing is handed out on any error. */
static int pack_load_shards(const char *path, const struct pack_info *p, uint8_t *arena,
			    const bool *want, struct qvl_err *err)
{
	struct nv_shard *s = calloc(p->n_shards, sizeof(*s));
	struct nv_opts o = {0};
	struct nv_stats st = {0};
	uint32_t n = 0;
	int rc;

	if (!s)
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	pack_nv_shards(p, arena, s);
	for (uint32_t i = 0; i < p->n_shards; i++)
		if (!want || want[i])
			s[n++] = s[i];
	o.fill = true; /* fault the arena in ahead of the reads (QVL_IO_FILL=0: not) */
	nv_opts_from_env(&o);
	rc = nv_read_threads(path, &o, s, n, false, &st, err);
	free(s);
	if (qvl_env_flag("QVL_LOAD_TRACE", false))
		fprintf(stderr,
			"qvl: %s: read %" PRIu64 " bytes in %.3f s (%u I/O threads, %s), CRC "
			"%.3f s, memory %.3f s (%s), readers waited on memory %.3f s\n",
			path, st.bytes, st.seconds, st.threads,
			st.fixed_bufs ? "registered" : "unregistered", st.crc_seconds,
			st.fill_seconds, o.fill ? "filled ahead" : "registered up front",
			st.fill_wait_seconds);
	return rc;
}

/* The weights' memory, an anonymous mapping mirroring the data section,
 * read and checked shard by shard; with load false (a description), no
 * memory and no reads: the tensors' data are NULL. */
static int pack_arena(struct qvl_model *m, const char *path, const struct pack_info *p, bool load,
		      const bool *want, const bool *later, uint8_t **arena, struct qvl_err *err)
{
	uint64_t alen = load ? p->file_bytes - p->data_off : 0;
	uint8_t *a = NULL;
	int src;

	if (alen) {
		a = mmap(NULL, alen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (a == MAP_FAILED)
			return qvl_errf(err, -ENOMEM,
					"%s: cannot map %" PRIu64 " bytes for the weights", path,
					alen);
		/* huge pages: a tenth of the page faults and TLB misses for
		 * the registration, the DMA and the CRC's first touch (measured on
		 * a VM where each fresh 4 KiB page costs a host fault: the CRC of
		 * DMA'd 4 KiB pages ran at 0.2-0.4 GB/s, of huge pages at 8-20
		 * GB/s); advice only, ignored where THP is off */
		madvise(a, alen, MADV_HUGEPAGE);
		/* but for the shards not read here (streamed by offload/): a
		 * huge page faulted in beside or inside them (their norms are
		 * read into place) would take up to 2 MiB of memory the budget
		 * left out */
		for (uint32_t i = 0; want && i < p->n_shards; i++)
			if (!want[i] && !(later && later[i]))
				madvise(a + (p->shards[i].off - p->data_off),
					(p->shards[i].len + NV_ALIGN - 1) / NV_ALIGN * NV_ALIGN,
					MADV_NOHUGEPAGE);
	}
	src = qvl_model_add_source(m, path, a, alen, err);
	if (src < 0) {
		if (a)
			munmap(a, alen);
		return src;
	}
	m->sources[src].anon = true;
	*arena = a;
	return load ? pack_load_shards(path, p, a, want, err) : 0;
}

/* The shards read later (the vision tower's, pack_late.c) and the ones read
 * now, in later[] and want[] (n_shards each), among the shards the caller
 * wants (in: NULL for all); false when there are none. */
static bool split_late(const struct pack_info *p, const bool *in, bool **later, bool **want)
{
	bool any = false;

	*later = calloc(p->n_shards ? p->n_shards : 1, sizeof(**later));
	*want = calloc(p->n_shards ? p->n_shards : 1, sizeof(**want));
	for (uint32_t i = 0; *later && *want && i < p->n_shards; i++) {
		bool w = !in || in[i];

		(*later)[i] = w && pack_shard_is_vision(p->shards[i].name);
		(*want)[i] = w && !(*later)[i];
		any |= (*later)[i];
	}
	return any;
}

/* load false: the head alone; want: the shards to read (NULL: all), the
 * others' tensors point at unread (zero) memory until something puts their
 * bytes elsewhere (offload/); n_want: the shard count the caller saw; late:
 * the vision tower's shards (of those wanted) read later (pack_late.c) */
static int pack_open(struct qvl_model *m, const char *path, bool load, const bool *want,
		     uint32_t n_want, bool late, struct qvl_err *err)
{
	struct pack_info p;
	uint8_t *head = NULL, *arena = NULL;
	bool *later = NULL, *now = NULL;
	uint64_t fsize;
	int rc;

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
	if (!rc && want && p.n_shards != n_want)
		rc = qvl_errf(err, -ESTALE,
			      "%s: %" PRIu32 " shards, %" PRIu32 " expected: changed while opening",
			      path, p.n_shards, n_want);
	if (!rc && load && late) {
		if (split_late(&p, want, &later, &now))
			want = now;
		else if (!later || !now)
			rc = qvl_errf(err, -ENOMEM, "%s: out of memory", path);
		else
			late = false; /* no vision tower: read everything now */
	} else {
		late = false;
	}
	if (!rc)
		rc = pack_arena(m, path, &p, load, want, later, &arena, err);
	if (!rc && late) {
		rc = pack_late_create(&m->late, path, &p, arena, later, err);
		m->release = pack_release;
	}
	free(later);
	free(now);
	/* the only source: index 0 */
	for (uint32_t i = 0; i < p.n_tensors && !rc; i++) {
		const struct pack_tensor *x = &p.tensors[i];
		struct qvl_tensor t = {
		    .name = x->name,
		    .dtype = x->dtype,
		    .ndim = x->ndim,
		    .nelem = x->nelem,
		    .data = arena ? arena + (p.shards[x->shard].off - p.data_off) + x->off : NULL,
		    .nbytes = x->nbytes,
		    .source = 0,
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

int qvl_pack_open(struct qvl_model *m, const char *path, struct qvl_err *err)
{
	return pack_open(m, path, true, NULL, 0, false, err);
}

int qvl_pack_open_late(struct qvl_model *m, const char *path, struct qvl_err *err)
{
	return pack_open(m, path, true, NULL, 0, true, err);
}

int qvl_pack_open_some(struct qvl_model *m, const char *path, const bool *want, uint32_t n_want,
		       bool late, struct qvl_err *err)
{
	return pack_open(m, path, true, want, n_want, late, err);
}

int qvl_pack_describe(struct qvl_model **out, const char *path, struct qvl_err *err)
{
	struct qvl_model *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return qvl_errf(err, -ENOMEM, "%s: out of memory", path);
	}
	rc = pack_open(m, path, false, NULL, 0, false, err);
	if (rc) {
		qvl_model_close(m);
		return rc;
	}
	*out = m;
	return 0;
}
