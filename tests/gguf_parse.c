/* The GGUF parser on files built here byte by byte: a valid file read back
 * through every accessor, then each kind of malformed file, which must give
 * an error naming the file and the problem (never a crash; this test also
 * runs under ASan/UBSan), then every truncation of the real mmproj file. */
#include <stdio.h>
#include <string.h>

#include "gguf.h"
#include "gguf_writer.h"
#include "tap.h"
#include "util.h"

/* What the builder can get wrong; zero values give the valid file. */
struct knobs {
	const char *magic;
	uint32_t version;
	uint64_t nkv_add;    /* added to the true kv count */
	bool key_bad_utf8;   /* a key with a stray 0xff byte */
	uint64_t str_len;    /* length field of a string value, if set */
	uint64_t arr_len;    /* length field of the u32 array, if set */
	uint32_t kv_type;    /* value type of t.u32, if set */
	int nest;	     /* nesting depth of t.deep (default 2) */
	uint32_t align;	     /* general.alignment value (0: 32) */
	uint32_t align_type; /* its value type (0: uint32) */
	bool align_zero;     /* general.alignment = 0 */
	bool ne_zero;	     /* tensor a has ne[1] = 0 */
	bool dup_key;	     /* t.i8 spelled t.u8 */
	bool off_b_set;
	uint64_t off_b;	       /* offset of tensor b */
	uint32_t ndim_a;       /* n_dims of tensor a (0: 2) */
	uint64_t ne_a0, ne_a1; /* ne of tensor a (0: 8 x 2) */
	uint32_t type_b;       /* type of tensor b (0: Q8_0) */
	uint64_t ne_b0;	       /* ne[0] of tensor b (0: 32) */
	const char *name_b;    /* name of tensor b (0: "b") */
	bool name_b_bad;       /* tensor name with an overlong UTF-8 form */
	uint8_t bool_val;      /* value of t.bool (0: 1) */
	size_t cut;	       /* truncate the file to this many bytes */
	size_t cut_tail;       /* drop this many bytes from the end */
};

static void nested(struct gw *w, int depth)
{
	/* an array of one array of ... of two int32 */
	if (depth == 1) {
		gw_u32(w, 5);
		gw_u64(w, 2);
		gw_u32(w, 7);
		gw_u32(w, (uint32_t)-8);
		return;
	}
	gw_u32(w, 9);
	gw_u64(w, 1);
	nested(w, depth - 1);
}

static struct gw build(const struct knobs *k)
{
	struct gw w = {0};
	uint32_t align = k->align ? k->align : 32;
	uint32_t align_val = k->align_zero ? 0 : align;
	uint64_t ne_a[8] = {
	    k->ne_a0 ? k->ne_a0 : 8, k->ne_zero ? 0 : k->ne_a1 ? k->ne_a1 : 2, 1, 1, 1, 1, 1, 1};
	uint64_t ne_b[1] = {k->ne_b0 ? k->ne_b0 : 32};
	size_t data;

