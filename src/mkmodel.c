/* The deterministic test model: shapes, tensor list, PRNG, value rules and
 * the safetensors header (testmodel.md §2-§6). The fill kernels live in
 * mkmodel_fill.c, the JSON side files in mkmodel_json.c, the writer in
 * mkmodel_write.c. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel.h"
#include "util.h"

static const struct qvl_mk_shape qvl_mk_shapes[] = {
    {
	.name = "tiny",
	.vocab = 151936,
	.hidden = 64,
	.inter = 192,
	.layers = 4,
	.heads = 4,
	.kv_heads = 2,
	.head_dim = 32,
	.max_pos = 8192,
	.mrope = {6, 5, 5},
	.v_depth = 4,
	.v_hidden = 32,
	.v_inter = 64,
	.v_heads = 2,
	.v_out = 64,
	.v_pos = 256,
	.v_deepstack = {1, 2},
	.v_ndeepstack = 2,
    },
    {
	.name = "2b",
	.vocab = 151936,
	.hidden = 2048,
	.inter = 6144,
	.layers = 28,
	.heads = 16,
	.kv_heads = 8,
	.head_dim = 128,
	.max_pos = 262144,
	.mrope = {24, 20, 20},
	.v_depth = 24,
	.v_hidden = 1024,
	.v_inter = 4096,
	.v_heads = 16,
	.v_out = 2048,
	.v_pos = 2304,
	.v_deepstack = {5, 11, 17},
	.v_ndeepstack = 3,
    },
};

const struct qvl_mk_shape *qvl_mk_find_shape(const char *name)
{
	for (size_t i = 0; i < sizeof(qvl_mk_shapes) / sizeof(qvl_mk_shapes[0]); i++)
		if (!strcmp(qvl_mk_shapes[i].name, name))
			return &qvl_mk_shapes[i];
	return NULL;
}

uint64_t qvl_mk_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = QVL_MK_FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * QVL_MK_FNV_PRIME;
	return h;
}

uint64_t qvl_mk_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

uint64_t qvl_mk_tensor_key(uint64_t seed, const char *name)
{
	return qvl_mk_mix64(seed ^ qvl_mk_fnv1a64(name, strlen(name)));
}

uint64_t qvl_mk_x(uint64_t key, uint64_t i)
{
	return qvl_mk_mix64(key + (i + 1) * QVL_MK_GOLDEN);
}

int32_t qvl_mk_r(uint64_t key, uint64_t i)
{
	return (int32_t)(qvl_mk_x(key, i) >> 40) - (1 << 23);
}

uint16_t qvl_mk_f32_to_bf16(float v)
{
	uint32_t b;

	memcpy(&b, &v, sizeof(b));
	return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

/* Kept deliberately naive (§5.4): the reference the fill kernels must equal. */
uint16_t qvl_mk_element(const struct qvl_mk_tensor *t, uint64_t i)
{
	float v = (float)qvl_mk_r(t->key, i) * ldexpf(1.0f, -23 - t->exp); /* exact */

	if (t->has_center)
		v = ldexpf(1.0f, t->center) + v; /* the one rounding */
	return qvl_mk_f32_to_bf16(v);
}

/* E(n) = (floor(log2 n) - 1) div 2 (§5.3); n >= 2 here. */
static int linear_exp(uint64_t n)
{
	int fl = 63 - __builtin_clzll(n);

	return (fl - 1) / 2;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !memcmp(s + a - b, suffix, b);
}

void qvl_mk_classify(struct qvl_mk_tensor *t)
{
	t->has_center = false;
	t->center = 0;
	if (ends_with(t->name, ".bias")) {
		t->exp = 3;
	} else if (ends_with(t->name, "embed_tokens.weight")) {
		t->exp = linear_exp(t->shape[1]) + 3;
	} else if (ends_with(t->name, "pos_embed.weight")) {
		t->exp = 1;
	} else if (!strcmp(t->name, "model.language_model.norm.weight")) {
		t->exp = -4; /* 64 + 16 f: sets the logit scale (§9) */
		t->has_center = true;
		t->center = 6;
	} else if (t->ndim == 1) {
		t->exp = 2; /* norms: 1 + f/4 */
		t->has_center = true;
		t->center = 0;
	} else {
		uint64_t fan_in = 1;

		for (int d = 1; d < t->ndim; d++)
			fan_in *= t->shape[d];
		t->exp = linear_exp(fan_in);
	}
}

