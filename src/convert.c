/* qvlctl convert's engine: plan every output tensor (name, shape, type,
 * where its values come from), build the metadata, write the header with
 * every offset known, then stream the tensors one at a time through a
 * bounded buffer. Each output goes to OUT.tmp and is renamed over OUT only
 * once complete; on any error (or SIGINT/SIGTERM) the .tmp is removed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert.h"
#include "gguf.h"
#include "gguf_names.h"
#include "util.h"

/* values converted per step: bounds the buffers (f32 in, converted out) */
#define CV_CHUNK_ELEMS (1u << 20)
/* threads for the block quantizers: one per online CPU, at most this */
#define CV_MAX_THREADS 16

struct cv_item {
	char name[128];
	uint32_t n_dims;
	uint64_t ne[GGUF_MAX_DIMS]; /* GGUF order */
	enum qvl_dtype out;
	struct qvl_tensor src; /* the values (PyTorch shape of the source) */
	int half;	       /* patch embedding: temporal half 0 or 1; else -1 */
	int layer;
	size_t order; /* position in the source */
};

struct cv_file {
	const char *path;
	char *tmp;
	int fd;
	bool mmproj;
	struct gguf_w w;
	struct cv_item *it;
	size_t n, cap;
	uint64_t n_params;
	struct cv_file_result *res;
};

struct cv_ctx {
	const struct cv_opts *o;
	struct qvl_model *m;
	struct cv_file text, proj;
	struct cv_result *r;
	float *f32;
	uint8_t *buf;
	int threads;
	struct qvl_err *err;
};

/* ---- removing the temporary files on a signal --------------------------- */

/* Paths the handler may unlink; set before the files exist, cleared after
 * the rename. Read only by the handler of this (single) thread. */
static char *volatile cv_tmp_paths[2];

static void cv_on_signal(int sig)
{
	for (int i = 0; i < 2; i++)
		if (cv_tmp_paths[i])
			unlink(cv_tmp_paths[i]);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- planning ------------------------------------------------------------ */

static int add_item(struct cv_ctx *x, struct cv_file *f, const struct cv_item *it)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 256;
		struct cv_item *p = realloc(f->it, cap * sizeof(*p));

		if (!p)
			return qvl_errf(x->err, -ENOMEM, "out of memory");
		f->it = p;
		f->cap = cap;
	}
	f->it[f->n++] = *it;
	f->n_params += it->src.nelem / (it->half >= 0 ? 2 : 1);
	return 0;
}

static void item_shape(struct cv_item *it, const struct qvl_tensor *t)
{
	it->n_dims = (uint32_t)t->ndim;
	for (int d = 0; d < GGUF_MAX_DIMS; d++)
		it->ne[d] = d < t->ndim ? (uint64_t)t->shape[t->ndim - 1 - d] : 1;
}

static int cmp_src(const void *a, const void *b)
{
	const struct qvl_tensor *const *x = a, *const *y = b;

	if ((*x)->source != (*y)->source)
		return (*x)->source < (*y)->source ? -1 : 1;
	return strcmp((*x)->name, (*y)->name);
}

/* From a Hugging Face directory: the converter reads the shards in name
 * order and each shard's tensors sorted by name. */
