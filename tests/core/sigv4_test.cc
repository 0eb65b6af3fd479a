// AWS Signature Version 4 against AWS's published test suite (the "Signature Version 4 Test
// Suite" of the AWS General Reference, credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
// us-east-1, service "service"): for each request, the header signature and the presigned
// (query) signature. Only cases whose path needs no normalisation are taken: S3 never
// normalises paths, and neither does this signer. Then S3's own worked examples.
#include "drivers/s3/sigv4.h"

#include <gtest/gtest.h>

#include <ctime>

namespace regfs::s3 {
namespace {

using std::chrono::system_clock;

system_clock::time_point At(int year, int month, int day, int hour, int minute, int second) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return system_clock::from_time_t(timegm(&tm));
}

const Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
const SigningScope kSuiteScope{"us-east-1", "service", At(2015, 8, 30, 12, 36, 0)};

struct SuiteCase {
  const char* name;
  SigningRequest request;
  const char* header_signature;
  const char* query_signature;
  std::string session_token = "";
};

SigningRequest Get(std::string path, Pairs query = {}, Pairs extra_headers = {}) {
  SigningRequest r{"GET", std::move(path), std::move(query), {{"Host", "example.amazonaws.com"}},
                   std::string(kEmptyPayloadHash)};
  for (auto& h : extra_headers) r.headers.push_back(std::move(h));
  return r;
}

const std::vector<SuiteCase>& SuiteCases() {
  static const std::vector<SuiteCase> cases = [] {
    std::vector<SuiteCase> c;
    c.push_back({"get-vanilla", Get("/"),
                 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
                 "e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"});
    c.push_back({"get-vanilla-query-order-key-case",
                 Get("/", {{"Param2", "value2"}, {"Param1", "value1"}}),
                 "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
                 "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"});
    const std::string unreserved =
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    c.push_back({"get-vanilla-query-unreserved", Get("/", {{unreserved, unreserved}}),
                 "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
                 "8e76a88a7433637b12778d5592799b29ad21ecd6cf6325051c21d86f0acda2bf"});
    c.push_back({"get-utf8", Get("/\xe1\x88\xb4"),
                 "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
                 "10eae3f14a260bd3911cc6d008d3c576d143b05b62f09782a7a4b37f52178e44"});
    c.push_back({"get-space-unnormalized", Get("/example space/"),
                 "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
                 "7a1f416954786484c9824d93c1f26ef64acb9b1b6c9154d08c9f07d0e394abf6"});
    c.push_back({"get-vanilla-query-order-encoded",
                 Get("/", {{"Param-3", "Value3"}, {"Param", "Value2"}, {"\xe1\x88\xb4", "Value1"}}),
                 "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
                 "c5f1848ceec943ac2ca68ee720460c23aaae30a2300586597ada94c4a65e4787"});
    c.push_back({"get-vanilla-utf8-query", Get("/", {{"\xe1\x88\xb4", "bar"}}),
                 "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
                 "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600"});
    c.push_back({"get-header-value-trim",
                 Get("/", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}),
                 "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                 "e7bb0fd515e125e1aec2ecc4c0c17484fb06f6846b927c35e46005dd3df3acd4"});
    c.push_back({"get-header-key-duplicate",
                 Get("/", {},
                     {{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}}),
                 "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
                 "3349ee0b81b4b589da0ff28a395c3591e04de515651dd74f298fa992d1507a97"});
    c.push_back({"get-header-value-order",
                 Get("/", {},
                     {{"My-Header1", "value4"},
                      {"My-Header1", "value1"},
                      {"My-Header1", "value3"},
                      {"My-Header1", "value2"}}),
                 "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
                 "313720e71ca6202fdcfa9b20f88de01a4eb0638a83c833b1c184359a4eda864e"});
    SigningRequest post_query = Get("/", {{"Param1", "value1"}});
    post_query.method = "POST";
    c.push_back({"post-vanilla-query", post_query,
                 "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
                 "a9ef26247f293bffe40eeff86a0480ba8c14d31503b2e0c3399e3a16bf1a3682"});
    SigningRequest header_case = Get("/", {}, {{"My-Header1", "VALUE1"}});
    header_case.method = "POST";
    c.push_back({"post-header-value-case", header_case,
                 "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
                 "0698bc9e4f7f9139065ba2909c0e99da257e8e2a42492a097bcd46d792391fed"});
    c.push_back({"get-vanilla-with-session-token", Get("/"),
                 "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
                 "7ff2b50b376cb4d151970630573d6291dc128cc5c2a12ffb237f73cc53f67b6c",
                 "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"});
    return c;
  }();
  return cases;
}

std::string SignatureIn(const std::string& authorization) {
  auto at = authorization.find("Signature=");
  return at == std::string::npos ? "" : authorization.substr(at + 10);
}

std::string QueryValue(const Pairs& query, const std::string& name) {
  for (const auto& [k, v] : query) {
    if (k == name) return v;
  }
  return "";
}

TEST(SigV4SuiteTest, HeaderSignatures) {
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    SigningRequest r = c.request;
    Credentials credentials = kSuiteCredentials;
    credentials.session_token = c.session_token;
    std::string authorization = SignHeaders(&r, credentials, kSuiteScope);
    EXPECT_EQ(SignatureIn(authorization), c.header_signature) << authorization;
    EXPECT_TRUE(authorization.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders="));
  }
}

TEST(SigV4SuiteTest, PresignedSignatures) {
  for (const SuiteCase& c : SuiteCases()) {
    SCOPED_TRACE(c.name);
    SigningRequest r = c.request;
    Credentials credentials = kSuiteCredentials;
    credentials.session_token = c.session_token;
    Presign(&r, credentials, kSuiteScope, std::chrono::seconds(3600));
    EXPECT_EQ(QueryValue(r.query, "X-Amz-Signature"), c.query_signature);
    EXPECT_EQ(QueryValue(r.query, "X-Amz-Expires"), "3600");
  }
}

TEST(SigV4SuiteTest, SignedBodyFormPost) {
  // post-x-www-form-urlencoded: the body's hash is signed and sent as x-amz-content-sha256.
  const std::string hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
  SigningRequest r{"POST",
                   "/",
                   {},
                   {{"Content-Type", "application/x-www-form-urlencoded"},
                    {"Host", "example.amazonaws.com"},
                    {"Content-Length", "13"},
                    {"x-amz-content-sha256", hash}},
                   hash};
  EXPECT_EQ(SignatureIn(SignHeaders(&r, kSuiteCredentials, kSuiteScope)),
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
}

TEST(SigV4Test, CanonicalRequestOfTheVanillaGet) {
  SigningRequest r = Get("/");
  r.headers.emplace_back("X-Amz-Date", "20150830T123600Z");
  std::string signed_headers;
  EXPECT_EQ(CanonicalRequest(r, &signed_headers),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n" + std::string(kEmptyPayloadHash));
  EXPECT_EQ(signed_headers, "host;x-amz-date");
}

TEST(SigV4Test, PathsAreEncodedOnceAndNeverNormalised) {
  // Object keys are taken as they are: "a/./b" and "a//b" are other keys than "a/b".
  EXPECT_EQ(UriEncode("/bucket/a/./b//c d+e%f~g", true), "/bucket/a/./b//c%20d%2Be%25f~g");
  EXPECT_EQ(UriEncode("a/b=c&d", false), "a%2Fb%3Dc%26d");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "docker/registry/v2/"}, {"list-type", "2"}}),
            "list-type=2&prefix=docker%2Fregistry%2Fv2%2F");
  EXPECT_EQ(CanonicalQueryString({{"uploads", ""}}), "uploads=");
}