int qvl_mk_parse_seed(const char *s, uint64_t *out)
{
	/* qvl_parse_u64 is exactly §1: digits only (or 0x + hex digits), range
	 * checked through strtoull's ERANGE, base 10 for a leading 0. */
	return qvl_parse_u64(s, out);
}

/* Tensor list construction: a growable array filled in spec order, then
 * sorted by name bytes. */
struct tlist {
	struct qvl_mk_tensor *t;
	size_t n, cap;
};

__attribute__((format(printf, 4, 5))) static int add(struct tlist *l, int ndim,
						     const uint64_t *shape, const char *fmt, ...)
{
	struct qvl_mk_tensor *t;
	va_list ap;
	int len;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 128;
		void *nt = realloc(l->t, cap * sizeof(*l->t));

		if (!nt)
			return -ENOMEM;
		l->t = nt;
		l->cap = cap;
	}
	t = &l->t[l->n];
	memset(t, 0, sizeof(*t));
	va_start(ap, fmt);
	len = vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(t->name))
		return -ENAMETOOLONG;
	t->ndim = ndim;
	t->numel = 1;
	for (int d = 0; d < ndim; d++) {
		t->shape[d] = shape[d];
		t->numel *= shape[d];
	}
	l->n++;
	return 0;
}

/* T: a fixed name; TN: a name with the layer/block index `idx` in it. */
#define ADD_(l, shp_, ...)                                                                         \
	do {                                                                                       \
		int rc_ = add(l, (int)(sizeof(shp_) / sizeof(shp_[0])), shp_, __VA_ARGS__);        \
		if (rc_)                                                                           \
			return rc_;                                                                \
	} while (0)
#define T(name, ...) ADD_(l, ((const uint64_t[]){__VA_ARGS__}), "%s", name)
#define TN(fmt, ...) ADD_(l, ((const uint64_t[]){__VA_ARGS__}), fmt, idx)

static int text_tensors(struct tlist *l, const struct qvl_mk_shape *s)
{
	uint64_t H = s->hidden, I = s->inter, Q = (uint64_t)s->heads * s->head_dim;
	uint64_t KV = (uint64_t)s->kv_heads * s->head_dim, hd = s->head_dim;
	int idx;

	T("model.language_model.embed_tokens.weight", s->vocab, H);
	T("model.language_model.norm.weight", H);
	for (idx = 0; idx < s->layers; idx++) {
		TN("model.language_model.layers.%d.input_layernorm.weight", H);
		TN("model.language_model.layers.%d.post_attention_layernorm.weight", H);
		TN("model.language_model.layers.%d.self_attn.q_proj.weight", Q, H);
		TN("model.language_model.layers.%d.self_attn.k_proj.weight", KV, H);
		TN("model.language_model.layers.%d.self_attn.v_proj.weight", KV, H);
		TN("model.language_model.layers.%d.self_attn.o_proj.weight", H, Q);
		TN("model.language_model.layers.%d.self_attn.q_norm.weight", hd);
		TN("model.language_model.layers.%d.self_attn.k_norm.weight", hd);
		TN("model.language_model.layers.%d.mlp.gate_proj.weight", I, H);
		TN("model.language_model.layers.%d.mlp.up_proj.weight", I, H);
		TN("model.language_model.layers.%d.mlp.down_proj.weight", H, I);
	}
	return 0;
}

