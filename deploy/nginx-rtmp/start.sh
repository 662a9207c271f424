#!/bin/sh
# The nginx-rtmp container's entry point: folders and the log the workers (nobody) write, the
# streams service's callback secret put into the configuration, then nginx in the foreground.
set -eu
: "${RTMP_CALLBACK_SECRET:?must be the streams service's RTMP_CALLBACK_SECRET}"
case $RTMP_CALLBACK_SECRET in
    *[!A-Za-z0-9._~-]*)
        echo "RTMP_CALLBACK_SECRET goes into URLs: use letters, digits and . _ ~ - only" >&2
        exit 1
        ;;
esac
mkdir -p /tmp/hls /tmp/recordings /var/log/nginx
chmod 777 /tmp/hls /tmp/recordings
# Earlier versions logged record-done.sh's command line, the secret included, beside the replays.
rm -f /tmp/recordings/record-done.log
# record-done.sh's messages: the workers' to write, nobody else's to read.
touch /var/log/nginx/record-done.log
chown nobody /var/log/nginx/record-done.log
chmod 600 /var/log/nginx/record-done.log
# The configuration holds the secret: root's alone (the master reads it before dropping to nobody).
rm -f /etc/nginx/nginx.conf
(
    umask 077
    {
        echo "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;"
        sed "s|__RTMP_CALLBACK_SECRET__|$RTMP_CALLBACK_SECRET|g" /etc/nginx/vitrine/nginx.conf.template
    } >/etc/nginx/nginx.conf
)
exec nginx -g "daemon off;"
