/* The deterministic model's building blocks against testmodel.md: the §5.5
 * test vectors (fnv1a64, key, x, r, bf16, value), the fast fill paths against
 * the one-element reference on ragged ranges, tensor counts and parameters
 * (§2), order and scales (§3, §5.3), header and file sizes (§6), and seed
 * parsing (§1). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel.h"
#include "tap.h"

static const struct qvl_mk_tensor *find(const struct qvl_mk_plan *p, const char *name)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->t[i].name, name))
			return &p->t[i];
	return NULL;
}

static float bf16_value(uint16_t b)
{
	uint32_t u = (uint32_t)b << 16;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

struct vec {
	uint64_t i, x;
	int32_t r;
	uint16_t bf16;
	double value;
};

static void check_vectors(const struct qvl_mk_plan *p, const char *name, uint64_t fnv, uint64_t key,
			  const struct vec *v, int nv)
{
	const struct qvl_mk_tensor *t = find(p, name);

	if (!ok(t != NULL, "%s in the tensor list", name))
		return;
	ok(qvl_mk_fnv1a64(name, strlen(name)) == fnv, "fnv1a64(%s) = 0x%016" PRIx64, name, fnv);
	ok(t->key == key && qvl_mk_tensor_key(p->seed, name) == key,
	   "key(%s, seed %" PRIu64 ") = 0x%016" PRIx64, name, p->seed, key);
	for (int k = 0; k < nv; k++) {
		uint16_t fill;

		qvl_mk_fill(t, v[k].i, 1, &fill);
		ok(qvl_mk_x(key, v[k].i) == v[k].x, "x[%" PRIu64 "] = 0x%016" PRIx64, v[k].i,
		   v[k].x);
		is_int(qvl_mk_r(key, v[k].i), v[k].r, "r[%" PRIu64 "] = %d", v[k].i, v[k].r);
		ok(qvl_mk_element(t, v[k].i) == v[k].bf16 && fill == v[k].bf16,
		   "bf16[%" PRIu64 "] = 0x%04x (reference and fill)", v[k].i, v[k].bf16);
		ok(bf16_value(v[k].bf16) == (float)v[k].value, "value[%" PRIu64 "] = %.17g", v[k].i,
		   v[k].value);
	}
}

static void test_vectors(void)
{
	struct qvl_mk_plan p0, p1;
	struct qvl_err err;

	if (qvl_mk_plan_init(&p0, "tiny", 0, true, &err) ||
	    qvl_mk_plan_init(&p1, "tiny", 1, true, &err)) {
		ok(0, "plan: %s", err.msg);
		return;
	}
	check_vectors(&p0, "model.language_model.embed_tokens.weight", 0xddb796cdcc616f74ULL,
		      0x19dce0ca0e752184ULL,
		      (const struct vec[]){
			  {0, 0x7df1ef386859db59ULL, -134673, 0xba04, -0.0005035400390625},
			  {1, 0x5b03dd1fb9c0e11eULL, -2423843, 0xbc14, -0.009033203125},
			  {2, 0xdbe82dca6990cc02ULL, 6023213, 0x3cb8, 0.0224609375},
		      },
		      3);
	check_vectors(&p0, "model.language_model.layers.0.input_layernorm.weight",
		      0x5dd94404c1919a32ULL, 0xdc4ef627634b4474ULL,
		      (const struct vec[]){
			  {0, 0x7d097e2ebdbaac2fULL, -194178, 0x3f7f, 0.99609375},
			  {1, 0x258e4b3fdad0d36eULL, -5927349, 0x3f53, 0.82421875},
		      },
		      2);
	check_vectors(&p0, "model.language_model.norm.weight", 0x960ac627e68edffeULL,
		      0x6088d79ace10a37eULL,
		      (const struct vec[]){
			  {0, 0xce17ca70c35c4f60ULL, 5117898, 0x4294, 74.0},
			  {1, 0x4e0015a97eaeb4a4ULL, -3276779, 0x4267, 57.75},
		      },
		      2);
	check_vectors(&p0, "model.visual.blocks.0.attn.qkv.bias", 0xc94d2a9ee01d2dcaULL,
		      0xe9477376a814e4bfULL,
		      (const struct vec[]){
			  {0, 0xe1de9fc6d5a70976ULL, 6413983, 0x3dc4, 0.095703125},
		      },
		      1);
	check_vectors(&p1, "model.language_model.embed_tokens.weight", 0xddb796cdcc616f74ULL,
		      0x8798f1169d5d0501ULL,
		      (const struct vec[]){
			  {0, 0x979fad9598282efeULL, 1548205, 0x3bbd, 0.005767822265625},
		      },
		      1);
	/* §5.2 rounding on its own: ties to even, both directions */
	is_int(qvl_mk_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80, "bf16 tie rounds down to even");
	is_int(qvl_mk_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82, "bf16 tie rounds up to even");
	is_int(qvl_mk_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81, "bf16 above tie rounds up");
	qvl_mk_plan_free(&p0);
	qvl_mk_plan_free(&p1);
}

