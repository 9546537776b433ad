-- wrk script: raft-ts KV put through the member HTTP API, a 100-byte value
-- (the same key each time, as /work/shared/bench/etcd-put.lua does for etcd)
wrk.method = "PUT"
wrk.path = "/kv/bench"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("v", 100)