	gw_bytes(&w, k->magic ? k->magic : "GGUF", 4);
	gw_u32(&w, k->version ? k->version : 3);
	gw_u64(&w, 2);
	gw_u64(&w, 18 + k->nkv_add);
	gw_kv_str(&w, "general.architecture", "test");
	gw_key(&w, "general.alignment", k->align_type ? k->align_type : 4);
	if (k->align_type == 10)
		gw_u64(&w, align_val);
	else if (k->align_type == 6)
		gw_f32(&w, (float)align_val);
	else
		gw_u32(&w, align_val);
	gw_key(&w, "t.u8", 0), gw_u8(&w, 200);
	gw_key(&w, k->dup_key ? "t.u8" : "t.i8", 1), gw_u8(&w, (uint8_t)-5);
	gw_key(&w, "t.u16", 2), gw_bytes(&w, &(uint16_t){60000}, 2);
	gw_key(&w, "t.i16", 3), gw_bytes(&w, &(int16_t){-300}, 2);
	gw_key(&w, "t.u32", k->kv_type ? k->kv_type : 4), gw_u32(&w, 4000000000u);
	gw_key(&w, "t.i32", 5), gw_u32(&w, (uint32_t)-70000);
	gw_key(&w, "t.f32", 6), gw_f32(&w, 1.5f);
	gw_key(&w, "t.bool", 7), gw_u8(&w, k->bool_val ? k->bool_val : 1);
	gw_key(&w, "t.u64", 10), gw_u64(&w, UINT64_C(1) << 40);
	gw_key(&w, "t.i64", 11), gw_u64(&w, (uint64_t) - (INT64_C(1) << 40));
	gw_key(&w, "t.f64", 12), gw_bytes(&w, &(double){2.25}, 8);
	gw_key(&w, k->key_bad_utf8 ? "t.s\xfftr" : "t.str", 8);
	if (k->str_len) {
		gw_u64(&w, k->str_len);
		gw_bytes(&w, "hello", 5);
	} else {
		gw_str(&w, "hello");
	}
	gw_key(&w, "t.strs", 9), gw_u32(&w, 8), gw_u64(&w, 3);
	gw_str(&w, "a"), gw_str(&w, "bc"), gw_str(&w, "");
	gw_key(&w, "t.arr", 9), gw_u32(&w, 4), gw_u64(&w, k->arr_len ? k->arr_len : 3);
	gw_u32(&w, 1), gw_u32(&w, 2), gw_u32(&w, 3);
	gw_key(&w, "t.deep", 9);
	nested(&w, k->nest ? k->nest : 2);
	/* an array of two arrays of strings: offsets tables at two levels */
	gw_key(&w, "t.nstr", 9), gw_u32(&w, 9), gw_u64(&w, 2);
	gw_u32(&w, 8), gw_u64(&w, 1), gw_str(&w, "x");
	gw_u32(&w, 8), gw_u64(&w, 2), gw_str(&w, "yy"), gw_str(&w, "zzz");

	gw_tensor(&w, "a", k->ndim_a ? k->ndim_a : 2, ne_a, 0, 0);
	if (k->name_b_bad)
		gw_tensor(&w, "b\xc0\xaf", 1, ne_b, k->type_b ? k->type_b : 8,
			  k->off_b_set ? k->off_b : 64);
	else
		gw_tensor(&w, k->name_b ? k->name_b : "b", 1, ne_b, k->type_b ? k->type_b : 8,
			  k->off_b_set ? k->off_b : 64);
	gw_pad(&w, align);
	data = w.len;
	for (int i = 0; i < 16; i++)
		gw_f32(&w, (float)i);
	gw_u32(&w, 0x3c00); /* Q8_0 block: d = 1.0 (f16) then 32 int8 */
	w.len -= 2;
	for (int i = 0; i < 32; i++)
		gw_u8(&w, (uint8_t)(i - 16));
	(void)data;
	if (k->cut)
		w.len = k->cut;
	if (k->cut_tail)
		w.len -= k->cut_tail;
	return w;
}

/* Parse a bad variant: must fail, and the message must name the file and
 * contain `want`. */
static void bad(const char *what, const struct knobs *k, int want_rc, const char *want)
{
	struct gw w = build(k);
	struct gguf_file *f = NULL;
	struct qvl_err e = {{0}};
	int rc = gguf_parse(&f, w.buf, w.len, "bad.gguf", &e);

	ok(rc < 0 && !f && (!want_rc || rc == want_rc) && !strncmp(e.msg, "bad.gguf: ", 10) &&
	       strstr(e.msg, want),
	   "%s: refused (%s)", what, e.msg);
	if (!(rc < 0 && strstr(e.msg, want)))
		diag("rc %d, wanted '%s'", rc, want);
	gguf_close(f);
	free(w.buf);
}

