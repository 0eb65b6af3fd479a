#include "auth/htpasswd_authenticator.h"

#include <Poco/Base64Decoder.h>
#include <Poco/String.h>
#include <crypt.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "regfs/core/digest.h"

namespace regfs::httpd {

namespace {

// bcrypt of a forgotten random password, for an empty file.
constexpr const char* kDummyHash = "$2y$10$JfudIlJsSb0ceqHyzGmvqeJwkiEAQLyXUCDtvnXAU4cBlxN2AE.46";
constexpr size_t kMaxVerifiedEntries = 10000;

bool IsBcrypt(const std::string& hash) {
  return hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$");
}

bool CryptMatches(const std::string& password, const std::string& hash) {
  auto data = std::make_unique<crypt_data>();
  data->initialized = 0;
  const char* out = crypt_r(password.c_str(), hash.c_str(), data.get());
  if (out == nullptr || out[0] == '*') return false;
  return ConstantTimeEquals(out, hash);
}

}  // namespace

HtpasswdAuthenticator::HtpasswdAuthenticator(std::string realm, std::string path,
                                             const Logger& logger)
    : realm_(std::move(realm)), path_(std::move(path)), logger_(logger) {}

void HtpasswdAuthenticator::ReloadIfChanged() {
  // REQUIRES: mu_ held. Looks at the file at most once a second.
  auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return;
  next_check_ = now + std::chrono::seconds(1);
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    if (!users_.empty()) logger_.Warn("htpasswd file " + path_ + " is gone; nobody can log in");
    users_.clear();
    loaded_mtime_ = {};
    return;
  }
  if (st.st_mtim.tv_sec == loaded_mtime_.tv_sec && st.st_mtim.tv_nsec == loaded_mtime_.tv_nsec)
    return;
  std::ifstream in(path_);
  std::map<std::string, std::string> users;
  size_t skipped = 0;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string hash = line.substr(colon + 1);
    if (!IsBcrypt(hash)) {
      ++skipped;
      continue;
    }
    users[line.substr(0, colon)] = hash;
  }
  users_ = std::move(users);
  verified_.clear();
  loaded_mtime_ = st.st_mtim;
  logger_.Info("loaded " + std::to_string(users_.size()) + " users from " + path_ +
               (skipped
                    ? " (" + std::to_string(skipped) + " entries are not bcrypt and were ignored)"
                    : ""));
}

bool HtpasswdAuthenticator::Verify(const std::string& user, const std::string& password) {
  // crypt reads a C string: "pw\0anything" would pass as "pw". Such a password is no one's.
  if (password.find('\0') != std::string::npos) return false;
  std::string hash;
  std::string dummy;
  std::string memo;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ReloadIfChanged();
    auto it = users_.find(user);
    hash = it == users_.end() ? "" : it->second;
    // An unknown name is checked against a real entry (same bcrypt cost), so it takes as
    // long as a known one; the result is ignored.
    dummy = users_.empty() ? kDummyHash : users_.begin()->second;
    memo = Digest::Sha256Of(user + '\0' + password + '\0' + hash).hex();
    if (!hash.empty() && verified_.count(memo)) return true;
  }
  bool matches = CryptMatches(password, hash.empty() ? dummy : hash);
  bool ok = matches && !hash.empty();
  if (ok) {
    std::lock_guard<std::mutex> lock(mu_);
    if (verified_.size() >= kMaxVerifiedEntries) verified_.clear();
    verified_.insert(memo);
  }
  return ok;
}

Authentication HtpasswdAuthenticator::Authenticate(const Poco::Net::HTTPServerRequest& request) {
  Authentication rejected{.result = Authentication::Result::kRejected};
  const std::string header = request.get("Authorization", "");
  if (header.empty()) return {};
  // The scheme name is case-insensitive (RFC 9110).
  if (header.size() < 6 || Poco::icompare(header.substr(0, 6), "basic ") != 0) {
    rejected.reason = "the Authorization header is not Basic";
    return rejected;
  }
  std::string decoded;
  try {
    std::istringstream in(header.substr(6));
    Poco::Base64Decoder decoder(in);
    std::ostringstream out;
    out << decoder.rdbuf();
    decoded = out.str();
  } catch (const Poco::Exception&) {
    rejected.reason = "malformed Basic credentials";
    return rejected;
  }
  auto colon = decoded.find(':');
  if (colon == std::string::npos) {
    rejected.reason = "malformed Basic credentials";
    return rejected;
  }
  std::string user = decoded.substr(0, colon);
  // Some clients (skopeo, containerd) answer a Basic challenge with ":" when they have no
  // credentials: that is an anonymous request, not a wrong password.
  if (user.empty() && colon + 1 == decoded.size()) return {};
  if (user.empty() || !Verify(user, decoded.substr(colon + 1))) {
    rejected.reason = "wrong user name or password";
    return rejected;
  }
  return {.result = Authentication::Result::kAccepted,
          .caller = {.kind = Caller::Kind::kUser, .name = user}};
}

}  // namespace regfs::httpd