static int plan_hf(struct cv_ctx *x)
{
	struct qvl_model *m = x->m;
	const struct qvl_tensor **v = malloc((m->ntensors ? m->ntensors : 1) * sizeof(*v));
	int rc = 0;

	if (!v)
		return qvl_errf(x->err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < m->ntensors; i++)
		v[i] = &m->tensors[i];
	qsort(v, m->ntensors, sizeof(*v), cmp_src);
	for (size_t i = 0; i < m->ntensors && !rc; i++) {
		struct cv_item it = {.src = *v[i], .half = -1, .order = i};
		bool vision;

		rc = gguf_name_from_hf(&m->config, v[i]->name, it.name, sizeof(it.name), &vision,
				       &it.layer);
		if (rc) {
			rc = qvl_errf(
			    x->err, -EINVAL,
			    "%s: tensor '%s': llama.cpp's Qwen3-VL GGUF has no name for it",
			    m->sources[v[i]->source].path, v[i]->name);
			break;
		}
		if (vision && !x->o->out_mmproj)
			continue;
		item_shape(&it, v[i]);
		if (vision && !strcmp(it.name, "v.patch_embd.weight")) {
			/* Conv3d [Dv, C, 2, P, P] -> two [Dv, C, P, P] halves (§2.5) */
			if (v[i]->ndim != 5 || v[i]->shape[2] != 2) {
				rc = qvl_errf(x->err, -EINVAL,
					      "tensor '%s': expected [Dv, C, 2, P, P] (temporal "
					      "patch 2), as llama.cpp's converter requires",
					      v[i]->name);
				break;
			}
			it.n_dims = 4;
			it.ne[0] = (uint64_t)v[i]->shape[4];
			it.ne[1] = (uint64_t)v[i]->shape[3];
			it.ne[2] = (uint64_t)v[i]->shape[1];
			it.ne[3] = (uint64_t)v[i]->shape[0];
			it.half = 0;
			rc = add_item(x, &x->proj, &it);
			snprintf(it.name, sizeof(it.name), "v.patch_embd.weight.1");
			it.half = 1;
		}
		if (!rc)
			rc = add_item(x, vision ? &x->proj : &x->text, &it);
	}
	free(v);
	return rc;
}

/* From GGUF files: every tensor as it is, under its own name. */
static int plan_gguf(struct cv_ctx *x, struct cv_file *f, const struct gguf_file *g)
{
	struct qvl_model *m = x->m;
	int src = -1, rc = 0;

	for (size_t s = 0; s < m->nsources; s++)
		if (!strcmp(m->sources[s].path, gguf_what(g)))
			src = (int)s;
	for (size_t i = 0; i < gguf_n_tensors(g) && !rc; i++) {
		const struct gguf_tensor_info *ti = gguf_tensor(g, i);
		struct cv_item it = {.half = -1, .layer = -1, .order = i};
		int l;

		snprintf(it.name, sizeof(it.name), "%s", ti->name);
		it.n_dims = (uint32_t)ti->n_dims;
		memcpy(it.ne, ti->ne, sizeof(it.ne));
		it.src = (struct qvl_tensor){.name = ti->name,
					     .dtype = ti->dtype,
					     .ndim = 1,
					     .shape = {(int64_t)ti->nelem},
					     .nelem = ti->nelem,
					     .data = ti->data,
					     .nbytes = ti->nbytes,
					     .source = src};
		if (!strncmp(ti->name, "blk.", 4) &&
		    gguf_names_index(ti->name + 4, m->config.text.num_layers, &l))
			it.layer = l;
		rc = add_item(x, f, &it);
	}
	return rc;
}

/* llama-quantize's order (llama_model_loader's weight_name_comparer): by
 * layer (tensors outside the layers first), then by name. */
static int cmp_quant_order(const void *a, const void *b)
{
	const struct cv_item *x = a, *y = b;

	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int choose_types(struct cv_ctx *x, struct cv_file *f)
{
	bool tied = true, from_gguf = x->m->format == QVL_FMT_GGUF;

	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->it[i].name, "output.weight"))
			tied = false;
	for (size_t i = 0; i < f->n; i++) {
		struct cv_item *it = &f->it[i];
		struct cv_tinfo t = {.name = it->name,
				     .n_dims = it->n_dims,
				     .ne = it->ne,
				     .layer = it->layer,
				     .n_layers = x->m->config.text.num_layers,
				     .tied = tied,
				     .from_gguf = from_gguf,
				     .src = it->src.dtype};
		const char *note = NULL;

		it->out = f->mmproj ? cv_mmproj_type(x->o->preset, &t)
				    : cv_text_type(x->o->preset, &t, &note);
		if (note && strstr(note, "fallback"))
			x->r->n_fallback++;
	}
	/* quantized files are what llama-quantize writes, in its order */
	if (!f->mmproj && (x->o->preset->quantized || from_gguf))
		qsort(f->it, f->n, sizeof(*f->it), cmp_quant_order);
	return 0;
}