static void test_valid(void)
{
	struct knobs k = {0};
	struct gw w = build(&k);
	struct gguf_file *f;
	struct qvl_err e = {{0}};
	int64_t iv;
	uint64_t uv;
	int n;
	double d;
	bool b;
	const char *s;
	size_t len;
	struct gguf_arr a, sub, sub2;
	const struct gguf_tensor_info *t;
	char buf[8];
	int rc = gguf_parse(&f, w.buf, w.len, "ok.gguf", &e);

	if (!ok(rc == 0, "valid file parses (%s)", rc ? e.msg : "ok")) {
		free(w.buf);
		return;
	}
	is_int(gguf_version(f), 3, "version");
	is_int(gguf_n_kv(f), 18, "kv count");
	is_int(gguf_n_tensors(f), 2, "tensor count");
	is_int(gguf_alignment(f), 32, "alignment");
	is_int(gguf_data_offset(f) % 32, 0, "data section aligned");
	ok(!gguf_get_u64(f, "t.u8", &uv, &e) && uv == 200, "uint8");
	ok(!gguf_get_i64(f, "t.i8", &iv, &e) && iv == -5, "int8");
	ok(!gguf_get_int(f, "t.u16", &n, &e) && n == 60000, "uint16");
	ok(!gguf_get_int(f, "t.i16", &n, &e) && n == -300, "int16");
	ok(!gguf_get_u64(f, "t.u32", &uv, &e) && uv == 4000000000u, "uint32");
	ok(gguf_get_int(f, "t.u32", &n, &e) == -EINVAL && strstr(e.msg, "4000000000"),
	   "uint32 above INT_MAX refused as int (%s)", e.msg);
	ok(!gguf_get_i64(f, "t.i32", &iv, &e) && iv == -70000, "int32");
	ok(gguf_get_u64(f, "t.i32", &uv, &e) == -EINVAL, "negative refused as unsigned");
	ok(!gguf_get_f64(f, "t.f32", &d, &e) && d == 1.5, "float32");
	ok(!gguf_get_bool(f, "t.bool", &b, &e) && b, "bool");
	ok(!gguf_get_u64(f, "t.u64", &uv, &e) && uv == UINT64_C(1) << 40, "uint64");
	ok(!gguf_get_i64(f, "t.i64", &iv, &e) && iv == -(INT64_C(1) << 40), "int64");
	ok(!gguf_get_f64(f, "t.f64", &d, &e) && d == 2.25, "float64");
	ok(!gguf_get_str(f, "t.str", &s, &len, &e) && len == 5 && !memcmp(s, "hello", 5), "string");
	ok(gguf_get_strz(f, "t.str", buf, 5, &e) == -ENAMETOOLONG &&
	       !gguf_get_strz(f, "t.str", buf, 6, &e) && !strcmp(buf, "hello"),
	   "string copy bounded");
	ok(gguf_get_str(f, "t.u8", &s, &len, &e) == -EINVAL && strstr(e.msg, "t.u8") &&
	       strstr(e.msg, "uint8"),
	   "type mismatch named (%s)", e.msg);
	ok(gguf_get_int(f, "nope", &n, &e) == -ENOENT && strstr(e.msg, "nope"),
	   "missing key named (%s)", e.msg);
	ok(!gguf_get_arr(f, "t.strs", &a, &e) && a.type == GGUF_TYPE_STRING && a.n == 3 &&
	       !gguf_arr_str(&a, 1, &s, &len) && len == 2 && !memcmp(s, "bc", 2) &&
	       !gguf_arr_str(&a, 2, &s, &len) && len == 0 &&
	       gguf_arr_str(&a, 3, &s, &len) == -EINVAL,
	   "string array element access");
	ok(!gguf_get_arr(f, "t.arr", &a, &e) && a.n == 3 && !gguf_arr_i64(&a, 2, &iv) && iv == 3 &&
	       !gguf_arr_f64(&a, 0, &d) && d == 1 && gguf_arr_str(&a, 0, &s, &len) == -EINVAL,
	   "uint32 array element access");
	ok(!gguf_get_arr(f, "t.deep", &a, &e) && a.type == GGUF_TYPE_ARRAY && a.n == 1 &&
	       !gguf_arr_sub(&a, 0, &sub) && sub.type == GGUF_TYPE_INT32 && sub.n == 2 &&
	       !gguf_arr_i64(&sub, 1, &iv) && iv == -8,
	   "nested array");
	ok(!gguf_get_arr(f, "t.nstr", &a, &e) && a.n == 2 && !gguf_arr_sub(&a, 1, &sub) &&
	       sub.n == 2 && !gguf_arr_str(&sub, 1, &s, &len) && len == 3 && !memcmp(s, "zzz", 3) &&
	       !gguf_arr_sub(&a, 0, &sub2) && !gguf_arr_str(&sub2, 0, &s, &len) && len == 1 &&
	       *s == 'x',
	   "nested string arrays");
	t = gguf_find_tensor(f, "a");
	ok(t && t->n_dims == 2 && t->ne[0] == 8 && t->ne[1] == 2 && t->nelem == 16 &&
	       t->dtype == QVL_DT_F32 && t->nbytes == 64 &&
	       (const uint8_t *)t->data == w.buf + gguf_data_offset(f) &&
	       ((const float *)t->data)[15] == 15.0f,
	   "tensor a: F32 [8, 2] at the data section");
	t = gguf_find_tensor(f, "b");
	ok(t && t->dtype == QVL_DT_Q8_0 && t->ggml_type == 8 && t->nbytes == 34 &&
	       t->offset == 64 && ((const int8_t *)t->data)[2] == -16,
	   "tensor b: Q8_0 [32], 34 bytes");
	ok(!gguf_find_tensor(f, "c") && gguf_find_key(f, "t.f64") == 12, "lookups");
	gguf_close(f);
	free(w.buf);

	k.version = 2;
	k.align = 64;
	w = build(&k);
	rc = gguf_parse(&f, w.buf, w.len, "v2.gguf", &e);
	ok(rc == 0 && gguf_version(f) == 2 && gguf_alignment(f) == 64 &&
	       gguf_data_offset(f) % 64 == 0,
	   "version 2 with alignment 64 (%s)", rc ? e.msg : "ok");
	if (!rc)
		gguf_close(f);
	free(w.buf);
}

