#include "connection_guard.h"

#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/TCPServerConnection.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <vector>

namespace regfs::httpd {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool IsLoopback(const Poco::Net::IPAddress& a) {
  // An IPv4 client of a dual-stack socket shows as ::ffff:127.x.y.z.
  return a.isLoopback() || (a.isIPv4Mapped() && a.toString().starts_with("::ffff:127."));
}

}  // namespace

struct ConnectionGuard::Connection {
  // A duplicate of the connection's descriptor: the watchdog shuts the connection down
  // through it, and it stays open until Release, so its number can never be reused by a
  // newer connection while the watchdog may still act on it.
  int fd = -1;
  std::atomic<bool> handling{false};
  std::atomic<int64_t> waiting_since_ms{NowMs()};
  bool cut = false;  // guarded by mu_
};

namespace {
thread_local void* t_current_connection = nullptr;
}

class ConnectionGuard::GuardedConnection : public Poco::Net::TCPServerConnection {
 public:
  GuardedConnection(const Poco::Net::StreamSocket& socket, ConnectionGuard& guard,
                    Poco::Net::HTTPRequestHandlerFactory::Ptr handlers,
                    Poco::Net::HTTPServerParams::Ptr params)
      : TCPServerConnection(socket), guard_(guard), handlers_(handlers), params_(params) {}

  void run() override {
    Connection c;
    c.fd = ::dup(socket().impl()->sockfd());
    if (c.fd < 0) return;  // out of descriptors: drop the connection
    if (!guard_.Admit(&c)) {
      static const std::string kBusy =
          "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nConnection: close\r\n"
          "Content-Type: application/json\r\nContent-Length: 103\r\n\r\n"
          "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"too many connections from "
          "this address\",\"detail\":null}]}";
      try {
        socket().sendBytes(kBusy.data(), static_cast<int>(kBusy.size()));
      } catch (const Poco::Exception&) {
      }
      ::close(c.fd);
      return;
    }
    t_current_connection = &c;
    try {
      Poco::Net::HTTPServerConnection http(socket(), params_, handlers_);
      http.run();
    } catch (...) {
      // HTTPServerConnection reports its own errors; the connection is over either way.
    }
    t_current_connection = nullptr;
    guard_.Release(&c);
  }

 private:
  ConnectionGuard& guard_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
  Poco::Net::HTTPServerParams::Ptr params_;
};

class ConnectionGuard::ConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  ConnectionFactory(ConnectionGuard& guard, Poco::Net::HTTPRequestHandlerFactory::Ptr handlers,
                    Poco::Net::HTTPServerParams::Ptr params)
      : guard_(guard), handlers_(handlers), params_(params) {}
  Poco::Net::TCPServerConnection* createConnection(
      const Poco::Net::StreamSocket& socket) override {
    return new GuardedConnection(socket, guard_, handlers_, params_);
  }

 private:
  ConnectionGuard& guard_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
  Poco::Net::HTTPServerParams::Ptr params_;
};

ConnectionGuard::ConnectionGuard(Limits limits, const Logger& logger)
    : limits_(limits), logger_(logger), watchdog_([this] { Watch(); }) {}

ConnectionGuard::~ConnectionGuard() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  watchdog_.join();
}

Poco::Net::TCPServerConnectionFactory::Ptr ConnectionGuard::Factory(
    Poco::Net::HTTPRequestHandlerFactory::Ptr handlers, Poco::Net::HTTPServerParams::Ptr params) {
  return new ConnectionFactory(*this, handlers, params);
}

void ConnectionGuard::RequestStarted() {
  if (auto* c = static_cast<Connection*>(t_current_connection)) c->handling = true;
}

void ConnectionGuard::RequestFinished() {
  if (auto* c = static_cast<Connection*>(t_current_connection)) {
    c->waiting_since_ms = NowMs();
    c->handling = false;
  }
}

bool ConnectionGuard::Admit(Connection* c) {
  std::string client;
  bool limited = limits_.per_client > 0;
  try {
    Poco::Net::SocketAddress peer;
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    if (::getpeername(c->fd, reinterpret_cast<sockaddr*>(&storage), &length) == 0) {
      peer = Poco::Net::SocketAddress(reinterpret_cast<sockaddr*>(&storage), length);
      client = peer.host().toString();
      if (IsLoopback(peer.host())) limited = false;
    }
  } catch (const Poco::Exception&) {
  }
  std::lock_guard<std::mutex> lock(mu_);
  size_t& held = per_client_[client];
  if (limited && held >= limits_.per_client) {
    if (held == 0) per_client_.erase(client);
    // One line for the first and then every thousandth: a flood must not flood the log.
    if (refused_++ % 1000 == 0) {
      logger_.Warn("refused a connection from " + client + ": it already holds " +
                   std::to_string(held) + " (limits.connectionsperclient); " +
                   std::to_string(refused_) + " refused so far");
    }
    return false;
  }
  ++held;
  connections_[c] = client;
  return true;
}

void ConnectionGuard::Release(Connection* c) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = connections_.find(c);
  if (it != connections_.end()) {
    auto held = per_client_.find(it->second);
    if (held != per_client_.end() && --held->second == 0) per_client_.erase(held);
    connections_.erase(it);
  }
  ::close(c->fd);
}

void ConnectionGuard::Watch() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::milliseconds(250));
    const int64_t deadline = NowMs() - limits_.head_timeout.count();
    for (auto& [c, client] : connections_) {
      if (c->cut || c->handling || c->waiting_since_ms.load() > deadline) continue;
      // The blocked read in the connection's thread returns, and Poco ends the connection.
      c->cut = true;
      ::shutdown(c->fd, SHUT_RDWR);
      ++timed_out_;
      logger_.Debug("closed a connection from " + client + " that sent no complete request in " +
                    std::to_string(limits_.head_timeout.count()) + " ms");
    }
  }
}

size_t ConnectionGuard::timed_out() const {
  std::lock_guard<std::mutex> lock(mu_);
  return timed_out_;
}

size_t ConnectionGuard::refused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_;
}

}  // namespace regfs::httpd
