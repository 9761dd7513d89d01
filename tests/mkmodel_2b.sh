#!/bin/sh
# Opt-in (QVL_SLOW_TESTS=1): generate the 2b shape (4.26 GB on disk under the
# build directory, removed afterwards) and check its header, every tensor's
# sha256 and the whole file's against tests/data/qvl-2b.tensors.sha256, then
# --no-vision (header, size and the text tensors of the same list).
set -u
if [ "${QVL_SLOW_TESTS:-0}" != 1 ]; then
	echo "1..0 # SKIP 2b generation (4.26 GB) runs only with QVL_SLOW_TESTS=1"
	exit 0
fi
exec "$QVL_BUILDDIR/tests/mkmodel_hash" 2b
