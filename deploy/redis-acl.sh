# deploy/redis-acl.sh — the Redis ACL of every Antar deployment, in one place: sourced by
# scripts/stack.sh (the local stack) and deploy/k8s/make-secrets.sh (Kubernetes).
#
# redis_acl_text prints the users file. It reads the SHA-256 hex of each password from
# h_core, h_user, h_driver, h_admin, h_repl and h_sentinel: passwords never appear in it.
# One user per service with only its keys and commands; the default user is off.
redis_acl_text() {
    # ROLE: lib/kv.c checks that a server Sentinel named is really the master.
    local common="+ping +hello +exists +client|id +client|tracking +subscribe +unsubscribe +role"
    # The push channel (lib/events.c): publishing is one XADD to antar:events; serving streams
    # reads it and keeps each subject's open streams in antar:events:conns:<sub>, with a Lua
    # script whose commands are checked against the same ACL.
    local events_serve="+xadd +xread +xrange +xrevrange +zadd +zrem +eval +zremrangebyscore +zcard +pexpire"
    # The trace record (lib/trace_record.c): every service appends its spans to the hash
    # antar:calls in a script that keeps antar:calls:age to the newest fields; user-service
    # reads it for the console (HMGET).
    local trace_record="+eval +hget +hset +hstrlen +hdel +hmget +zadd +zcard +zpopmin"
    # antar_repl: a replica's link to its master (masteruser); antar_sentinel: the commands
    # Sentinel sends to monitor and fail over (Redis's documented minimum).
    cat <<ACL
user default off resetpass ~* &* +@all
user antar_core on #$h_core ~* &* +@all -@admin -flushall -flushdb -keys -debug -migrate +role
user antar_repl on #$h_repl +psync +replconf +ping
user antar_sentinel on #$h_sentinel allchannels +multi +slaveof +ping +exec +subscribe +config|rewrite +role +publish +info +client|setname +client|kill +script|kill
user antar_user on #$h_user resetkeys ~revoked:jti:* ~antar:events ~antar:events:conns:* ~antar:calls ~antar:calls:age resetchannels &__redis__:invalidate nocommands $common $events_serve $trace_record
user antar_driver on #$h_driver resetkeys ~revoked:jti:* ~drv:* ~antar:events ~antar:calls ~antar:calls:age resetchannels &__redis__:invalidate nocommands $common +get +set +del +xadd $trace_record
user antar_admin on #$h_admin ~* &* +@all
ACL
}