/* ---- metadata ------------------------------------------------------------- */

static int metadata(struct cv_ctx *x, struct cv_file *f)
{
	const struct cv_preset *p = x->o->preset;
	const struct cv_preset *pm = cv_preset_find(p->mmproj);
	const struct gguf_file *g = f->mmproj ? x->m->gguf_mmproj : x->m->gguf_text;
	uint32_t ftype = f->mmproj ? pm->ftype : p->ftype;
	int rc;

	if (x->m->format == QVL_FMT_GGUF) {
		/* llama-quantize: every key copied, then these two set (at the end) */
		for (size_t i = 0; i < gguf_n_kv(g); i++)
			gguf_w_copy_kv(&f->w, g, i);
		gguf_w_u32(&f->w, "general.quantization_version", 2);
		gguf_w_u32(&f->w, "general.file_type", ftype);
		return 0;
	}
	rc = cv_meta_general(&f->w, x->m->path, f->mmproj ? "clip" : "qwen3vl",
			     f->mmproj ? "mmproj" : "model", f->n_params, x->err);
	if (rc)
		return rc;
	if (f->mmproj) {
		cv_meta_mmproj(&f->w, x->m, ftype);
		gguf_w_u32(&f->w, "general.quantization_version", 2);
		return 0;
	}
	cv_meta_text(&f->w, &x->m->config, ftype);
	gguf_w_u32(&f->w, "general.quantization_version", 2);
	if ((rc = cv_meta_vocab(&f->w, x->m->path, &x->m->config, x->err)))
		return rc;
	if (p->quantized) {
		/* llama-quantize sets both again: they move to the end */
		gguf_w_u32(&f->w, "general.quantization_version", 2);
		gguf_w_u32(&f->w, "general.file_type", ftype);
	}
	return 0;
}

/* ---- streaming the data --------------------------------------------------- */

/* Values of output rows [r0, r0 + nr) of it as f32. */
static int fetch_rows(const struct cv_item *it, uint64_t r0, uint64_t nr, float *dst)
{
	uint64_t ne0 = it->ne[0];

	if (it->half < 0)
		return qvl_tensor_to_f32(&it->src, r0 * ne0, nr * ne0, dst);
	/* output row (d, c, y) of half t is source row ((d, c, t), y) */
	for (uint64_t r = r0; r < r0 + nr; r++) {
		uint64_t y = r % it->ne[1], plane = r / it->ne[1];
		uint64_t off = ((plane * 2 + (uint64_t)it->half) * it->ne[1] + y) * ne0;
		int rc = qvl_tensor_to_f32(&it->src, off, ne0, dst + (r - r0) * ne0);

		if (rc)
			return rc;
	}
	return 0;
}

/* Drop the source pages of a finished tensor from this process (they stay
 * in the page cache): the resident set stays bounded by the buffers. */
static void release_src(const struct cv_ctx *x, const struct cv_item *it, uint64_t off,
			uint64_t len)
{
	const struct qvl_source *s;
	uintptr_t a = (uintptr_t)it->src.data + off, e = a + len, pg = 4096;

	if (it->src.source < 0 || (size_t)it->src.source >= x->m->nsources)
		return;
	s = &x->m->sources[it->src.source];
	if (!s->map || a < (uintptr_t)s->map || e > (uintptr_t)s->map + s->size)
		return;
	/* whole pages only: the neighbours' bytes may still be needed */
	a = (a + pg - 1) & ~(pg - 1);
	e &= ~(pg - 1);
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
}

static void report(const struct cv_ctx *x, const struct cv_file *f, double done)
{
	if (x->o->progress)
		x->o->progress(x->o->progress_ctx, f->mmproj ? "mmproj" : "text", done,
			       (double)f->w.data_size);
}

