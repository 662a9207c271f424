#!/bin/sh
# nginx-rtmp's `exec_record_done`: make a finished recording a replay browsers can play.
#
#   record-done.sh <recording.flv> <on_record_done callback URL>
#
# The FLV nginx wrote is remuxed (streams copied, nothing re-encoded) into <playback id>.mp4 with
# its index first (+faststart, so playback starts before the download ends). ffmpeg writes a
# temporary file that is renamed once complete, and only then is the streams service told, with
# the same form nginx's own on_record_done would post: the replay URL never names a partial file.
# A failed remux posts nothing (an FLV is no replay for a browser) and says why on stderr, which
# the exec line sends to a log next to the recordings.
#
# nginx runs this as its workers' user (nobody when started as root), with an empty environment
# unless the configuration keeps some (`env PATH;`); the recordings folder must be writable.
set -u
PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}"
export PATH

if [ $# -ne 2 ]; then
    echo "usage: $0 <recording.flv> <on_record_done URL>" >&2
    exit 2
fi
flv=$1
callback=$2
dir=$(dirname "$flv")
name=$(basename "$flv" .flv) # the live's playback id: nginx names recordings after the stream
mp4="$dir/$name.mp4"
part="$dir/.$name.$$.mp4.part" # ours alone: a run for an earlier take may still be going

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) record-done $name: $*" >&2
}

remux() {
    if ffmpeg -nostdin -hide_banner -loglevel error -y -i "$flv" \
        -map 0 -c copy -movflags +faststart -f mp4 "$part"; then
        mv -f "$part" "$mp4"
    else
        rm -f "$part"
        return 1
    fi
}

notify() {
    if command -v curl >/dev/null 2>&1; then
        curl --silent --show-error --fail --output /dev/null --max-time 30 \
            --retry 10 --retry-delay 2 --retry-connrefused \
            --data-urlencode "call=record_done" --data-urlencode "name=$name" \
            --data-urlencode "path=$mp4" "$callback"
    else
        wget -q -O /dev/null --tries=10 --waitretry=2 --timeout=30 \
            --post-data "call=record_done&name=$name&path=$mp4" "$callback"
    fi
}

[ -s "$flv" ] || { log "no recording at $flv"; exit 1; }

# An encoder that reconnects appends to the same FLV and ends another take: one remux at a time,
# so an older take's MP4 can never replace a newer, longer one.
if command -v flock >/dev/null 2>&1; then
    (flock -x 9 && remux) 9<"$flv"
else
    remux
fi || { log "ffmpeg could not remux $flv"; exit 1; }

notify || { log "the streams service was not told of $mp4"; exit 1; }
log "replay ready: $mp4"
