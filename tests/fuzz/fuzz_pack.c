/* libFuzzer target: a pack's head (header, metadata records, shard and
 * tensor tables) through pack_parse, and an accepted config record through
 * pack_config_read. Fuzzed bytes rarely carry valid CRC-64s, which would
 * stop every input at the first check; so for even-sized inputs the harness
 * recomputes the metadata, table and header CRCs from the (fuzzed) offsets
 * first, and odd-sized inputs keep their CRCs to exercise those checks. */
#include <stdlib.h>
#include <string.h>

#include "nvme.h"
#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fix_crcs(uint8_t *b, size_t size)
{
	uint64_t mo = pack_get(b + PH_META_OFF, 8), ml = pack_get(b + PH_META_LEN, 8);
	uint64_t to = pack_get(b + PH_TABLE_OFF, 8), tl = pack_get(b + PH_TABLE_LEN, 8);

	if (mo <= size && ml <= size - mo)
		pack_put(b + PH_META_CRC, nv_crc64(0, b + mo, ml), 8);
	if (to <= size && tl <= size - to)
		pack_put(b + PH_TABLE_CRC, nv_crc64(0, b + to, tl), 8);
	pack_put(b + PH_HDR_CRC, nv_crc64(0, b, PH_HDR_CRC), 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pack_info p;
	struct qvl_err err;
	uint8_t *b = malloc(size ? size : 1);

	if (!b)
		return 0;
	memcpy(b, data, size);
	if (size >= PACK_HDR_BYTES && size % 2 == 0)
		fix_crcs(b, size);
	if (pack_parse(&p, b, size, "fuzz.qvl", &err) == 0) {
		struct qvl_model m;

		/* accepted tables stay inside the file and their shards */
		for (uint32_t i = 0; i < p.n_tensors; i++) {
			const struct pack_tensor *t = &p.tensors[i];

			if (t->shard >= p.n_shards || t->off + t->nbytes > p.shards[t->shard].len)
				abort();
		}
		for (uint32_t i = 0; i < p.n_shards; i++)
			if (p.shards[i].off + p.shards[i].len > p.file_bytes)
				abort();
		memset(&m, 0, sizeof(m));
		(void)pack_config_read(&m, p.config, p.config_len, "fuzz.qvl", &err);
	}
	pack_free(&p);
	free(b);
	return 0;
}
