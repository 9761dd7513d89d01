/* Dequantization of every GGUF block type against blocks built by hand:
 * the bytes are written literally and each expected value was worked out
 * on paper from ggml's block definition (ggml-common.h), not computed with
 * the codec under test. A layout mistake (nibble order, which bit of qh or
 * hmask, the 6-bit scale packing, field order) changes at least one value. */
#include <errno.h>
#include <string.h>

#include "quant.h"
#include "tap.h"

/* f16 bit patterns used below */
#define H_0_25 0x00, 0x34
#define H_0_5  0x00, 0x38
#define H_1    0x00, 0x3c
#define H_2    0x00, 0x40
#define H_3    0x00, 0x42
#define H_M1   0x00, 0xbc

static const float K[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
			    1,	  13,	25,  38,  53,  69,  89,	 113};

static float y[256];

/* Decode blk bytes of type t into y; 0 on success. */
static int dec(enum qvl_dtype t, const uint8_t *b)
{
	memset(y, 0xff, sizeof(y)); /* NaN: an element the decoder skips shows */
	return qvl_dequant_row(t, b, y, qvl_dtype_info(t)->blk);
}

/* Compare y against expected values at the listed elements. */
static int spots(const char *what, const int *e, const float *want, int n)
{
	int bad = 0;

	for (int i = 0; i < n; i++)
		if (y[e[i]] != want[i] && bad++ < 3)
			diag("%s: element %d is %g, expected %g", what, e[i], y[e[i]], want[i]);
	return bad;
}

static void test_32(void)
{
	uint8_t b[34];
	int bad;

	/* Q8_0: d = 0.5, q[j] = j - 16 */
	b[0] = 0x00, b[1] = 0x38;
	for (int j = 0; j < 32; j++)
		b[2 + j] = (uint8_t)(int8_t)(j - 16);
	bad = dec(QVL_DT_Q8_0, b);
	for (int j = 0; j < 32; j++)
		bad += y[j] != 0.5f * (float)(j - 16);
	ok(!bad, "Q8_0: d=0.5, q=j-16 gives 0.5*(j-16)");

	/* Q4_0: d = 2, byte j = (j) | (15 - j) << 4: element j low, j+16 high */
	uint8_t q4[18] = {H_2};
	for (int j = 0; j < 16; j++)
		q4[2 + j] = (uint8_t)(j | (15 - j) << 4);
	bad = dec(QVL_DT_Q4_0, q4);
	for (int j = 0; j < 16; j++)
		bad += y[j] != 2.0f * (float)(j - 8) || y[j + 16] != 2.0f * (float)(7 - j);
	ok(!bad, "Q4_0: low nibbles are elements 0..15, high 16..31, offset 8");

	/* Q4_1: d = 0.25, m = -1, same nibbles */
	uint8_t q41[20] = {H_0_25, H_M1};
	for (int j = 0; j < 16; j++)
		q41[4 + j] = (uint8_t)(j | (15 - j) << 4);
	bad = dec(QVL_DT_Q4_1, q41);
	for (int j = 0; j < 16; j++)
		bad += y[j] != 0.25f * (float)j - 1 || y[j + 16] != 0.25f * (float)(15 - j) - 1;
	ok(!bad, "Q4_1: d * q + m with d first, m second");

	/* Q5_0: d = 1, qh = 0xAAAAAAAA (5th bit on odd elements), byte j = j | j << 4 */
	uint8_t q50[22] = {H_1, 0xaa, 0xaa, 0xaa, 0xaa};
	for (int j = 0; j < 16; j++)
		q50[6 + j] = (uint8_t)(j | j << 4);
	bad = dec(QVL_DT_Q5_0, q50);
	for (int j = 0; j < 16; j++) {
		float want = (float)(j + 16 * (j & 1) - 16);

		bad += y[j] != want || y[j + 16] != want;
	}
	ok(!bad, "Q5_0: bit j of qh is element j's 5th bit, offset 16");

	/* Q5_1: d = 0.5, m = 3, qh = 0x0000FFFF (5th bit on elements 0..15) */
	uint8_t q51[24] = {H_0_5, H_3, 0xff, 0xff, 0x00, 0x00};
	for (int j = 0; j < 16; j++)
		q51[8 + j] = (uint8_t)((15 - j) | j << 4);
	bad = dec(QVL_DT_Q5_1, q51);
	for (int j = 0; j < 16; j++)
		bad += y[j] != 0.5f * (float)(31 - j) + 3 || y[j + 16] != 0.5f * (float)j + 3;
	ok(!bad, "Q5_1: qh little-endian after d and m");

	/* IQ4_NL: d = 0.5, byte j = j | (15 - j) << 4 indexes the grid */
	uint8_t nl[18] = {H_0_5};
	for (int j = 0; j < 16; j++)
		nl[2 + j] = (uint8_t)(j | (15 - j) << 4);
	bad = dec(QVL_DT_IQ4_NL, nl);
	for (int j = 0; j < 16; j++)
		bad += y[j] != 0.5f * K[j] || y[j + 16] != 0.5f * K[15 - j];
	ok(!bad, "IQ4_NL: nibbles index the non-linear grid");
}

