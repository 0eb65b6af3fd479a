// Bounds what a client can hold without making progress. Every connection holds one of the
// server's threads while it waits for a request head, so a client that opens many
// connections and sends a byte now and then (slowloris) could take them all: Poco's socket
// timeout only counts silence, and a trickle is never silent.
//
// The guard sits between the listening socket and Poco's HTTP connection:
//  - a connection waiting for a request head (a new one, or a keep-alive one between
//    requests) gets `head_timeout` in total, however it trickles; then it is shut down;
//  - one remote address may hold at most `per_client` connections at once (loopback
//    excepted: that is this host, or a reverse proxy in front of it); past that the new one
//    gets 429 and is closed.
// Time spent in a handler (a long blob upload or download) is not limited here.
#pragma once

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServerConnectionFactory.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "logger.h"

namespace regfs::httpd {

class ConnectionGuard {
 public:
  struct Limits {
    std::chrono::milliseconds head_timeout{30'000};
    size_t per_client = 128;  // 0: no limit
  };

  // Starts the watchdog thread. The guard must outlive the server that uses Factory().
  ConnectionGuard(Limits limits, const Logger& logger);
  ~ConnectionGuard();
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Connection factory for Poco::Net::TCPServer: guarded HTTPServerConnections.
  Poco::Net::TCPServerConnectionFactory::Ptr Factory(
      Poco::Net::HTTPRequestHandlerFactory::Ptr handlers,
      Poco::Net::HTTPServerParams::Ptr params);

  // Called on the connection's thread by the request handler: the head has been read and the
  // request is being handled / has been answered (the head clock restarts).
  static void RequestStarted();
  static void RequestFinished();

  // How many connections were cut for being too slow, and refused for being too many.
  size_t timed_out() const;
  size_t refused() const;

 private:
  struct Connection;
  class GuardedConnection;
  class ConnectionFactory;

  // Registers a connection; false when its client already holds per_client connections.
  bool Admit(Connection* c);
  void Release(Connection* c);
  void Watch();

  const Limits limits_;
  const Logger& logger_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<Connection*, std::string> connections_;  // connection -> client address
  std::map<std::string, size_t> per_client_;
  size_t timed_out_ = 0;
  size_t refused_ = 0;
  std::thread watchdog_;
};

}  // namespace regfs::httpd
