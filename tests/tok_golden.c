/* Every case of the golden tokenizer data (tests/data/tokenizer/cases.jsonl,
 * a copy of ../shared/golden/tokenizer/cases.jsonl: ids from Hugging Face
 * tokenizers, each backed by llama.cpp or transformers.js) must encode to
 * exactly its `expected` ids. */
#include "config.h"

#include "tok_testutil.h"

int main(void)
{
	double ms;
	struct qvl_tokenizer *t = tt_load(&ms);
	diag("tokenizer.json loaded in %.1f ms (first load in this process)", ms);
	char *cases =
	    qvl_path_join(test_env("QVL_TESTDATA", "tests/data"), "tokenizer/cases.jsonl");
	int total, passed = tt_check_jsonl(t, cases, &total);
	diag("%d of %d golden cases match", passed, total);
	is_int(total, 213, "all 213 golden cases present");
	free(cases);
	qvl_tok_free(t);
	return done_testing();
}
