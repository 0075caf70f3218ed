// Taking a WebSocket upgrade's connection away from cpp-httplib (GET /v1/realtime): Debian 12's
// cpp-httplib 0.11 has no WebSocket and does not give a handler its connection's socket, so the
// handler finds it, keeps a duplicate for Boost.Beast (api/realtime_service.h) and leaves the
// HTTP server a dead socket in its place.
//
// The socket is the one of this process's file descriptors whose local and peer addresses are
// the request's (local_addr:local_port, remote_addr:remote_port, which name one TCP connection).
// It is dup()ed, then an unconnected AF_UNIX socket is dup2()ed over the original descriptor
// number: whatever the HTTP server later writes to or closes on its descriptor (its response to
// this request, which the handler marks `Connection: close`) never touches the connection, and
// the number cannot be reused by another file until the server closes it.
#pragma once

#include <httplib.h>

#include "core/result.h"

namespace steno::api {

// The connection's socket, duplicated (the caller owns it). Errors: kNotFound
// "connection_not_found" when no descriptor matches the request's addresses, kIo when a dup
// fails.
Result<int> TakeConnection(const httplib::Request& req);

}  // namespace steno::api