/* Why row r of it cannot be written in its type: the value it cannot
 * encode, or the magnitude its scale cannot hold. */
static int encode_error(struct cv_ctx *x, const struct cv_item *it, uint64_t r, const float *row,
			int rc)
{
	float amax = 0;

	for (uint64_t c = 0; c < it->ne[0]; c++) {
		if (!isfinite(row[c]))
			return qvl_errf(x->err, rc,
					"tensor '%s' (source '%s'): row %" PRIu64
					", column %" PRIu64 " is %g: %s cannot encode it",
					it->name, it->src.name, r, c, (double)row[c],
					qvl_dtype_name(it->out));
		amax = fabsf(row[c]) > amax ? fabsf(row[c]) : amax;
	}
	return qvl_errf(x->err, rc,
			"tensor '%s' (source '%s'): row %" PRIu64 " (max |x| %g) cannot be written "
			"as %s: %s",
			it->name, it->src.name, r, (double)amax, qvl_dtype_name(it->out),
			qvl_strerror(rc));
}

/* Rows [a, b) of a chunk: x->f32 to x->buf. */
struct enc_part {
	struct cv_ctx *x;
	const struct cv_item *it;
	uint64_t a, b, row_bytes;
	uint64_t bad; /* first row that failed */
	int rc;
	pthread_t th;
};

static void *enc_part_run(void *arg)
{
	struct enc_part *p = arg;
	uint64_t ne0 = p->it->ne[0];

	for (uint64_t r = p->a; r < p->b && !p->rc; r++) {
		p->rc = cv_from_f32(p->it->out, p->x->f32 + r * ne0, p->x->buf + r * p->row_bytes,
				    (size_t)ne0);
		p->bad = r;
	}
	return NULL;
}

/* Encode nr rows of the chunk; the block quantizers are the slow part of a
 * conversion, so their rows are shared among threads (created per chunk:
 * a few hundred per model, nothing next to the work). */
static int encode_rows(struct cv_ctx *x, const struct cv_item *it, uint64_t r0, uint64_t nr,
		       uint64_t row_bytes)
{
	struct enc_part part[CV_MAX_THREADS];
	int nt = qvl_dtype_is_block(it->out) ? x->threads : 1, started = 1;

	if ((uint64_t)nt > nr)
		nt = (int)nr;
	for (int i = 0; i < nt; i++)
		part[i] = (struct enc_part){.x = x,
					    .it = it,
					    .a = nr * (uint64_t)i / (uint64_t)nt,
					    .b = nr * (uint64_t)(i + 1) / (uint64_t)nt,
					    .row_bytes = row_bytes};
	for (int i = 1; i < nt; i++, started++)
		if (pthread_create(&part[i].th, NULL, enc_part_run, &part[i]))
			break;
	/* rows of threads that could not start are done here */
	for (int i = started; i < nt; i++)
		enc_part_run(&part[i]);
	enc_part_run(&part[0]);
	for (int i = 1; i < started; i++)
		pthread_join(part[i].th, NULL);
	for (int i = 0; i < nt; i++)
		if (part[i].rc)
			return encode_error(x, it, r0 + part[i].bad,
					    x->f32 + part[i].bad * it->ne[0], part[i].rc);
	return 0;
}

