// A plain TCP connection to the server under test, for requests no HTTP client library
// would send (broken framing, early answers, trickled heads).
#ifndef REGFS_TESTS_HTTPD_RAW_CONNECTION_H_
#define REGFS_TESTS_HTTPD_RAW_CONNECTION_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>

namespace regfs::testing {

// A blocking TCP connection to the server under test, closed on destruction.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const std::string& host = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    inet_pton(AF_INET, host.c_str(), &address.sin_addr);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& bytes) {
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Everything received until the server closes the connection or `timeout` passes without
  // a byte; *closed says which, and *error holds recv's errno when it failed (ECONNRESET for
  // a reset, EAGAIN for the timeout), else 0.
  std::string ReadAll(std::chrono::milliseconds timeout, bool* closed = nullptr,
                      int* error = nullptr) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (closed != nullptr) *closed = n == 0;
      if (error != nullptr) *error = n < 0 ? errno : 0;
      return out;
    }
  }

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

}  // namespace regfs::testing

#endif  // REGFS_TESTS_HTTPD_RAW_CONNECTION_H_
