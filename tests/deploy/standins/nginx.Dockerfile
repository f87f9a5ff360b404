# CI's stand-in for nginx:1.27 (no Docker Hub here): Debian's nginx on the services image
# (services.Dockerfile), reading /etc/nginx/conf.d/*.conf like the official image, in the
# foreground.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN rm -f /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 443
CMD ["nginx", "-g", "daemon off;"]
