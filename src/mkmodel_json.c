/* The JSON side files of the deterministic model (testmodel.md §8). Keys
 * sorted as mkref writes them; the format is ours (tests compare parsed
 * JSON, never bytes). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel.h"

/* open_memstream: the text grows as needed and is one malloc'd string. */
static FILE *mem_open(char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	return open_memstream(buf, len);
}

static char *mem_close(FILE *f, char **buf)
{
	if (ferror(f)) {
		fclose(f);
		free(*buf);
		return NULL;
	}
	if (fclose(f)) {
		free(*buf);
		return NULL;
	}
	return *buf;
}

static void int_list(FILE *f, const int *v, int n)
{
	fputc('[', f);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%d", i ? ", " : "", v[i]);
	fputc(']', f);
}

char *qvl_mk_config_json(const struct qvl_mk_plan *p)
{
	const struct qvl_mk_shape *s = p->shape;
	char *buf;
	size_t len;
	FILE *f = mem_open(&buf, &len);

	if (!f)
		return NULL;
	fprintf(f,
		"{\n"
		"  \"architectures\": [\"Qwen3VLForConditionalGeneration\"],\n"
		"  \"image_token_id\": 151655,\n"
		"  \"model_type\": \"qwen3_vl\",\n"
		"  \"text_config\": {\n"
		"    \"attention_bias\": false,\n"
		"    \"attention_dropout\": 0.0,\n"
		"    \"bos_token_id\": 151643,\n"
		"    \"dtype\": \"bfloat16\",\n"
		"    \"eos_token_id\": 151645,\n"
		"    \"head_dim\": %d,\n"
		"    \"hidden_act\": \"silu\",\n"
		"    \"hidden_size\": %d,\n"
		"    \"initializer_range\": 0.02,\n"
		"    \"intermediate_size\": %d,\n"
		"    \"max_position_embeddings\": %d,\n"
		"    \"model_type\": \"qwen3_vl_text\",\n"
		"    \"num_attention_heads\": %d,\n"
		"    \"num_hidden_layers\": %d,\n"
		"    \"num_key_value_heads\": %d,\n"
		"    \"rms_norm_eps\": 1e-06,\n"
		"    \"rope_scaling\": {\"mrope_interleaved\": true, \"mrope_section\": ",
		s->head_dim, s->hidden, s->inter, s->max_pos, s->heads, s->layers, s->kv_heads);
	int_list(f, s->mrope, 3);
	fprintf(f,
		", \"rope_type\": \"default\"},\n"
		"    \"rope_theta\": 5000000,\n"
		"    \"tie_word_embeddings\": true,\n"
		"    \"torch_dtype\": \"bfloat16\",\n"
		"    \"use_cache\": true,\n"
		"    \"vocab_size\": %d\n"
		"  },\n"
		"  \"tie_word_embeddings\": true,\n"
		"  \"transformers_version\": \"4.57.0.dev0\",\n"
		"  \"video_token_id\": 151656,\n",
		s->vocab);
	if (p->vision) {
		fprintf(f, "  \"vision_config\": {\n    \"deepstack_visual_indexes\": ");
		int_list(f, s->v_deepstack, s->v_ndeepstack);
		fprintf(f,
			",\n"
			"    \"depth\": %d,\n"
			"    \"hidden_act\": \"gelu_pytorch_tanh\",\n"
			"    \"hidden_size\": %d,\n"
			"    \"in_channels\": 3,\n"
			"    \"initializer_range\": 0.02,\n"
			"    \"intermediate_size\": %d,\n"
			"    \"model_type\": \"qwen3_vl\",\n"
			"    \"num_heads\": %d,\n"
			"    \"num_position_embeddings\": %d,\n"
			"    \"out_hidden_size\": %d,\n"
			"    \"patch_size\": 16,\n"
			"    \"spatial_merge_size\": 2,\n"
			"    \"temporal_patch_size\": 2\n"
			"  },\n",
			s->v_depth, s->v_hidden, s->v_inter, s->v_heads, s->v_pos, s->v_out);
	}
	fprintf(f, "  \"vision_end_token_id\": 151653,\n"
		   "  \"vision_start_token_id\": 151652\n"
		   "}\n");
	return mem_close(f, &buf);
}

char *qvl_mk_generation_config_json(void)
{
	return strdup("{\n"
		      "  \"bos_token_id\": 151643,\n"
		      "  \"do_sample\": true,\n"
		      "  \"eos_token_id\": [151645, 151643],\n"
		      "  \"pad_token_id\": 151643,\n"
		      "  \"repetition_penalty\": 1.0,\n"
		      "  \"temperature\": 0.7,\n"
		      "  \"top_k\": 20,\n"
		      "  \"top_p\": 0.8,\n"
		      "  \"transformers_version\": \"4.57.0.dev0\"\n"
		      "}\n");
}

char *qvl_mk_preprocessor_config_json(void)
{
	return strdup("{\n"
		      "  \"image_mean\": [0.5, 0.5, 0.5],\n"
		      "  \"image_processor_type\": \"Qwen2VLImageProcessorFast\",\n"
		      "  \"image_std\": [0.5, 0.5, 0.5],\n"
		      "  \"merge_size\": 2,\n"
		      "  \"patch_size\": 16,\n"
		      "  \"processor_class\": \"Qwen3VLProcessor\",\n"
		      "  \"size\": {\"longest_edge\": 16777216, \"shortest_edge\": 65536},\n"
		      "  \"temporal_patch_size\": 2\n"
		      "}\n");
}