static int write_item(struct cv_ctx *x, struct cv_file *f, size_t i, uint64_t *done)
{
	const struct cv_item *it = &f->it[i];
	uint64_t ne0 = it->ne[0], rows = it->src.nelem / (it->half >= 0 ? 2 : 1) / ne0;
	uint64_t step = CV_CHUNK_ELEMS / ne0 ? CV_CHUNK_ELEMS / ne0 : 1;
	uint64_t row_bytes = qvl_dtype_bytes(it->out, ne0, NULL);
	int rc = 0;

	if (it->half < 0 && it->src.dtype == it->out) {
		/* same type: the bytes as they are */
		const uint8_t *p = it->src.data;

		for (uint64_t o = 0; o < it->src.nbytes && !rc; o += 8u << 20) {
			uint64_t n =
			    it->src.nbytes - o < (8u << 20) ? it->src.nbytes - o : 8u << 20;

			rc = gguf_w_write_all(f->fd, p + o, n, f->tmp, x->err);
			release_src(x, it, o, n);
			*done += n;
			report(x, f, (double)*done);
		}
	}
	for (uint64_t r0 = 0; !rc && (it->half >= 0 || it->src.dtype != it->out) && r0 < rows;
	     r0 += step) {
		uint64_t nr = rows - r0 < step ? rows - r0 : step;

		/* the buffers hold at least one row; Qwen3-VL's rows are a few
		 * thousand values, so a longer one is refused, not split */
		if (ne0 > CV_CHUNK_ELEMS) {
			rc = qvl_errf(x->err, -E2BIG,
				      "tensor '%s': rows of %" PRIu64 " values (at most %u)",
				      it->name, ne0, CV_CHUNK_ELEMS);
			break;
		}
		rc = fetch_rows(it, r0, nr, x->f32);
		if (rc) {
			rc =
			    qvl_errf(x->err, rc, "tensor '%s': cannot read its %s values: %s",
				     it->src.name, qvl_dtype_name(it->src.dtype), qvl_strerror(rc));
			break;
		}
		if (it->half < 0)
			release_src(x, it, qvl_dtype_bytes(it->src.dtype, r0 * ne0, NULL),
				    qvl_dtype_bytes(it->src.dtype, nr * ne0, NULL));
		rc = encode_rows(x, it, r0, nr, row_bytes);
		if (rc)
			break;
		rc = gguf_w_write_all(f->fd, x->buf, nr * row_bytes, f->tmp, x->err);
		*done += nr * row_bytes;
		report(x, f, (double)*done);
	}
	if (!rc)
		rc = gguf_w_write_pad(&f->w, f->fd, i, f->tmp, x->err);
	release_src(x, it, 0, it->src.nbytes);
	return rc;
}

static int write_file(struct cv_ctx *x, struct cv_file *f)
{
	uint64_t done = 0;
	int rc;

	for (size_t i = 0; i < f->n; i++) {
		struct cv_item *it = &f->it[i];

		if (gguf_w_tensor(&f->w, it->name, it->n_dims, it->ne, it->out) < 0)
			break;
		f->res->count[it->out]++;
	}
	if ((rc = gguf_w_write_header(&f->w, f->fd, f->tmp, x->err)))
		return rc;
	report(x, f, 0);
	for (size_t i = 0; i < f->n && !rc; i++)
		rc = write_item(x, f, i, &done);
	if (x->o->progress)
		x->o->progress(x->o->progress_ctx, NULL, 0, 0);
	if (!rc && fdatasync(f->fd) < 0)
		rc = qvl_errf(x->err, -errno, "%s: %s", f->tmp, strerror(errno));
	if (!rc) {
		f->res->n_tensors = f->n;
		f->res->bytes = (uint64_t)lseek(f->fd, 0, SEEK_CUR);
	}
	return rc;
}

/* ---- files -------------------------------------------------------------- */

static int open_tmp(struct cv_ctx *x, struct cv_file *f, int slot)
{
	size_t n = strlen(f->path);

	f->tmp = malloc(n + 5);
	if (!f->tmp)
		return qvl_errf(x->err, -ENOMEM, "out of memory");
	memcpy(f->tmp, f->path, n);
	memcpy(f->tmp + n, ".tmp", 5);
	cv_tmp_paths[slot] = f->tmp;
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (f->fd < 0) {
		int e = errno;

		cv_tmp_paths[slot] = NULL;
		return qvl_errf(x->err, -e, "%s: cannot create %s: %s", f->path, f->tmp,
				strerror(e));
	}
	return 0;
}

