/* Where `qvlctl mkmodel` copies tokenizer.json and tokenizer_config.json
 * from, so that an installed qvlctl does not depend on its build tree. */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "mkmodel.h"
#include "util.h"

/* Both set for this object by src/mkmodel.am: the copy `make install` puts in
 * $(pkgdatadir), and configure's --with-tokenizer-dir (the build tree's). */
#ifndef QVL_INSTALLED_TOKENIZER_DIR
#define QVL_INSTALLED_TOKENIZER_DIR ""
#endif
#ifndef QVL_BUILD_TOKENIZER_DIR
#define QVL_BUILD_TOKENIZER_DIR ""
#endif

static bool has_tokenizer(const char *dir)
{
	char *path = *dir ? qvl_path_join(dir, "tokenizer.json") : NULL;
	struct stat st;
	bool ok = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);

	free(path);
	return ok;
}

const char *qvl_mk_tokenizer_dir(const char *opt)
{
	const char *env = getenv("QVL_TOKENIZER_DIR");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	/* an install that lacks the files (configure found none) is skipped */
	if (has_tokenizer(QVL_INSTALLED_TOKENIZER_DIR))
		return QVL_INSTALLED_TOKENIZER_DIR;
	return QVL_BUILD_TOKENIZER_DIR;
}

const char *qvl_mk_tokenizer_dir_defaults(void)
{
	if (!*QVL_BUILD_TOKENIZER_DIR)
		return *QVL_INSTALLED_TOKENIZER_DIR ? QVL_INSTALLED_TOKENIZER_DIR
						    : "(none built in)";
	if (!*QVL_INSTALLED_TOKENIZER_DIR)
		return QVL_BUILD_TOKENIZER_DIR;
	return QVL_INSTALLED_TOKENIZER_DIR " if installed,\n"
					   "                       else " QVL_BUILD_TOKENIZER_DIR;
}