static void test_bad(void)
{
	bad("bad magic", &(struct knobs){.magic = "GGML"}, -EBADMSG, "bad magic");
	bad("version 99", &(struct knobs){.version = 99}, -ENOTSUP, "version 99");
	bad("truncated header", &(struct knobs){.cut = 10}, -EBADMSG, "truncated");
	bad("kv count absurd", &(struct knobs){.nkv_add = UINT64_C(1) << 60}, -EBADMSG, "kv count");
	bad("kv count one too many", &(struct knobs){.nkv_add = 1}, -EBADMSG, "past end of file");
	bad("string length past EOF", &(struct knobs){.str_len = UINT64_C(1) << 40}, -EBADMSG,
	    "past end of file");
	bad("string length just past EOF", &(struct knobs){.str_len = 5000}, -EBADMSG,
	    "past end of file");
	bad("non-UTF-8 key", &(struct knobs){.key_bad_utf8 = true}, -EBADMSG,
	    "'t.s\\xfftr' at offset");
	bad("non-UTF-8 tensor name", &(struct knobs){.name_b_bad = true}, -EBADMSG,
	    "not valid UTF-8");
	bad("array of absurd length", &(struct knobs){.arr_len = UINT64_C(1) << 61}, -EBADMSG,
	    "cannot fit");
	bad("arrays nested 5 deep", &(struct knobs){.nest = 5}, -EBADMSG, "nested deeper");
	bad("unknown value type", &(struct knobs){.kv_type = 13}, -EBADMSG,
	    "unknown value type 13");
	bad("bool value 2", &(struct knobs){.bool_val = 2}, -EBADMSG, "not 0 or 1");
	bad("tensor offset out of range",
	    &(struct knobs){.off_b_set = true, .off_b = UINT64_C(1) << 62}, -EBADMSG,
	    "past end of data section");
	bad("tensor data truncated", &(struct knobs){.cut_tail = 1}, -EBADMSG,
	    "past end of data section");
	bad("tensor offset misaligned", &(struct knobs){.off_b_set = true, .off_b = 80}, -EBADMSG,
	    "not a multiple of alignment 32");
	bad("tensors overlap", &(struct knobs){.off_b_set = true, .off_b = 32}, -EBADMSG,
	    "overlap");
	bad("duplicate key", &(struct knobs){.dup_key = true}, -EBADMSG, "duplicate key 't.u8'");
	bad("duplicate tensor", &(struct knobs){.name_b = "a"}, -EBADMSG, "duplicate tensor 'a'");
	bad("n_dims 7", &(struct knobs){.ndim_a = 7}, -EBADMSG, "n_dims 7");
	bad("ne product overflow",
	    &(struct knobs){.ne_a0 = UINT64_C(1) << 40, .ne_a1 = UINT64_C(1) << 40}, -EBADMSG,
	    "overflows");
	bad("zero dimension", &(struct knobs){.ne_zero = true}, -EBADMSG, "dimension 1 is 0");
	bad("unsupported type IQ2_XXS", &(struct knobs){.type_b = 16, .ne_b0 = 256}, -ENOTSUP,
	    "tensor 'b': type 16 (IQ2_XXS) not supported");
	/* a K-quant row must be whole 256-value super-blocks, not just 32s */
	bad("Q4_K row of 288", &(struct knobs){.type_b = 12, .ne_b0 = 288}, -EBADMSG,
	    "tensor 'b': Q4_K row length 288 is not a multiple of its 256-element block");
	bad("Q6_K row of 32", &(struct knobs){.type_b = 14, .ne_b0 = 32}, -EBADMSG,
	    "tensor 'b': Q6_K row length 32 is not a multiple of its 256-element block");
	bad("unknown type 200", &(struct knobs){.type_b = 200}, -ENOTSUP, "type 200 (?)");
	bad("Q8_0 row not a multiple of 32", &(struct knobs){.ne_b0 = 33}, -EBADMSG,
	    "Q8_0 row length 33 is not a multiple of its 32-element block");
	bad("alignment not a power of two", &(struct knobs){.align = 24}, -EBADMSG,
	    "general.alignment");
	bad("alignment zero", &(struct knobs){.align_zero = true, .align_type = 10}, -EBADMSG,
	    "general.alignment (uint64 0)");
	bad("alignment a float", &(struct knobs){.align_type = 6}, -EBADMSG, "float32");
}

/* Every prefix of a real file must be refused cleanly. */
static void test_truncations(void)
{
	char path[4096];
	struct qvl_map map;
	struct qvl_err e;
	struct gguf_file *f;
	size_t fails = 0, tried = 0;

	snprintf(path, sizeof(path), "%s/models/qvl-tiny-gguf/mmproj-qvl-tiny-f32.gguf",
		 test_env("QVL_SHARED", "../shared"));
	if (qvl_map_file(&map, path, &e)) {
		skip(2, "no %s", path);
		return;
	}
	ok(gguf_parse(&f, map.data, map.size, path, &e) == 0, "real mmproj parses");
	gguf_close(f);
	for (size_t n = 0; n < map.size; n += n < 8192 ? 1 : 4093) {
		tried++;
		if (gguf_parse(&f, map.data, n, "cut.gguf", &e) == 0) {
			fails++;
			gguf_close(f);
		}
	}
	ok(fails == 0, "all %zu truncations of the mmproj refused", tried);
	qvl_unmap(&map);
}

int main(void)
{
	test_valid();
	test_bad();
	test_truncations();
	return done_testing();
}
