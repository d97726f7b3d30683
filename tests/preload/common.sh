# shellcheck shell=bash source-path=SCRIPTDIR disable=SC2154
# Sourced by the shim's test scripts after they set `here` (tests/preload): the real-guest
# helpers of tests/guest/common.sh, and uvp_init.

guest=$here/../guest
# shellcheck source=../guest/common.sh
. "$guest/common.sh"

# uvp_init NAME UVSOCKD SHIM [...]: sets UVSOCKD and SHIM from the script's arguments and a
# scratch directory (uvt_init). Stops at once without the shim: a vsock program started
# without it would reach the kernel's own AF_VSOCK, which these machines must never use.
uvp_init() {
	UVSOCKD=$2
	SHIM=$3
	if [ ! -f "$SHIM" ]; then
		echo "FAIL: no shim at '$SHIM'"
		exit 1
	fi
	uvt_init "$1"
}