static void close_file(struct cv_file *f, int slot, bool keep)
{
	if (f->fd >= 0) {
		close(f->fd);
		f->fd = -1;
		if (!keep)
			unlink(f->tmp);
	}
	cv_tmp_paths[slot] = NULL;
	free(f->tmp);
	free(f->it);
	gguf_w_free(&f->w);
}

static int finish_file(struct cv_ctx *x, struct cv_file *f)
{
	if (rename(f->tmp, f->path) < 0)
		return qvl_errf(x->err, -errno, "%s: cannot rename %s over it: %s", f->path, f->tmp,
				strerror(errno));
	snprintf(f->res->path, sizeof(f->res->path), "%s", f->path);
	return 0;
}

static int cv_run(struct cv_ctx *x)
{
	const struct cv_opts *o = x->o;
	bool gguf = x->m->format == QVL_FMT_GGUF;
	int rc;

	if (o->out_mmproj && !x->m->config.vision.present)
		return qvl_errf(x->err, -EINVAL, "%s: --mmproj %s: the model has no vision tower%s",
				o->model, o->out_mmproj,
				gguf ? " (for a .gguf model, name its mmproj with --in-mmproj)"
				     : "");
	if ((rc = open_tmp(x, &x->text, 0)) || (o->out_mmproj && (rc = open_tmp(x, &x->proj, 1))))
		return rc;
	rc = gguf ? plan_gguf(x, &x->text, x->m->gguf_text) : plan_hf(x);
	if (!rc && gguf && o->out_mmproj)
		rc = plan_gguf(x, &x->proj, x->m->gguf_mmproj);
	if (rc || (rc = choose_types(x, &x->text)) || (rc = metadata(x, &x->text)))
		return rc;
	if (o->out_mmproj && ((rc = choose_types(x, &x->proj)) || (rc = metadata(x, &x->proj))))
		return rc;
	x->f32 = malloc(CV_CHUNK_ELEMS * sizeof(float));
	x->buf = malloc(CV_CHUNK_ELEMS * sizeof(float));
	if (!x->f32 || !x->buf)
		return qvl_errf(x->err, -ENOMEM, "out of memory for the conversion buffers");
	if ((rc = write_file(x, &x->text)) || (o->out_mmproj && (rc = write_file(x, &x->proj))))
		return rc;
	/* both complete before either replaces an existing file */
	if ((rc = finish_file(x, &x->text)))
		return rc;
	x->text.fd = (close(x->text.fd), -1);
	if (o->out_mmproj && !(rc = finish_file(x, &x->proj)))
		x->proj.fd = (close(x->proj.fd), -1);
	return rc;
}

int cv_convert(const struct cv_opts *o, struct cv_result *r, struct qvl_err *err)
{
	struct cv_ctx x = {.o = o, .r = r, .err = err};
	struct sigaction sa = {.sa_handler = cv_on_signal}, old[3];
	static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
	double t0 = qvl_now();
	int rc;

	memset(r, 0, sizeof(*r));
	x.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	x.threads = x.threads < 1 ? 1 : x.threads > CV_MAX_THREADS ? CV_MAX_THREADS : x.threads;
	x.text = (struct cv_file){.path = o->out, .fd = -1, .res = &r->text};
	x.proj =
	    (struct cv_file){.path = o->out_mmproj, .fd = -1, .mmproj = true, .res = &r->mmproj};
	gguf_w_init(&x.text.w);
	gguf_w_init(&x.proj.w);
	r->text.ftype = o->preset->ftype;
	r->mmproj.ftype = cv_preset_find(o->preset->mmproj)->ftype;
	r->has_mmproj = o->out_mmproj != NULL;
	rc = qvl_model_open(&x.m, o->model, o->in_mmproj, err);
	if (rc)
		return rc;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	rc = cv_run(&x);
	close_file(&x.text, 0, false);
	close_file(&x.proj, 1, false);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	free(x.f32);
	free(x.buf);
	qvl_model_close(x.m);
	r->seconds = qvl_now() - t0;
	return rc;
}
