// Fuzzes whole HTTP requests through the router and every endpoint handler, against a fresh
// in-memory registry per run: the header parsers that live inside the handlers (Range,
// Content-Range, the n/last pagination, query parameters such as digest, mount and from,
// Authorization) are reached the way a client reaches them.
//
// Input: a raw HTTP/1.1 request (request line, headers, blank line, body), parsed by Poco the
// way the server parses it. The registry holds repository "library/a" with the blob
// "hello world" (kBlob) and the tag "latest" of a manifest referencing it, so blob ranges and
// manifest reads have something to hit; unknown upload ids hit the id validation.
//
// Invariants: exactly one response is sent, with a status in 100..599; an error (>= 400) with
// a body carries the Distribution error JSON; a 206 carries a Content-Range "bytes a-b/size"
// whose length is what was sent, inside the blob.
#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SocketAddress.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "auth/authorizer.h"
#include "fuzz_check.h"
#include "logger.h"
#include "regfs/config/config.h"
#include "regfs/core/registry.h"
#include "regfs/core/storage_driver.h"
#include "request_router.h"
#include "server_context.h"

namespace {

using Poco::Net::HTTPRequestHandler;
using Poco::Net::HTTPServerParams;
using Poco::Net::SocketAddress;

constexpr std::string_view kBlob = "hello world";

class FakeResponse final : public Poco::Net::HTTPServerResponse {
 public:
  void sendContinue() override {}
  std::ostream& send() override {
    ++sends_;
    return body_;
  }
  void sendFile(const std::string&, const std::string&) override { ++sends_; }
  void sendBuffer(const void* data, std::size_t length) override {
    ++sends_;
    body_.write(static_cast<const char*>(data), static_cast<std::streamsize>(length));
  }
  void redirect(const std::string& uri, HTTPStatus status) override {
    setStatusAndReason(status);
    set("Location", uri);
    ++sends_;
  }
  void requireAuthentication(const std::string&) override { ++sends_; }
  bool sent() const override { return sends_ > 0; }

  int sends() const { return sends_; }
  std::string body() const { return body_.str(); }

 private:
  int sends_ = 0;
  std::ostringstream body_;
};

class FakeRequest final : public Poco::Net::HTTPServerRequest {
 public:
  FakeRequest(std::istream& body, FakeResponse& response)
      : body_(body),
        response_(response),
        address_("127.0.0.1", 40000),
        params_(new HTTPServerParams) {}
  std::istream& stream() override { return body_; }
  const SocketAddress& clientAddress() const override { return address_; }
  const SocketAddress& serverAddress() const override { return address_; }
  const HTTPServerParams& serverParams() const override { return *params_; }
  Poco::Net::HTTPServerResponse& response() const override { return response_; }
  bool secure() const override { return false; }

 private:
  std::istream& body_;
  FakeResponse& response_;
  SocketAddress address_;
  HTTPServerParams::Ptr params_;
};

std::unique_ptr<regfs::Registry> NewPopulatedRegistry() {
  regfs::RegistryOptions options;
  options.driver = regfs::NewInMemoryDriver();
  options.delete_enabled = true;
  options.durable_writes = false;
  auto registry = regfs::Registry::Open(options);
  FUZZ_CHECK(registry.ok());
  const std::string repo = "library/a";
  auto upload = (*registry)->StartUpload(repo);
  FUZZ_CHECK(upload.ok());
  std::istringstream blob{std::string(kBlob)};
  FUZZ_CHECK((*registry)->AppendUpload(repo, upload->id, blob, std::nullopt).ok());
  const regfs::Digest digest = regfs::Digest::Sha256Of(kBlob);
  FUZZ_CHECK((*registry)->CommitUpload(repo, upload->id, digest).ok());
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      digest.ToString() + R"(","size":11},"layers":[]})";
  FUZZ_CHECK((*registry)->PutManifest(repo, "latest", "", manifest).ok());
  return std::move(*registry);
}

void CheckResponse(const FakeRequest& request, const FakeResponse& response) {
  FUZZ_CHECK(response.sends() == 1);
  const int status = static_cast<int>(response.getStatus());
  FUZZ_CHECK(status >= 100 && status <= 599);
  const std::string body = response.body();
  if (status >= 400 && !body.empty()) {
    Poco::JSON::Parser parser;
    Poco::Dynamic::Var json;
    try {
      json = parser.parse(body);
    } catch (const Poco::Exception& e) {
      std::fprintf(stderr, "error body: %s\n%s\n", body.c_str(), e.displayText().c_str());
      FUZZ_CHECK(!"error body is not JSON");
    }
    FUZZ_CHECK(json.type() == typeid(Poco::JSON::Object::Ptr));
    FUZZ_CHECK(json.extract<Poco::JSON::Object::Ptr>()->has("errors"));
  }
  if (status == 206) {
    unsigned long long first = 0, last = 0, size = 0;
    const std::string range = response.get("Content-Range", "");
    FUZZ_CHECK(std::sscanf(range.c_str(), "bytes %llu-%llu/%llu", &first, &last, &size) == 3);
    FUZZ_CHECK(first <= last && last < size && size == kBlob.size());
    FUZZ_CHECK(response.getContentLength64() == static_cast<Poco::Int64>(last - first + 1));
    if (request.getMethod() != "HEAD") {
      FUZZ_CHECK(body == kBlob.substr(first, last - first + 1));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const regfs::Config config = [] {
    regfs::Config c;
    c.access_log = false;
    c.relative_urls = true;
    return c;
  }();
  static const regfs::httpd::Logger logger("error", false, {});
  static const regfs::httpd::Authorizer authorizer(nullptr, std::nullopt);

  std::istringstream input(std::string(reinterpret_cast<const char*>(data), size));
  FakeResponse response;
  FakeRequest request(input, response);
  try {
    // What HTTPServerRequestImpl does with the bytes off the socket before any of our code
    // runs: a request it cannot parse, or whose body length it cannot read, gets a 400 or a
    // closed connection from Poco.
    request.read(input);
    if (request.hasContentLength()) (void)request.getContentLength64();
  } catch (const Poco::Exception&) {
    return 0;
  }

  std::unique_ptr<regfs::Registry> registry = NewPopulatedRegistry();
  std::atomic<int> in_flight{0}, uploads_in_flight{0};
  std::atomic<bool> shutting_down{false};
  regfs::httpd::ServerContext context{*registry,     config,     logger,           in_flight,
                                      shutting_down, authorizer, uploads_in_flight};
  regfs::httpd::RequestRouter router(context);
  std::unique_ptr<HTTPRequestHandler> handler(router.createRequestHandler(request));
  FUZZ_CHECK(handler != nullptr);
  handler->handleRequest(request, response);
  CheckResponse(request, response);
  FUZZ_CHECK(in_flight.load() == 0 && uploads_in_flight.load() == 0);
  return 0;
}
