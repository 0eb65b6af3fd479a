// AWS Signature Version 4 for S3-compatible object stores (AWS S3, Ceph RGW, MinIO, Aliyun
// OSS's S3 API): canonical request, string to sign, signing key, and the two ways to carry
// a signature: an Authorization header, or a presigned URL's query parameters.
//
// Written here because Debian packages no usable C++ S3 SDK. It follows S3's rules, which
// differ from other AWS services in one place: the path is encoded once and never
// normalised ("a/./b" and "a//b" are different object keys).
//
// Everything is a pure function of its inputs (the time included), so the published test
// vectors check it byte for byte. Thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace regfs::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (STS); empty otherwise
};

struct SigningScope {
  std::string region;   // e.g. "us-east-1"
  std::string service;  // "s3"
  std::chrono::system_clock::time_point time;
};

using Pairs = std::vector<std::pair<std::string, std::string>>;

// One HTTP request as it will be sent.
struct SigningRequest {
  std::string method;  // "GET", "PUT", ...
  // The path, not percent-encoded ("/bucket/key with space"); encoded here per S3's rules.
  std::string path;
  Pairs query;    // names and values, not percent-encoded; order does not matter
  Pairs headers;  // every header to sign, Host included; names in any case, repeats allowed
  // Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". S3 also wants it sent as the
  // x-amz-content-sha256 header: the caller adds that header (and so signs it).
  std::string payload_hash;
};

// Hex SHA-256 of the empty body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// RFC 3986 percent-encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - . _ ~ becomes
// %XX (upper-case hex); '/' is kept when `keep_slash` (paths), encoded otherwise (query).
std::string UriEncode(std::string_view text, bool keep_slash);

// "20150830T123600Z", the x-amz-date format.
std::string AmzDate(std::chrono::system_clock::time_point time);

// The canonical request; *signed_headers gets the "host;x-amz-date" list it signs.
std::string CanonicalRequest(const SigningRequest& request, std::string* signed_headers);
// "AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256 of the canonical request>".
std::string StringToSign(const std::string& canonical_request, const SigningScope& scope);
// Hex HMAC-SHA256 of `string_to_sign` with the key derived from the secret and the scope.
std::string Signature(const std::string& string_to_sign, const Credentials& credentials,
                      const SigningScope& scope);

// Header signing: adds x-amz-date (and x-amz-security-token with temporary credentials) to
// request->headers and returns the value of the Authorization header to send with them.
std::string SignHeaders(SigningRequest* request, const Credentials& credentials,
                        const SigningScope& scope);

// Presigning: adds the X-Amz-* parameters (X-Amz-Signature last) to request->query, after
// which the URL alone authorises the request until `expires` (1 s to 7 days) after
// scope.time. Only the request's headers are signed (usually just Host); S3 wants
// payload_hash "UNSIGNED-PAYLOAD" here.
void Presign(SigningRequest* request, const Credentials& credentials, const SigningScope& scope,
             std::chrono::seconds expires);

// The query string of request.query as the canonical request orders and encodes it: what
// to put after '?' in the URL that is sent.
std::string CanonicalQueryString(const Pairs& query);

}  // namespace regfs::s3
