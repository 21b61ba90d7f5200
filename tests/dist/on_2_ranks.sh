#!/bin/sh
# Runs the example $MAAS_DIST_EXAMPLE on 2 ranks with --distributed, passing
# the arguments on: the EXAMPLE of tests/examples' pipeline drivers for the
# dist_*_pipeline tests. $MAAS_MPIEXEC: the mpiexec to use.
exec "${MAAS_MPIEXEC:-mpiexec}" -n 2 --oversubscribe "$MAAS_DIST_EXAMPLE" "$@" --distributed
