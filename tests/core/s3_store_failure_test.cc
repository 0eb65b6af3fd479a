// The S3 driver when the store fails every write (a full or broken object store): locks and
// leases come back as errors, never a crash. Against a small local HTTP server that accepts
// the bucket check and answers 500 to everything else.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <gtest/gtest.h>

#include "regfs/core/backend.h"

namespace regfs {
namespace {

class FailingStore final : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    request.stream().ignore(std::numeric_limits<std::streamsize>::max());
    if (request.getMethod() == "GET" || request.getMethod() == "HEAD") {
      // The bucket check: an empty listing.
      std::string body =
          "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
          "<IsTruncated>false</IsTruncated></ListBucketResult>";
      response.setContentType("application/xml");
      response.sendBuffer(body.data(), body.size());
      return;
    }
    response.setStatus(Poco::Net::HTTPResponse::HTTP_INTERNAL_SERVER_ERROR);
    std::string body = "<Error><Code>InternalError</Code><Message>disk full</Message></Error>";
    response.setContentType("application/xml");
    response.sendBuffer(body.data(), body.size());
  }
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new FailingStore;
  }
};

TEST(S3StoreFailure, LocksAndLeasesOfAFailingStoreAreErrorsNotCrashes) {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  Poco::Net::HTTPServer server(new Factory, socket, new Poco::Net::HTTPServerParams);
  server.start();
  S3StorageOptions options;
  options.region_endpoint = "http://127.0.0.1:" + std::to_string(socket.address().port());
  options.bucket = "b";
  options.access_key = "k";
  options.secret_key = "s";
  options.max_attempts = 1;
  auto driver = NewS3Driver(options);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto lock = (*driver)->Lock("repository:x");
  EXPECT_FALSE(lock.ok());
  auto lease = (*driver)->TryLease("gc");
  EXPECT_FALSE(lease.ok());
  EXPECT_NE(lease.status().code(), Status::Code::kFailedPrecondition)
      << "a failing store is not a lease someone holds";
  server.stop();
}

}  // namespace
}  // namespace regfs
