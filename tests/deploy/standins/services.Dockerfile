# The common base of the postgres and nginx stand-ins (no Docker Hub here): Debian's PostgreSQL
# and nginx installed on dockyard's own mmdebstrap base, from the packages apt downloaded for that
# very root while mmdebstrap built it (this build's context), so the build needs no network and
# the essential set is unpacked once for all images, not once per root. policy-rc.d keeps the
# packages' maintainer scripts from starting the services during the build, as in a chroot.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN --mount=type=bind,target=/debs \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get install -y -qq --no-install-recommends /debs/*.deb >/dev/null \
 && rm -f /usr/sbin/policy-rc.d && rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/*
