// The listening socket: plain TCP, or TLS (Poco NetSSL over OpenSSL) when http.tls is set.
#pragma once

#include <Poco/Net/ServerSocket.h>

#include "regfs/config/config.h"

namespace regfs::httpd {

// Binds and listens on config.addr. TLS: certificate and key from http.tls, minimum
// protocol http.tls.minimumtls, client certificates required and checked against
// http.tls.clientcas when given. Fails with a message naming the file or the address.
Result<Poco::Net::ServerSocket> Listen(const Config& config);

}  // namespace regfs::httpd