// S3's worked examples ("Signature Calculations for the Authorization Header" and "Query
// String Authentication" in the S3 API reference): examplebucket, 2013-05-24.
const Credentials kS3Credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                 ""};
const SigningScope kS3Scope{"us-east-1", "s3", At(2013, 5, 24, 0, 0, 0)};

TEST(SigV4S3ExamplesTest, GetObjectWithRange) {
  SigningRequest r{"GET",
                   "/test.txt",
                   {},
                   {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"Range", "bytes=0-9"},
                    {"x-amz-content-sha256", std::string(kEmptyPayloadHash)}},
                   std::string(kEmptyPayloadHash)};
  EXPECT_EQ(SignatureIn(SignHeaders(&r, kS3Credentials, kS3Scope)),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4S3ExamplesTest, ListObjects) {
  SigningRequest r{"GET",
                   "/",
                   {{"max-keys", "2"}, {"prefix", "J"}},
                   {{"Host", "examplebucket.s3.amazonaws.com"},
                    {"x-amz-content-sha256", std::string(kEmptyPayloadHash)}},
                   std::string(kEmptyPayloadHash)};
  EXPECT_EQ(SignatureIn(SignHeaders(&r, kS3Credentials, kS3Scope)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4S3ExamplesTest, PresignedGet) {
  SigningRequest r{"GET",
                   "/test.txt",
                   {},
                   {{"Host", "examplebucket.s3.amazonaws.com"}},
                   std::string(kUnsignedPayload)};
  Presign(&r, kS3Credentials, kS3Scope, std::chrono::seconds(86400));
  EXPECT_EQ(QueryValue(r.query, "X-Amz-Signature"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  EXPECT_EQ(QueryValue(r.query, "X-Amz-Credential"),
            "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request");
}

}  // namespace
}  // namespace regfs::s3