static int vision_tensors(struct tlist *l, const struct qvl_mk_shape *s)
{
	uint64_t VH = s->v_hidden, VI = s->v_inter, VO = s->v_out, M = 4 * VH;
	int idx;

	T("model.visual.patch_embed.proj.weight", VH, 3, 2, 16, 16);
	T("model.visual.patch_embed.proj.bias", VH);
	T("model.visual.pos_embed.weight", s->v_pos, VH);
	for (idx = 0; idx < s->v_depth; idx++) {
		TN("model.visual.blocks.%d.norm1.weight", VH);
		TN("model.visual.blocks.%d.norm1.bias", VH);
		TN("model.visual.blocks.%d.norm2.weight", VH);
		TN("model.visual.blocks.%d.norm2.bias", VH);
		TN("model.visual.blocks.%d.attn.qkv.weight", 3 * VH, VH);
		TN("model.visual.blocks.%d.attn.qkv.bias", 3 * VH);
		TN("model.visual.blocks.%d.attn.proj.weight", VH, VH);
		TN("model.visual.blocks.%d.attn.proj.bias", VH);
		TN("model.visual.blocks.%d.mlp.linear_fc1.weight", VI, VH);
		TN("model.visual.blocks.%d.mlp.linear_fc1.bias", VI);
		TN("model.visual.blocks.%d.mlp.linear_fc2.weight", VH, VI);
		TN("model.visual.blocks.%d.mlp.linear_fc2.bias", VH);
	}
	T("model.visual.merger.norm.weight", VH);
	T("model.visual.merger.norm.bias", VH);
	T("model.visual.merger.linear_fc1.weight", M, M);
	T("model.visual.merger.linear_fc1.bias", M);
	T("model.visual.merger.linear_fc2.weight", VO, M);
	T("model.visual.merger.linear_fc2.bias", VO);
	for (idx = 0; idx < s->v_ndeepstack; idx++) {
		TN("model.visual.deepstack_merger_list.%d.norm.weight", M);
		TN("model.visual.deepstack_merger_list.%d.norm.bias", M);
		TN("model.visual.deepstack_merger_list.%d.linear_fc1.weight", M, M);
		TN("model.visual.deepstack_merger_list.%d.linear_fc1.bias", M);
		TN("model.visual.deepstack_merger_list.%d.linear_fc2.weight", VO, M);
		TN("model.visual.deepstack_merger_list.%d.linear_fc2.bias", VO);
	}
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: the byte order of §3 */
	return strcmp(((const struct qvl_mk_tensor *)a)->name,
		      ((const struct qvl_mk_tensor *)b)->name);
}

/* Append printf output to a growable buffer. */
struct sbuf {
	char *s;
	size_t len, cap;
	int err;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if (b->s && b->len + (size_t)n < b->cap)
			break;
		size_t cap = b->cap ? b->cap : 4096;
		while (cap <= b->len + (size_t)n)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->err = -ENOMEM;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	b->len += (size_t)n;
}

/* §6: the exact header: 8-byte little-endian N, compact JSON, spaces to N % 8 == 0. */
static int build_header(struct qvl_mk_plan *p)
{
	struct sbuf b = {0};
	uint64_t off = 0, n;

	sb_printf(&b, "%8s", ""); /* room for N */
	sb_printf(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
	for (size_t i = 0; i < p->n; i++) {
		struct qvl_mk_tensor *t = &p->t[i];

		t->offset = off;
		sb_printf(&b, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[", t->name);
		for (int d = 0; d < t->ndim; d++)
			sb_printf(&b, "%s%" PRIu64, d ? "," : "", t->shape[d]);
		sb_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off,
			  off + 2 * t->numel);
		off += 2 * t->numel;
	}
	sb_printf(&b, "}");
	while (!b.err && (b.len - 8) % 8)
		sb_printf(&b, " ");
	if (b.err) {
		free(b.s);
		return b.err;
	}
	n = b.len - 8;
	for (int i = 0; i < 8; i++)
		b.s[i] = (char)(n >> (8 * i));
	p->header = b.s;
	p->header_bytes = b.len;
	p->data_bytes = off;
	return 0;
}

int qvl_mk_plan_init(struct qvl_mk_plan *p, const char *shape, uint64_t seed, bool vision,
		     struct qvl_err *err)
{
	const struct qvl_mk_shape *s = qvl_mk_find_shape(shape);
	struct tlist l = {0};
	int rc;

	memset(p, 0, sizeof(*p));
	if (!s)
		return qvl_errf(err, -EINVAL, "unknown shape '%s' (want tiny or 2b)", shape);
	rc = text_tensors(&l, s);
	if (!rc && vision)
		rc = vision_tensors(&l, s);
	if (rc) {
		free(l.t);
		return qvl_errf(err, rc, "building the tensor list: %s", qvl_strerror(rc));
	}
	qsort(l.t, l.n, sizeof(*l.t), cmp_name);
	p->shape = s;
	p->seed = seed;
	p->vision = vision;
	p->t = l.t;
	p->n = l.n;
	for (size_t i = 0; i < l.n; i++) {
		l.t[i].key = qvl_mk_tensor_key(seed, l.t[i].name);
		qvl_mk_classify(&l.t[i]);
		p->params += l.t[i].numel;
	}
	rc = build_header(p);
	if (rc) {
		qvl_mk_plan_free(p);
		return qvl_errf(err, rc, "building the safetensors header: %s", qvl_strerror(rc));
	}
	return 0;
}

void qvl_mk_plan_free(struct qvl_mk_plan *p)
{
	free(p->t);
	free(p->header);
	memset(p, 0, sizeof(*p));
}
