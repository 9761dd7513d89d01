# Sourced by the bench scripts that start a daemon: qvld_wait NAME SOCK PID LOG
# waits until qvld (pid PID) answers `qvlctl status` on SOCK, up to ~2 min;
# if it dies or never answers, prints its LOG and exits 1 (as NAME).
qvld_wait() {
	_i=0
	until timeout 5 "$QVLCTL" --socket "$2" status >/dev/null 2>&1; do
		_i=$((_i + 1))
		if [ $_i -gt 600 ] || ! kill -0 "$3" 2>/dev/null; then
			echo "$1: qvld did not start:" >&2
			cat "$4" >&2
			exit 1
		fi
		sleep 0.2
	done
}