/* Fast paths == one-element reference, on ragged starts and counts (the
 * AVX-512 loop does 16 at a time plus a scalar tail). */
static void test_fill(void)
{
	struct qvl_mk_plan p;
	struct qvl_err err;
	uint16_t a[1100], b[1100];
	size_t bad = 0, bad_range = 0;

	if (qvl_mk_plan_init(&p, "tiny", 0x123456789abcdefULL, true, &err)) {
		ok(0, "plan: %s", err.msg);
		return;
	}
	for (size_t k = 0; k < p.n; k += 7) {
		const struct qvl_mk_tensor *t = &p.t[k];

		for (uint64_t start = 0; start < 40; start += 13) {
			for (size_t cnt = 0; cnt <= 40 && start + cnt <= t->numel; cnt++) {
				qvl_mk_fill(t, start, cnt, a);
				qvl_mk_fill_scalar(t, start, cnt, b);
				for (size_t i = 0; i < cnt; i++)
					bad += a[i] != qvl_mk_element(t, start + i) || b[i] != a[i];
			}
		}
		if (t->numel >= 1000 + 517) {
			qvl_mk_fill(t, 517, 1000, a);
			for (size_t i = 0; i < 1000; i++)
				bad += a[i] != qvl_mk_element(t, 517 + i);
		}
	}
	is_int(bad, 0, "qvl_mk_fill and qvl_mk_fill_scalar equal qvl_mk_element");

	/* byte ranges of the data section that straddle tensor boundaries */
	for (size_t k = 1; k < p.n; k++) {
		uint64_t off = p.t[k].offset >= 600 ? p.t[k].offset - 600 : 0;
		size_t len = 2 * 1100;

		if (off + len > p.data_bytes)
			len = (size_t)(p.data_bytes - off);
		qvl_mk_fill_range(&p, off, len, a);
		for (size_t i = 0; i < len / 2; i++) {
			uint64_t byte = off + 2 * i;
			size_t j = 0;

			while (j + 1 < p.n && p.t[j + 1].offset <= byte)
				j++;
			bad_range += a[i] != qvl_mk_element(&p.t[j], (byte - p.t[j].offset) / 2);
		}
	}
	is_int(bad_range, 0, "qvl_mk_fill_range across tensor boundaries");
	qvl_mk_plan_free(&p);
}

