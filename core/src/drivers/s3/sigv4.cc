#include "drivers/s3/sigv4.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>
#include <stdexcept>

#include "regfs/core/digest.h"

namespace regfs::s3 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool Unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Sha256Hex(std::string_view data) { return Digest::Sha256Of(data).hex(); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Leading and trailing blanks removed, inner runs of blanks made one space (SigV4 "Trimall").
std::string TrimAll(std::string_view v) {
  std::string out;
  bool blank = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      blank = !out.empty();
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

std::string Scope(const SigningScope& scope) {
  return AmzDate(scope.time).substr(0, 8) + "/" + scope.region + "/" + scope.service +
         "/aws4_request";
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string AmzDate(std::chrono::system_clock::time_point time) {
  std::time_t secs = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string CanonicalQueryString(const Pairs& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());  // by encoded name, then value
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

std::string CanonicalRequest(const SigningRequest& request, std::string* signed_headers) {
  // Names lower-cased and sorted; repeated names joined with ',' in the order sent.
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : request.headers) {
    std::string& joined = headers[Lower(name)];
    if (!joined.empty()) joined += ',';
    joined += TrimAll(value);
  }
  std::string canonical_headers, names;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!names.empty()) names += ';';
    names += name;
  }
  if (signed_headers != nullptr) *signed_headers = names;
  const std::string path = request.path.empty() ? "/" : request.path;
  return request.method + "\n" + UriEncode(path, true) + "\n" +
         CanonicalQueryString(request.query) + "\n" + canonical_headers + "\n" + names + "\n" +
         request.payload_hash;
}

std::string StringToSign(const std::string& canonical_request, const SigningScope& scope) {
  return std::string(kAlgorithm) + "\n" + AmzDate(scope.time) + "\n" + Scope(scope) + "\n" +
         Sha256Hex(canonical_request);
}

std::string Signature(const std::string& string_to_sign, const Credentials& credentials,
                      const SigningScope& scope) {
  std::string key = HmacSha256("AWS4" + credentials.secret_access_key,
                               AmzDate(scope.time).substr(0, 8));
  key = HmacSha256(key, scope.region);
  key = HmacSha256(key, scope.service);
  key = HmacSha256(key, "aws4_request");
  return LowerHex(HmacSha256(key, string_to_sign));
}

std::string SignHeaders(SigningRequest* request, const Credentials& credentials,
                        const SigningScope& scope) {
  request->headers.emplace_back("x-amz-date", AmzDate(scope.time));
  if (!credentials.session_token.empty()) {
    request->headers.emplace_back("x-amz-security-token", credentials.session_token);
  }
  std::string signed_headers;
  std::string canonical = CanonicalRequest(*request, &signed_headers);
  return std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + "/" +
         Scope(scope) + ", SignedHeaders=" + signed_headers +
         ", Signature=" + Signature(StringToSign(canonical, scope), credentials, scope);
}

void Presign(SigningRequest* request, const Credentials& credentials, const SigningScope& scope,
             std::chrono::seconds expires) {
  std::string signed_headers;
  (void)CanonicalRequest(*request, &signed_headers);
  Pairs& q = request->query;
  q.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  q.emplace_back("X-Amz-Credential", credentials.access_key_id + "/" + Scope(scope));
  q.emplace_back("X-Amz-Date", AmzDate(scope.time));
  q.emplace_back("X-Amz-Expires", std::to_string(std::clamp<int64_t>(expires.count(), 1, 604800)));
  if (!credentials.session_token.empty()) {
    q.emplace_back("X-Amz-Security-Token", credentials.session_token);
  }
  q.emplace_back("X-Amz-SignedHeaders", signed_headers);
  std::string canonical = CanonicalRequest(*request, nullptr);
  q.emplace_back("X-Amz-Signature", Signature(StringToSign(canonical, scope), credentials, scope));
}

}  // namespace regfs::s3
