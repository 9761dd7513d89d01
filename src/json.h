/* A small validating JSON parser (RFC 8259) for the files qvl reads:
 * config.json, the safetensors header, tokenizer.json (11 MB, so it must be
 * fast: one pass, one allocation for the token array, no per-node malloc).
 *
 * The document is parsed into a flat array of tokens in document order.
 * Containers know how many children they have and where their subtree ends,
 * so walking is index arithmetic:
 *   first child of container i:   i + 1
 *   next sibling of token i:      doc->tok[i].end
 *   object children alternate:    key (a string), value, key, value, ...
 * Strings are not copied: a token points into the original text; use
 * json_str() to decode escapes. Input must stay alive while the doc is used. */
#ifndef QVL_JSON_H
#define QVL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

enum json_type {
	JSON_NULL,
	JSON_FALSE,
	JSON_TRUE,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

#define JSON_NONE UINT32_MAX /* "no such token" */

struct json_tok {
	uint32_t type : 3;
	uint32_t escaped : 1; /* string contains backslash escapes */
	uint32_t start;       /* byte offset of the value (strings: after the quote) */
	uint32_t len;	      /* bytes of the raw value (strings: without quotes) */
	uint32_t count;	      /* arrays: elements; objects: key/value pairs */
	uint32_t end;	      /* index of the token after this subtree */
};

struct json_doc {
	const char *text;
	size_t len;
	struct json_tok *tok;
	uint32_t ntok;
};

/* Parse text[0..len). `what` names the input in error messages (a file name).
 * Rejects invalid UTF-8, bad escapes, lone surrogates in \u escapes, nesting
 * deeper than 512, trailing garbage, and inputs over 2 GiB. */
int json_parse(struct json_doc *doc, const char *text, size_t len, const char *what,
	       struct qvl_err *err);
void json_free(struct json_doc *doc);

/* Value of `key` in object `obj`, or JSON_NONE. Linear in the object's size. */
uint32_t json_get(const struct json_doc *doc, uint32_t obj, const char *key);
/* Element `idx` of array `arr`, or JSON_NONE. Linear in idx. */
uint32_t json_at(const struct json_doc *doc, uint32_t arr, uint32_t idx);

/* Typed accessors: 0, or -EINVAL if the token is not of that type / range. */
int json_int64(const struct json_doc *doc, uint32_t t, int64_t *out);
int json_double(const struct json_doc *doc, uint32_t t, double *out);
int json_bool(const struct json_doc *doc, uint32_t t, bool *out);

/* Decode string token t (escapes resolved, UTF-8 out). Writes at most cap
 * bytes plus a NUL if room; returns the decoded length (which may exceed cap:
 * call again with a larger buffer) or -EINVAL if t is not a string. */
long json_str(const struct json_doc *doc, uint32_t t, char *out, size_t cap);
/* Decoded string in a fresh malloc'd NUL-terminated buffer (NULL on error). */
char *json_strdup(const struct json_doc *doc, uint32_t t, size_t *len_out);
/* Does string token t decode to exactly s[0..n)? (No allocation.) */
bool json_str_eq(const struct json_doc *doc, uint32_t t, const char *s, size_t n);

const char *json_type_name(enum json_type t);

/* Where json_escape() writes: n bytes at p (not NUL-terminated). */
typedef void json_sink(void *ctx, const char *p, size_t n);
/* THE JSON string escaper (every writer of JSON strings uses it, whatever it
 * writes into): s[0..n) as a string literal, in quotes, '"' and '\\'
 * escaped, '\n' as \n, other control characters as \u00XX, every other byte
 * (UTF-8) as it is; the unescaped runs go to put() whole. */
void json_escape(json_sink *put, void *ctx, const char *s, size_t n);
/* json_escape() into a FILE. */
void json_write_string(FILE *f, const char *s, size_t n);

#endif