/* §2 and §6 tables; order and scales of §3 / §5.3 */
static void test_plans(void)
{
	static const struct {
		const char *shape;
		bool vision;
		size_t tensors;
		uint64_t params, header_n, file_bytes;
	} want[] = {
	    {"tiny", true, 115, 10136928, 13144, 20287008},
	    {"tiny", false, 46, 9970496, 5656, 19946656},
	    {"2b", true, 625, 2127532032ULL, 76240, 4255140312ULL},
	    {"2b", false, 310, 1720574976ULL, 40296, 3441190256ULL},
	};
	struct qvl_mk_plan p;
	struct qvl_err err;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *what = want[i].vision ? "" : " --no-vision";

		if (!ok(!qvl_mk_plan_init(&p, want[i].shape, 0, want[i].vision, &err), "plan %s%s",
			want[i].shape, what))
			continue;
		is_int(p.n, want[i].tensors, "%s%s: %zu tensors", want[i].shape, what,
		       want[i].tensors);
		is_int(p.params, want[i].params, "%s%s: %" PRIu64 " parameters", want[i].shape,
		       what, want[i].params);
		is_int(p.header_bytes - 8, want[i].header_n, "%s%s: header N = %" PRIu64,
		       want[i].shape, what, want[i].header_n);
		is_int(p.header_bytes + p.data_bytes, want[i].file_bytes,
		       "%s%s: file size %" PRIu64, want[i].shape, what, want[i].file_bytes);
		size_t unsorted = 0;

		for (size_t k = 1; k < p.n; k++)
			unsorted += strcmp(p.t[k - 1].name, p.t[k].name) >= 0;
		is_int(unsorted, 0, "%s%s: names strictly increasing as bytes", want[i].shape,
		       what);
		qvl_mk_plan_free(&p);
	}

	static const struct {
		const char *shape, *name;
		int exp;
		bool center;
	} scales[] = {
	    {"tiny", "model.language_model.embed_tokens.weight", 5, false},
	    {"2b", "model.language_model.embed_tokens.weight", 8, false},
	    {"tiny", "model.language_model.layers.0.self_attn.o_proj.weight", 3, false},
	    {"2b", "model.language_model.layers.27.mlp.down_proj.weight", 5, false},
	    {"tiny", "model.visual.patch_embed.proj.weight", 4, false},
	    {"2b", "model.visual.blocks.23.mlp.linear_fc1.weight", 4, false},
	    {"2b", "model.visual.blocks.0.mlp.linear_fc2.weight", 5, false},
	    {"tiny", "model.visual.merger.linear_fc2.weight", 3, false},
	    {"2b", "model.visual.deepstack_merger_list.2.linear_fc1.weight", 5, false},
	    {"tiny", "model.visual.pos_embed.weight", 1, false},
	    {"tiny", "model.visual.merger.norm.bias", 3, false},
	    {"tiny", "model.language_model.norm.weight", -4, true},
	    {"2b", "model.language_model.layers.3.self_attn.k_norm.weight", 2, true},
	};
	for (size_t i = 0; i < sizeof(scales) / sizeof(scales[0]); i++) {
		const struct qvl_mk_tensor *t;

		if (qvl_mk_plan_init(&p, scales[i].shape, 0, true, &err))
			continue;
		t = find(&p, scales[i].name);
		ok(t && t->exp == scales[i].exp && t->has_center == scales[i].center,
		   "%s %s: scale 2^%d%s", scales[i].shape, scales[i].name, -scales[i].exp,
		   scales[i].center ? " with center" : "");
		qvl_mk_plan_free(&p);
	}
	if (!qvl_mk_plan_init(&p, "tiny", 0, true, &err)) {
		ok(!strcmp(p.t[0].name, "model.language_model.embed_tokens.weight") &&
		       !strcmp(p.t[1].name,
			       "model.language_model.layers.0.input_layernorm.weight") &&
		       !strcmp(p.t[2].name, "model.language_model.layers.0.mlp.down_proj.weight") &&
		       !strcmp(p.t[p.n - 1].name, "model.visual.pos_embed.weight"),
		   "first and last tiny tensors as in §3");
		qvl_mk_plan_free(&p);
	}
	ok(qvl_mk_plan_init(&p, "7b", 0, true, &err) == -EINVAL && strstr(err.msg, "7b"),
	   "unknown shape rejected, named: %s", err.msg);
}

static void test_seeds(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
	    {"0", 0},
	    {"123", 123},
	    {"0x7b", 123},
	    {"0X7B", 123},
	    {"012", 12}, /* §1: decimal, never octal */
	    {"18446744073709551615", UINT64_MAX},
	    {"0xffffffffffffffff", UINT64_MAX},
	    {"0x0000000000000000001", 1},
	};
	static const char *const bad[] = {
	    "",
	    "-1",
	    "+1",
	    "1_0",
	    "0x",
	    "18446744073709551616",
	    "0x10000000000000000",
	    " 1",
	    "1 ",
	    "0b1",
	    "1e3",
	    "0o7",
	    "0x-1",
	    "x1",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ok(!qvl_mk_parse_seed(good[i].s, &v) && v == good[i].v, "seed '%s' = %" PRIu64,
		   good[i].s, good[i].v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ok(qvl_mk_parse_seed(bad[i], &v) == -EINVAL, "seed '%s' rejected", bad[i]);
}

int main(void)
{
	test_vectors();
	test_fill();
	test_plans();
	test_seeds();
	return done_testing();
}