static void test_q2_k(void)
{
	uint8_t b[84];

	memset(b, 0x21, 16);	  /* scale 1, min 2 */
	b[5] = 0x13;		  /* sub-block 5: scale 3, min 1 */
	b[15] = 0xf0;		  /* sub-block 15: scale 0, min 15 */
	memset(b + 16, 0xe4, 64); /* 2-bit fields 0,1,2,3 from the low bits */
	b[16 + 3] = 0x03;
	b[80] = 0x00, b[81] = 0x3c; /* d = 1 */
	b[82] = 0x00, b[83] = 0x34; /* dmin = 0.25 */
	static const int e[] = {0, 3, 35, 40, 70, 85, 127, 131, 250};
	static const float w[] = {-0.5f, 2.5f, -0.5f, 0.5f, 1.5f, 5.75f, 2.5f, -0.5f, -3.75f};
	ok(!dec(QVL_DT_Q2_K, b) && !spots("Q2_K", e, w, 9),
	   "Q2_K: scale/min nibbles per 16, 2-bit fields by 32-element quarter");
}

static void test_q3_k(void)
{
	uint8_t b[110];

	memset(b, 0xff, 32); /* hmask: every 3rd bit set ... */
	b[2] = 0xfe;	     /* ... but element 2's (bit 0) */
	memset(b + 32, 0xe4, 32);
	memset(b + 64, 0x1b, 32); /* second half: fields 3,2,1,0 */
	memset(b + 96, 0x11, 8);  /* scale low nibbles 1 */
	memset(b + 104, 0xaa, 4); /* scale high bits 2: scales 33 - 32 = 1 */
	b[97] = 0xc1;		  /* sub-block 9: low nibble 12 ... */
	b[105] = 0xba;		  /* ... high bits 3: 60 - 32 = 28 */
	b[108] = 0x00, b[109] = 0x3c;
	static const int e[] = {2, 3, 40, 66, 130, 144, 200, 255};
	static const float w[] = {-4, 0, 1, 2, 3, 84, 1, 0};
	ok(!dec(QVL_DT_Q3_K, b) && !spots("Q3_K", e, w, 8),
	   "Q3_K: hmask bit clears to -4, 6-bit signed scales split low/high");
}

/* Scales 1,2,3,4,43,53,63,13 and mins 0,17,34,51,5,20,40,60 packed by hand. */
static const uint8_t k4_scales[12] = {0x81, 0xc2, 0xc3, 0x04, 0x00, 0x51,
				      0xa2, 0xf3, 0x5b, 0x45, 0x8f, 0xcd};

