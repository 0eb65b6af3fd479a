// Basic authentication against an Apache htpasswd file of bcrypt entries, the way
// registry:2's auth.htpasswd works: "user:$2y$..." lines, re-read when the file changes.
//
// Passwords are checked with the system's crypt(3) (libxcrypt implements bcrypt). A name
// that is not in the file is checked against a dummy hash, so unknown and known users take
// the same time. Successful checks are remembered (by a hash of user, password and stored
// hash) so that clients, which send credentials with every request, pay bcrypt's cost once.
// Thread-safe.
#pragma once

#include <Poco/Net/HTTPServerRequest.h>

#include <chrono>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "auth/authenticator.h"
#include "logger.h"

namespace regfs::httpd {

class HtpasswdAuthenticator final : public Authenticator {
 public:
  HtpasswdAuthenticator(std::string realm, std::string path, const Logger& logger);

  Authentication Authenticate(const Poco::Net::HTTPServerRequest& request) override;
  std::string Challenge(const std::vector<Need>&, ChallengeReason) const override {
    return "Basic realm=\"" + realm_ + "\"";
  }
  // A user who may not do something gets 403: asking again cannot grant more.
  bool RechallengesWhenInsufficient() const override { return false; }

  // Checks one password; exposed for tests.
  bool Verify(const std::string& user, const std::string& password);

 private:
  void ReloadIfChanged();

  const std::string realm_;
  const std::string path_;
  const Logger& logger_;
  std::mutex mu_;
  std::map<std::string, std::string> users_;          // GUARDED_BY(mu_): name -> bcrypt hash
  timespec loaded_mtime_{};                           // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point next_check_;  // GUARDED_BY(mu_)
  std::set<std::string> verified_;                    // GUARDED_BY(mu_): hashes of good checks
};

}  // namespace regfs::httpd
