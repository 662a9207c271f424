#!/bin/sh
# nginx-rtmp's `exec_record_done`: make a finished recording a replay browsers can play.
#
#   RECORD_DONE_URL=<on_record_done callback URL> record-done.sh <recording.flv>
#
# The FLV nginx wrote is remuxed (streams copied, nothing re-encoded) into <playback id>.mp4 with
# its index first (+faststart, so playback starts before the download ends). ffmpeg writes a
# temporary file that is renamed once complete, and only then is the streams service told, with
# the same form nginx's own on_record_done would post, plus the MP4's duration as ffprobe reads
# it (the replay's length; after each take of an encoder that reconnects, where that take ends
# in the file): the replay URL never names a partial file.
# A failed remux posts nothing (an FLV is no replay for a browser) and says why on stderr, which
# the exec line sends to a log outside the recordings folder.
#
# The callback URL carries the streams service's secret: it comes in the environment (nginx.conf's
# `env RECORD_DONE_URL=…`) and goes to curl on stdin, never on a command line, which nginx logs
# and `ps` shows; nor is it ever written to the log.
#
# nginx runs this as its workers' user (nobody when started as root), with an empty environment
# unless the configuration keeps some (`env PATH;`); the recordings folder must be writable.
set -u
PATH="${PATH:-/usr/local/bin:/usr/bin:/bin}"
export PATH

if [ $# -ne 1 ] || [ -z "${RECORD_DONE_URL:-}" ]; then
    echo "usage: RECORD_DONE_URL=<on_record_done URL> $0 <recording.flv>" >&2
    exit 2
fi
flv=$1
callback=$RECORD_DONE_URL
unset RECORD_DONE_URL # ffmpeg has no use for it
dir=$(dirname "$flv")
name=$(basename "$flv" .flv) # the live's playback id: nginx names recordings after the stream
mp4="$dir/$name.mp4"
part="$dir/.$name.$$.mp4.part" # ours alone: a run for an earlier take may still be going

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) record-done $name: $*" >&2
}

# Writes the MP4's duration on stdout, in seconds as ffprobe prints them ("12.345000"; nothing
# when it cannot tell), read before the MP4 takes its place: it is this remux's own.
remux() {
    if ffmpeg -nostdin -hide_banner -loglevel error -y -i "$flv" \
        -map 0 -c copy -movflags +faststart -f mp4 "$part"; then
        ffprobe -v error -show_entries format=duration -of default=noprint_wrappers=1:nokey=1 \
            "$part" 2>/dev/null | head -n 1
        mv -f "$part" "$mp4"
    else
        rm -f "$part"
        return 1
    fi
}

notify() {
    # curl's config on stdin (-K -): the URL, quoted for it, stays off the command line.
    printf 'url = "%s"\n' "$(printf '%s' "$callback" | sed 's/[\\"]/\\&/g')" |
        curl --config - --silent --show-error --fail --output /dev/null --max-time 30 \
            --retry 10 --retry-delay 2 --retry-connrefused \
            --data-urlencode "call=record_done" --data-urlencode "name=$name" \
            --data-urlencode "path=$mp4" --data-urlencode "duration=$seconds"
}

[ -s "$flv" ] || { log "no recording at $flv"; exit 1; }

# An encoder that reconnects appends to the same FLV and ends another take: one remux at a time,
# so an older take's MP4 can never replace a newer, longer one.
if command -v flock >/dev/null 2>&1; then
    seconds=$( (flock -x 9 && remux) 9<"$flv")
else
    seconds=$(remux)
fi || { log "ffmpeg could not remux $flv"; exit 1; }

notify || { log "the streams service was not told of $mp4"; exit 1; }
log "replay ready: $mp4 (${seconds:-unknown} s)"