static void test_q4_k(void)
{
	uint8_t b[144] = {H_1, H_0_5};
	int bad;

	memcpy(b + 4, k4_scales, 12);
	memset(b + 16, 0x21, 128); /* low nibble 1, high 2 */
	bad = dec(QVL_DT_Q4_K, b);
	static const float per_sub[8] = {1, -4.5f, -14, -17.5f, 40.5f, 96, 43, -4};
	for (int e = 0; e < 256; e++)
		if (y[e] != per_sub[e / 32] && bad++ < 3)
			diag("Q4_K: element %d is %g, expected %g", e, y[e], per_sub[e / 32]);
	ok(!bad, "Q4_K: 6-bit scales and mins, low nibbles for even sub-blocks");

	uint8_t p[144] = {H_1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1};
	for (int i = 0; i < 128; i++)
		p[16 + i] = (uint8_t)i;
	static const int e[] = {0, 5, 17, 40, 50, 70, 100, 255};
	static const float w[] = {0, 5, 1, 0, 1, 6, 2, 7};
	ok(!dec(QVL_DT_Q4_K, p) && !spots("Q4_K positions", e, w, 8),
	   "Q4_K: element positions (32 bytes per 64 values)");
}

static void test_q5_k(void)
{
	uint8_t b[176] = {H_1, H_0_5};
	int bad;

	memcpy(b + 4, k4_scales, 12);
	memset(b + 16, 0x0f, 32); /* 5th bit on sub-blocks 0..3 */
	b[16 + 5] = 0x8f;	  /* and on element 7 * 32 + 5 */
	memset(b + 48, 0x21, 128);
	bad = dec(QVL_DT_Q5_K, b);
	static const float per_sub[8] = {17, 27.5f, 34, 46.5f, 40.5f, 96, 43, -4};
	for (int e = 0; e < 256; e++) {
		float want = e == 229 ? 204 : per_sub[e / 32];

		if (y[e] != want && bad++ < 3)
			diag("Q5_K: element %d is %g, expected %g", e, y[e], want);
	}
	ok(!bad, "Q5_K: qh bit e/32 of byte e%%32 is the 5th bit");
}

static void test_q6_k(void)
{
	uint8_t b[210];

	for (int i = 0; i < 128; i++)
		b[i] = (uint8_t)i;
	memset(b + 128, 0xe4, 64); /* high bits 0,1,2,3 by quarter */
	for (int s = 0; s < 16; s++)
		b[192 + s] = (uint8_t)(int8_t)(s - 8);
	b[208] = 0x00, b[209] = 0x38;
	static const int e[] = {0, 33, 70, 100, 200, 255};
	static const float w[] = {128, 45, 0, -18, 8, 80.5f};
	ok(!dec(QVL_DT_Q6_K, b) && !spots("Q6_K", e, w, 6),
	   "Q6_K: ql/qh quarters, signed 8-bit scales per 16, offset 32");
}

static void test_iq4_xs(void)
{
	uint8_t b[136] = {H_1, 0xaa, 0x2a, 0x21, 0, 0, 0};

	for (int i = 0; i < 128; i++)
		b[8 + i] = (uint8_t)((i & 15) | (15 - (i & 15)) << 4);
	static const int e[] = {0, 5, 16, 33, 100, 224, 240, 255};
	static const float w[] = {-127, -35, 113, -208, 0, 4064, -3616, 4064};
	ok(!dec(QVL_DT_IQ4_XS, b) && !spots("IQ4_XS", e, w, 8),
	   "IQ4_XS: 4+2-bit sub-block scales minus 32 times the grid");
}

int main(void)
{
	uint8_t z[256] = {0};

	test_32();
	test_q2_k();
	test_q3_k();
	test_q4_k();
	test_q5_k();
	test_q6_k();
	test_iq4_xs();
	ok(qvl_dequant_row(QVL_DT_Q4_K, z, y, 32) == -EINVAL, "Q4_K: 32 values refused");
	ok(qvl_dequant_row(QVL_DT_COUNT, z, y, 32) == -EINVAL, "unknown type refused");
	return done_testing();
}
