#!/usr/bin/env bash
# A hash of everything a kernkit build is made from: a wheel built elsewhere (prebuild_wheel.sh)
# is only installed by run.sh where this hash still matches the working tree's.
# (C collation: the order, and so the hash, must not depend on the locale.)
cd "$(dirname "$0")/../.."
find CMakeLists.txt pyproject.toml cmake cpp cuda python -type f -not -name '*.pyc' -print0 \
  | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
