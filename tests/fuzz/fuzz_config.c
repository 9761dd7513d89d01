/* libFuzzer target: the config.json parser on arbitrary bytes, and the
 * generation_config.json / preprocessor_config.json parsers on the same
 * bytes (against the parsed config when it was accepted, else a fixed one). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qvl_config c;
	struct qvl_gen_config g;
	struct qvl_preproc_config p;
	struct qvl_err e;

	if (qvl_config_parse(&c, (const char *)data, size, "config.json", &e) == 0) {
		/* accepted configs satisfy the bounds every consumer relies on */
		if (c.text.hidden_size < 1 || c.text.num_kv_heads < 1 ||
		    c.text.num_heads % c.text.num_kv_heads ||
		    c.text.mrope_section[0] + c.text.mrope_section[1] + c.text.mrope_section[2] !=
			c.text.head_dim / 2 ||
		    (c.vision.present && c.vision.n_deepstack > QVL_MAX_DEEPSTACK))
			abort();
		(void)qvl_model_expected_tensors(&c);
	} else {
		memset(&c, 0, sizeof(c));
		c.text.vocab_size = 151936;
		c.text.eos_token_id = 151645;
	}
	(void)qvl_gen_config_parse(&g, &c, (const char *)data, size, "generation_config.json", &e);
	(void)qvl_preproc_config_parse(&p, &c, (const char *)data, size, "preprocessor_config.json",
				       &e);
	return 0;
}
