/* GGUF block-quantized types (llama.cpp's definitions): dequantization to f32.
 * Q8_0: 32 values per 34-byte block: f16 scale d, then 32 int8 q; x = d * q.
 * Q4_0: 32 values per 18-byte block: f16 scale d, then 16 bytes; byte j holds
 *       element j in its low nibble and element j + 16 in its high nibble;
 *       x = d * (nibble - 8). */
#ifndef QVL_QUANT_H
#define QVL_QUANT_H

#include <stddef.h>
#include <stdint.h>

#define QVL_QBLOCK 32
#define QVL_Q8_0_BYTES 34
#define QVL_Q4_0_BYTES 18

/* n must be a multiple of 32; src points at the first block. */
void qvl_dequant_q8_0(float *dst, const void *src, size_t n);
void qvl_dequant_q4_0(float *dst, const void *src, size_t n);

#endif
