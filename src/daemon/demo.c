/* qvld --demo: the tiny test model (testmodel.md) generated once into the
 * cache directory and reused: CACHE/qvl-tiny. Written under a temporary
 * name and renamed, so a crash mid-write never leaves a half model that a
 * later start would serve. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/demo.h"
#include "daemon/log.h"
#include "mkmodel.h"

#ifndef QVL_DEFAULT_TOKENIZER_DIR
#define QVL_DEFAULT_TOKENIZER_DIR ""
#endif

int qvld_demo_model(const char *cache_dir, char **path, struct qvl_err *err)
{
	char dir[4096], tmp[4200], probe[4200];
	const char *tokdir = getenv("QVL_TOKENIZER_DIR");
	struct qvl_mk_opts o = {.shape = "tiny", .vision = true, .threads = 1};
	struct qvl_mk_result res;
	int rc;

	snprintf(dir, sizeof(dir), "%s/qvl-tiny", cache_dir);
	snprintf(probe, sizeof(probe), "%s/model.safetensors", dir);
	if (access(probe, R_OK) == 0) {
		*path = strdup(dir);
		return *path ? 0 : -ENOMEM;
	}
	if (!tokdir || !*tokdir)
		tokdir = QVL_DEFAULT_TOKENIZER_DIR;
	if (!*tokdir)
		return qvl_errf(err, -ENOENT,
				"--demo: no tokenizer files to build the model from (set "
				"QVL_TOKENIZER_DIR)");
	/* mkdir -p cache_dir */
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", cache_dir);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return qvl_errf(err, -errno, "--demo: cache directory %s: %s", buf,
				strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s/.qvl-tiny.%d", cache_dir, (int)getpid());
	o.tokenizer_dir = tokdir;
	o.out_dir = tmp;
	log_info("--demo: writing the tiny test model to %s", dir);
	rc = qvl_mk_write(&o, &res, err);
	if (rc < 0)
		return rc;
	if (rename(tmp, dir) < 0 && errno != ENOTEMPTY && errno != EEXIST)
		return qvl_errf(err, -errno, "--demo: rename %s -> %s: %s", tmp, dir,
				strerror(errno));
	*path = strdup(dir);
	return *path ? 0 : -ENOMEM;
}
